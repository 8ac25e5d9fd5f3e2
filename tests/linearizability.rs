//! A linearizability checker for key-value histories, in the style of
//! Porcupine and Knossos: Wing and Gong's search for a legal order, with
//! Lowe's memoisation (a cache of (operations linearized, state) already
//! tried), run per key: a history of a map is linearizable exactly when the
//! history of each key is (linearizability is compositional).
//!
//! Operations that never returned (a client whose server died) are pending:
//! a pending write may have taken effect at any point after its call, or not
//! at all; a pending read constrains nothing and is dropped.

use std::collections::{BTreeMap, HashSet};

/// What a client asked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KvOp {
    Set(String, String),
    Get(String),
    Del(String),
}

impl KvOp {
    fn key(&self) -> &str {
        match self {
            KvOp::Set(k, _) | KvOp::Get(k) | KvOp::Del(k) => k,
        }
    }
}

/// What it was answered.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KvRet {
    Ok,
    Value(Option<String>),
    /// How many keys a `DEL` removed.
    Deleted(i64),
}

/// One operation of a history: times in any monotonic unit (nanoseconds).
#[derive(Debug, Clone)]
pub struct Operation {
    pub client: usize,
    pub op: KvOp,
    pub call: u64,
    /// `None` while pending: the client never saw an answer.
    pub ret: Option<(u64, KvRet)>,
}

/// A key whose history has no legal order.
#[derive(Debug, Clone)]
pub struct Violation {
    pub key: String,
    /// The key's operations, by call time.
    pub operations: Vec<Operation>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "the history of key {:?} is not linearizable:", self.key)?;
        // All of them: where the search failed is seldom in the first few.
        for o in &self.operations {
            match &o.ret {
                Some((at, ret)) => writeln!(
                    f,
                    "  client {} {:?} [{}..{}] -> {:?}",
                    o.client, o.op, o.call, at, ret
                )?,
                None => writeln!(f, "  client {} {:?} [{}..] pending", o.client, o.op, o.call)?,
            }
        }
        Ok(())
    }
}

/// Checks a whole history, key by key.
pub fn check(history: &[Operation]) -> Result<(), Violation> {
    let mut keys: BTreeMap<&str, Vec<Operation>> = BTreeMap::new();
    for o in history {
        if o.ret.is_none() && matches!(o.op, KvOp::Get(_)) {
            continue;
        }
        keys.entry(o.op.key()).or_default().push(o.clone());
    }
    for (key, mut operations) in keys {
        if !check_register(&operations) {
            operations.sort_by_key(|o| o.call);
            return Err(Violation {
                key: key.to_string(),
                operations,
            });
        }
    }
    Ok(())
}

/// One register's sequential behaviour: the state after `op` answered
/// `ret` (unknown for a pending operation), or `None` if it cannot answer so.
fn step(state: &Option<String>, op: &KvOp, ret: Option<&KvRet>) -> Option<Option<String>> {
    match (op, ret) {
        (KvOp::Set(_, v), None | Some(KvRet::Ok)) => Some(Some(v.clone())),
        (KvOp::Get(_), Some(KvRet::Value(seen))) => (seen == state).then(|| state.clone()),
        (KvOp::Del(_), None) => Some(None),
        (KvOp::Del(_), Some(KvRet::Deleted(n))) => {
            (*n == i64::from(state.is_some())).then_some(None)
        }
        _ => None,
    }
}

/// One event of the search's list: an operation's call or its return.
struct Event {
    op: usize,
    is_call: bool,
    prev: usize,
    next: usize,
}

