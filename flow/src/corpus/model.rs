//! Accumulators the corpus folds into.

use serde::{Deserialize, Serialize};

/// A summary whose fields quoted closures read and write.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub count: u64,
    pub total: u64,
    pub heaviest: u32,
}

/// The values kept for one key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub kept: Vec<u64>,
}
