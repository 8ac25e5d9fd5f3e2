//! Members of one cluster talking to each other: each member passes its id to the
//! next member around a ring, and announces it to every member (itself
//! included).

use weir::*;

pub fn ring(flow: &FlowBuilder) {
    let members = flow.cluster("member");
    let me = flow
        .source_iter(&members, q!([()]))
        .map(q!(move |()| members.self_id()));
    me.clone()
        .map(q!(move |id| {
            let all = members.members();
            (all[(id.index() + 1) % all.len()], id)
        }))
        .send_bincode(&members)
        .for_each(q!(|(from, id)| println!("passed from {from}: {id}")));
    me.broadcast_bincode(&members)
        .for_each(q!(|(from, id)| println!("heard from {from}: {id}")));
}