/// Wing and Gong's search, with the memoisation of Lowe (and Porcupine).
fn check_register(ops: &[Operation]) -> bool {
    // Events in time order, a call before a return at the same time; pending
    // operations return after everything.
    let mut order: Vec<(u64, bool, usize)> = Vec::new();
    for (i, o) in ops.iter().enumerate() {
        order.push((o.call, false, i));
        order.push((o.ret.as_ref().map_or(u64::MAX, |r| r.0), true, i));
    }
    order.sort();
    // A doubly linked list of events, with a head sentinel at 0.
    let n = order.len();
    let mut events: Vec<Event> = Vec::with_capacity(n + 1);
    events.push(Event {
        op: usize::MAX,
        is_call: false,
        prev: usize::MAX,
        next: 1,
    });
    let mut return_of = vec![0; ops.len()];
    let mut call_of = vec![0; ops.len()];
    for (i, &(_, is_return, op)) in order.iter().enumerate() {
        let at = i + 1;
        events.push(Event {
            op,
            is_call: !is_return,
            prev: at - 1,
            next: if at == n { usize::MAX } else { at + 1 },
        });
        if is_return {
            return_of[op] = at;
        } else {
            call_of[op] = at;
        }
    }
    let lift = |events: &mut Vec<Event>, at: usize| {
        let (p, nx) = (events[at].prev, events[at].next);
        events[p].next = nx;
        if nx != usize::MAX {
            events[nx].prev = p;
        }
    };
    let unlift = |events: &mut Vec<Event>, at: usize| {
        let (p, nx) = (events[at].prev, events[at].next);
        events[p].next = at;
        if nx != usize::MAX {
            events[nx].prev = at;
        }
    };

    let words = ops.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut state: Option<String> = None;
    let mut cache: HashSet<(Vec<u64>, Option<String>)> = HashSet::new();
    let mut stack: Vec<(usize, Option<String>)> = Vec::new();
    let mut entry = events[0].next;
    while events[0].next != usize::MAX {
        if entry == usize::MAX {
            // Nothing more can go first: undo the last choice.
            let Some((op, before)) = stack.pop() else {
                return false;
            };
            state = before;
            linearized[op / 64] &= !(1 << (op % 64));
            unlift(&mut events, return_of[op]);
            unlift(&mut events, call_of[op]);
            entry = events[call_of[op]].next;
            continue;
        }
        let event = &events[entry];
        if event.is_call {
            let op = event.op;
            let ret = ops[op].ret.as_ref().map(|r| &r.1);
            if let Some(after) = step(&state, &ops[op].op, ret) {
                let mut with = linearized.clone();
                with[op / 64] |= 1 << (op % 64);
                if cache.insert((with.clone(), after.clone())) {
                    stack.push((op, std::mem::replace(&mut state, after)));
                    linearized = with;
                    lift(&mut events, call_of[op]);
                    lift(&mut events, return_of[op]);
                    entry = events[0].next;
                    continue;
                }
            }
            entry = events[entry].next;
        } else {
            // An operation returned before any order could place it: back up.
            entry = usize::MAX;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};

    fn op(client: usize, op: KvOp, call: u64, ret: Option<(u64, KvRet)>) -> Operation {
        Operation {
            client,
            op,
            call,
            ret,
        }
    }
    fn set(k: &str, v: &str) -> KvOp {
        KvOp::Set(k.into(), v.into())
    }
    fn get(k: &str) -> KvOp {
        KvOp::Get(k.into())
    }
    fn value(v: Option<&str>) -> KvRet {
        KvRet::Value(v.map(Into::into))
    }

    #[test]
    fn a_read_overlapping_a_write_may_see_either_value() {
        for seen in [None, Some("1")] {
            let h = [
                op(0, set("k", "1"), 0, Some((10, KvRet::Ok))),
                op(1, get("k"), 5, Some((6, value(seen)))),
            ];
            assert!(check(&h).is_ok(), "{seen:?}");
        }
    }

    #[test]
    fn a_stale_read_after_a_write_returned_is_caught() {
        let h = [
            op(0, set("k", "1"), 0, Some((10, KvRet::Ok))),
            op(1, get("k"), 11, Some((12, value(None)))),
        ];
        let err = check(&h).unwrap_err();
        assert_eq!(err.key, "k");
        assert!(err.to_string().contains("not linearizable"), "{err}");
    }

    #[test]
    fn a_pending_write_may_take_effect_late_or_never() {
        let pending = op(0, set("k", "1"), 0, None);
        for seen in [None, Some("1")] {
            let h = [
                pending.clone(),
                op(1, get("k"), 50, Some((60, value(seen)))),
            ];
            assert!(check(&h).is_ok(), "{seen:?}");
        }
        // But once seen, it cannot be unseen without another write.
        let h = [
            pending,
            op(1, get("k"), 50, Some((60, value(Some("1"))))),
            op(1, get("k"), 70, Some((80, value(None)))),
        ];
        assert!(check(&h).is_err());
    }

    /// The map a history runs against, for stateright's tester.
    #[derive(Clone, Debug, Default)]
    struct Map(BTreeMap<String, String>);

    impl SequentialSpec for Map {
        type Op = KvOp;
        type Ret = KvRet;
        fn invoke(&mut self, op: &KvOp) -> KvRet {
            match op {
                KvOp::Set(k, v) => {
                    self.0.insert(k.clone(), v.clone());
                    KvRet::Ok
                }
                KvOp::Get(k) => KvRet::Value(self.0.get(k).cloned()),
                KvOp::Del(k) => KvRet::Deleted(i64::from(self.0.remove(k).is_some())),
            }
        }
    }

    fn stateright_says(history: &[Operation]) -> bool {
        let mut events: Vec<(u64, bool, usize)> = Vec::new();
        for (i, o) in history.iter().enumerate() {
            events.push((o.call, false, i));
            if let Some((at, _)) = o.ret {
                events.push((at, true, i));
            }
        }
        events.sort();
        let mut tester = LinearizabilityTester::new(Map::default());
        for (_, is_return, i) in events {
            let o = &history[i];
            if is_return {
                tester
                    .on_return(o.client, o.ret.clone().unwrap().1)
                    .unwrap();
            } else {
                tester.on_invoke(o.client, o.op.clone()).unwrap();
            }
        }
        tester.is_consistent()
    }

    /// A history of `clients` running ops against a real map, each taking
    /// effect at a random moment within its call; some answers corrupted and
    /// some left pending.
    fn history() -> impl Strategy<Value = Vec<Operation>> {
        let step = (0..3usize, 0..2usize, 0..3u8, 1..6u64, 0..6u64, 0..10u8);
        proptest::collection::vec(step, 1..14).prop_map(|steps| {
            let mut map = Map::default();
            let mut free_at = [0u64; 3];
            let mut pending = [false; 3];
            // Effects happen in increasing time; each op's window holds its effect.
            let mut now = 0u64;
            let mut out = Vec::new();
            for (client, key, kind, before, after, twist) in steps {
                if pending[client] {
                    continue;
                }
                let key = ["a", "b"][key].to_string();
                let op = match kind {
                    0 => KvOp::Set(key, format!("{}", out.len())),
                    1 => KvOp::Get(key),
                    _ => KvOp::Del(key),
                };
                now += 3;
                let call = free_at[client].max(now.saturating_sub(before));
                let effect = now.max(call);
                let mut ret = map.invoke(&op);
                if twist == 0 {
                    // A wrong answer: the history may no longer be linearizable.
                    ret = match ret {
                        KvRet::Value(Some(_)) => KvRet::Value(None),
                        KvRet::Value(None) => KvRet::Value(Some("0".into())),
                        KvRet::Deleted(n) => KvRet::Deleted(1 - n),
                        KvRet::Ok => KvRet::Ok,
                    };
                }
                let done = effect + after + 1;
                free_at[client] = done + 1;
                let ret = if twist == 1 {
                    pending[client] = true;
                    None
                } else {
                    Some((done, ret))
                };
                out.push(Operation {
                    client,
                    op,
                    call,
                    ret,
                });
            }
            out
        })
    }

    #[test]
    fn the_generated_histories_are_of_both_kinds() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let verdicts: Vec<bool> = (0..500)
            .map(|_| check(&history().new_tree(&mut runner).unwrap().current()).is_ok())
            .collect();
        let bad = verdicts.iter().filter(|ok| !**ok).count();
        // The cross-check means something only if both answers come up often.
        assert!(
            (50..450).contains(&bad),
            "{bad} of 500 histories are not linearizable"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn agrees_with_stateright_on_small_histories(h in history()) {
            let ours = check(&h).is_ok();
            let theirs = stateright_says(&h);
            prop_assert_eq!(ours, theirs, "history: {:#?}", h);
        }
    }
}
