//! Two-phase commit. The coordinator asks every participant to prepare each
//! transaction; participants vote; the coordinator commits a transaction only if
//! every vote is yes, tells the participants, and prints the outcome once all of
//! them have applied it. Participant 2 votes no on every tenth transaction.
//!
//! Two deliberately wrong variants exist for the simulator's tests, to show
//! that it finds bugs: [`two_pc_majority_bug`] commits on a majority of
//! votes, and [`two_pc_tick_bug`] decides from the votes that arrive in one
//! tick (right only while every vote of a transaction arrives together).

use serde::{Deserialize, Serialize};
use weir::*;

/// Transactions the coordinator runs.
pub const TRANSACTIONS: u32 = 100;

pub fn two_pc(flow: &FlowBuilder) {
    two_pc_deciding(flow, Rule::EveryVote);
}

/// A planted bug: the coordinator commits once a majority voted yes.
pub fn two_pc_majority_bug(flow: &FlowBuilder) {
    two_pc_deciding(flow, Rule::Majority);
}

/// A planted bug: the coordinator decides each transaction from the votes
/// that arrived in one tick.
pub fn two_pc_tick_bug(flow: &FlowBuilder) {
    two_pc_deciding(flow, Rule::OneTick);
}

/// How the coordinator decides; only [`Rule::EveryVote`] is two-phase commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rule {
    EveryVote,
    Majority,
    OneTick,
}

fn two_pc_deciding(flow: &FlowBuilder, rule: Rule) {
    let coordinator = flow.process("coordinator");
    let participants = flow.cluster("participant");
    let votes = flow
        .source_iter(&coordinator, q!(1..=TRANSACTIONS))
        .broadcast_bincode(&participants)
        .map(q!(move |tx| (tx, vote(participants.self_id(), tx))))
        .send_bincode(&coordinator);
    let decisions = if rule == Rule::OneTick {
        votes
            .assume_ordering(nondet!(
                "the votes of a tick go into a map: their order within it does not matter"
            ))
            .tick_batch()
            .fold(q!(Vec::new), q!(Vec::push))
            .flat_map(q!({
                let mut decided = std::collections::BTreeSet::new();
                move |votes| decide_from_one_tick(votes, &mut decided)
            }))
            .all_ticks()
            .unordered()
    } else {
        votes.filter_map(q!({
            let mut tally = Tally::default();
            move |(_who, (tx, yes))| {
                let members = participants.members().len();
                let needed = if rule == Rule::Majority {
                    members / 2 + 1
                } else {
                    members
                };
                tally.add(tx, yes, needed)
            }
        }))
    };
    decisions
        .broadcast_bincode(&participants)
        .map(q!(|(tx, commit)| (tx, commit)))
        .send_bincode(&coordinator)
        .filter_map(q!({
            let mut acks = Tally::default();
            move |(_who, (tx, commit))| acks.add(tx, commit, participants.members().len())
        }))
        .for_each(q!(|(tx, commit)| {
            println!("{} {tx}", if commit { "commit" } else { "abort" })
        }));
}

/// A participant's vote: participant 2 refuses every tenth transaction.
pub fn vote(me: ClusterId, tx: u32) -> bool {
    !(me == ClusterId(2) && tx.is_multiple_of(10))
}

/// The planted tick bug: each transaction seen this tick is decided from
/// this tick's votes alone (commit if they are all yes), once.
pub fn decide_from_one_tick(
    votes: Vec<(ClusterId, (u32, bool))>,
    decided: &mut std::collections::BTreeSet<u32>,
) -> Vec<(u32, bool)> {
    let mut outcome = std::collections::BTreeMap::new();
    for (_who, (tx, yes)) in votes {
        *outcome.entry(tx).or_insert(true) &= yes;
    }
    outcome
        .into_iter()
        .filter(|(tx, _)| decided.insert(*tx))
        .collect()
}

/// Collects one answer per participant for each transaction.
#[derive(Default)]
pub struct Tally {
    open: std::collections::HashMap<u32, (usize, bool)>,
}

impl Tally {
    /// Records an answer; once all `participants` answered, the transaction's
    /// outcome (true only if every answer was yes).
    pub fn add(&mut self, tx: u32, yes: bool, participants: usize) -> Option<(u32, bool)> {
        let (answers, all_yes) = self.open.entry(tx).or_insert((0, true));
        *answers += 1;
        *all_yes &= yes;
        if *answers < participants {
            return None;
        }
        let (_, all_yes) = self.open.remove(&tx)?;
        Some((tx, all_yes))
    }
}
