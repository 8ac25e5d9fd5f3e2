//! Two-phase commit. The coordinator asks every participant to prepare each
//! transaction; participants vote; the coordinator commits a transaction only if
//! every vote is yes, tells the participants, and prints the outcome once all of
//! them have applied it. Participant 2 votes no on every tenth transaction.

use weir::*;

/// Transactions the coordinator runs.
pub const TRANSACTIONS: u32 = 100;

pub fn two_pc(flow: &FlowBuilder) {
    let coordinator = flow.process("coordinator");
    let participants = flow.cluster("participant");
    flow.source_iter(&coordinator, q!(1..=TRANSACTIONS))
        .broadcast_bincode(&participants)
        .map(q!(move |tx| (tx, vote(participants.self_id(), tx))))
        .send_bincode(&coordinator)
        .filter_map(q!({
            let mut tally = Tally::default();
            move |(_who, (tx, yes))| tally.add(tx, yes, participants.members().len())
        }))
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
