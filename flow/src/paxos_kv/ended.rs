//! The sessions of a proposer's run that have ended, kept as ranges of their
//! numbers.
//!
//! A copy of a command can outlive its session: one forwarded to a leader and
//! held up in the network while its proposer proposed it itself, or one that
//! a single acceptor accepted and a later leader proposes again, may be
//! chosen after the session's `EndSession`. Applied there it would start the
//! session afresh and run the command a second time, so a replica drops
//! every command of a session that ended. A proposer's run numbers its
//! sessions from 0 without gaps, and sessions end about in the order they
//! began, so the numbers fold into about as many ranges as there are
//! sessions open, however many have ended.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A set of session numbers, as disjoint ranges that do not touch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ended {
    /// Each range's first number, and the number after its last.
    ranges: BTreeMap<u64, u64>,
}

impl Ended {
    /// Whether session `n` ended.
    pub fn contains(&self, n: u64) -> bool {
        self.ranges
            .range(..=n)
            .next_back()
            .is_some_and(|(_, &end)| n < end)
    }

    /// Session `n` ended: joined to the ranges beside it.
    pub fn insert(&mut self, n: u64) {
        if self.contains(n) {
            return;
        }
        let mut start = n;
        let mut end = n + 1;
        if let Some((&before, &before_end)) = self.ranges.range(..n).next_back() {
            if before_end == n {
                start = before;
            }
        }
        if let Some(after_end) = self.ranges.remove(&end) {
            end = after_end;
        }
        self.ranges.insert(start, end);
    }

    /// How many ranges it takes.
    pub fn ranges(&self) -> usize {
        self.ranges.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_ended_are_found_and_others_are_not() {
        let mut ended = Ended::default();
        for n in [3, 5, 4, 9, 0] {
            ended.insert(n);
        }
        let found: Vec<u64> = (0..12).filter(|&n| ended.contains(n)).collect();
        assert_eq!(found, [0, 3, 4, 5, 9]);
        assert_eq!(ended.ranges(), 3, "{ended:?}");
        ended.insert(4);
        assert_eq!(ended.ranges(), 3, "inserted twice, kept once");
    }

    #[test]
    fn many_sessions_ended_out_of_order_fold_into_as_many_ranges_as_are_open() {
        // 100 000 sessions end in an order far from the one they began in,
        // but for three that stay open: the ended fold into four ranges.
        let open = [17, 50_000, 99_998];
        let mut ended = Ended::default();
        let mut n: u64 = 1;
        for _ in 0..100_000 {
            // A permutation of 0..100 000 (multiplier prime to it).
            n = (n + 38_197) % 100_000;
            if !open.contains(&n) {
                ended.insert(n);
            }
        }
        assert_eq!(ended.ranges(), 4, "{ended:?}");
        for n in 0..100_000 {
            assert_eq!(ended.contains(n), !open.contains(&n), "session {n}");
        }
        assert!(!ended.contains(100_000));
    }
}
