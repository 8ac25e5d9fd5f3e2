//! A sharded counter behind an external endpoint: clients send lines
//! `KEY DELTA`, the front routes each update to the shard that owns its key,
//! and the shard answers `KEY=TOTAL` over a tolerant edge. Bad lines get
//! `error: ...`. (The updates' edge is fail-stop: the front is ready, and
//! takes clients, once every shard is linked.)

use super::keys::{lines::Lines, parse, shard_for, Update};
use std::collections::HashMap;
use weir::*;

pub fn counter(flow: &FlowBuilder) {
    let front = flow.process("front");
    let shards = flow.cluster("shard");
    let (requests, replies) = flow.source_external(&front, "clients", q!(Lines));

    let parsed = requests.filter_map(q!(|(conn, event)| match event {
        weir::ClientEvent::Request(line) => Some((conn, parse(&line))),
        _ => None,
    }));
    let errors = parsed.clone().filter_map(q!(|(conn, parsed)| parsed
        .err()
        .map(|e| (conn, format!("error: {e}")))));
    let answers = parsed
        .filter_map(q!(|(conn, parsed)| parsed.ok().map(|u| (conn, u))))
        .map(q!(move |(conn, update)| {
            let to = ClusterId(shard_for(&update.key, shards.members().len()) as u32);
            (to, (conn, update))
        }))
        .send_bincode(&shards)
        .map(q!({
            let mut totals = HashMap::new();
            move |(conn, update): (ConnectionId, Update)| {
                let total = totals.entry(update.key.clone()).or_insert(0i64);
                *total += update.delta;
                (conn, format!("{}={}", update.key, total))
            }
        }))
        .send_bincode_tolerant(&front)
        .map(q!(|(_shard, answer)| answer));
    answers.union(errors).send_external(replies);
}
