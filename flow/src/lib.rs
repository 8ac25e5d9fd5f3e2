//! Example flows, written as a user of Weir writes them. Each is compiled into one
//! binary per role by `bins/build.rs`.

pub mod bench;
pub mod broadcast;
pub mod compute_pi;
pub mod corpus;
pub mod first_ten;
pub mod first_ten_cluster;
pub mod first_ten_distributed;
pub mod flood;
pub mod graph_reachability;
pub mod map_reduce;
pub mod membership;
pub mod operators;
pub mod paxos_kv;
pub mod pipeline;
pub mod relay;
pub mod ring;
pub mod tally;
pub mod two_pc;
