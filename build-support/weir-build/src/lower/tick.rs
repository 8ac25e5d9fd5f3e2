//! The code of one tick: each root, stage and deferred buffer drains into the
//! fused code below it, with the state it pushes into lent to the loop; and
//! what each consumer needs to know that its inputs are done.

use super::classify::{Lowering, Part};
use super::{comment, initial_var, record, send_var};
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};
use std::collections::BTreeSet;
use weir::ir::{Level, NodeId, Operator};

impl Lowering<'_> {
    /// The code that drains root, stage or deferred node `id` in its turn.
    pub(super) fn emission(&self, id: NodeId) -> TokenStream {
        let node = &self.graph.nodes[id];
        let var = self.var(id);
        let v = record(id);
        let push = self.push(id, &v);
        let at = &node.at;
        if self.parts[id] == Part::Fused {
            // A tick cycle's initial records.
            let init = initial_var(id);
            let note = comment(format!("initial records of the tick_cycle at {at}"));
            let source = quote!(#init.emit());
            let lent = self.lend(id, &source, quote!(for #v in #source { #push }));
            return quote!(#note #lent);
        }
        if let Operator::Network { .. } = node.op {
            // Receive first: `drain` borrows the inbox, `receive` the node too.
            let note = comment(format!("records arriving on channel {id}"));
            let source = quote!(#var.drain());
            let lent = self.lend(id, &source, quote!(for #v in #source { #push }));
            return quote! {
                #note
                #var.receive(&mut node)?;
                #lent
            };
        }
        let (note, source) = match &node.op {
            op if op.is_source() => (
                format!("this tick's records of {} at {at}", node.op.name()),
                quote!(#var.chunk(&mut node)),
            ),
            Operator::Cycle { .. } | Operator::DeferTick => (
                format!(
                    "records deferred from the previous tick by {} at {at}",
                    node.op.name()
                ),
                quote!(#var.emit()),
            ),
            Operator::FoldKeyed { level } | Operator::ReduceKeyed { level } => {
                let done = match level {
                    Level::Tick => quote!(true),
                    Level::Unbounded => self.done(id),
                };
                (
                    format!("{} at {at}", node.op.name()),
                    quote!(#var.emit(#done)),
                )
            }
            Operator::IntoStreamFinal => {
                let done = self.done(id);
                (
                    format!("final value, once its input has ended: into_stream at {at}"),
                    quote!(#var.emit(#done)),
                )
            }
            Operator::SampleEvery | Operator::Timeout => (
                format!("{} at {at}", node.op.name()),
                quote!(#var.emit(&mut node)),
            ),
            op => (format!("{} at {at}", op.name()), quote!(#var.emit())),
        };
        let note = comment(note);
        let lent = self.lend(id, &source, quote!(for #v in #source { #push }));
        quote!(#note #lent)
    }

    /// Wraps the loop of root `id` so the state it pushes into is lent to it as
    /// locals: moved out of the run function's state (which lives across
    /// `.await`s, so every access is a load and a store), shadowed by a
    /// reference of the same name for the loop, and moved back after. The
    /// compiler then keeps that state in registers for the whole loop.
    fn lend(&self, id: NodeId, source: &TokenStream, looped: TokenStream) -> TokenStream {
        let mut targets = Vec::new();
        self.push_targets(id, &mut targets);
        // The root feeds the loop, so stays where it is (as does anything its
        // source expression names).
        targets.retain(|t| *t != self.var(id) && !names(source, t));
        if targets.is_empty() {
            return looped;
        }
        let homes: Vec<Ident> = targets
            .iter()
            .map(|t| format_ident!("{}_lent", t))
            .collect();
        let note = comment("lent to the loop as locals (kept in registers), then given back");
        quote! {
            #note
            #(let mut #homes = #targets;)*
            {
                #(let mut #targets = &mut #homes;)*
                #looped
            }
            #(#targets = #homes;)*
        }
    }

    /// The locals that records of `id` are pushed into, downstream through fused
    /// operators, in the order the loop reaches them.
    fn push_targets(&self, id: NodeId, out: &mut Vec<Ident>) {
        for &(c, _) in &self.consumers[id] {
            let target = match self.parts[c] {
                Part::Send | Part::Deferred | Part::Stage => Some(self.var(c)),
                Part::Loop => Some(send_var(c)),
                Part::Fused => {
                    self.push_targets(c, out);
                    // Only these fused operators have a local of their own.
                    matches!(
                        self.op(c),
                        Operator::Map
                            | Operator::Filter
                            | Operator::FilterMap
                            | Operator::Demux { .. }
                            | Operator::FlatMap
                            | Operator::Inspect
                            | Operator::Enumerate
                            | Operator::ForEach
                            | Operator::DestSink
                            | Operator::SendExternal { .. }
                    )
                    .then(|| self.var(c))
                }
                Part::Root | Part::Elsewhere => None,
            };
            if let Some(target) = target.filter(|t| !out.contains(t)) {
                out.push(target);
            }
        }
    }

    /// Whether everything node `id` will ever receive has been received: every
    /// root upstream has ended and every deferred buffer on the way is empty.
    pub(super) fn done(&self, id: NodeId) -> TokenStream {
        let mut terms = Vec::new();
        self.done_terms(id, &mut BTreeSet::new(), &mut terms);
        match terms.len() {
            0 => quote!(true),
            1 => terms.remove(0),
            _ => quote!(#(#terms)&&*),
        }
    }

    fn done_terms(&self, id: NodeId, seen: &mut BTreeSet<NodeId>, terms: &mut Vec<TokenStream>) {
        if !seen.insert(id) {
            // A loop: done once everything entering it is done and its buffers are empty.
            return;
        }
        let node = &self.graph.nodes[id];
        let var = self.var(id);
        match (self.parts[id], &node.op) {
            (Part::Root | Part::Loop, Operator::Network { .. }) => {
                terms.push(quote!(#var.is_closed(&node)))
            }
            (Part::Root, _) => terms.push(quote!(#var.is_done())),
            (Part::Deferred, _) => terms.push(quote!(#var.is_idle())),
            (_, Operator::SampleEvery | Operator::Timeout) => terms.push(quote!(#var.is_done())),
            _ if self.has_initial(id) => {
                let init = initial_var(id);
                terms.push(quote!(#init.is_done()));
            }
            _ => {}
        }
        if !matches!(self.parts[id], Part::Root | Part::Loop) {
            for &input in &node.inputs {
                self.done_terms(input, seen, terms);
            }
        }
    }

    /// Code that pushes the record in `v` (produced by `id`) into every consumer.
    fn push(&self, id: NodeId, v: &Ident) -> TokenStream {
        let consumers = &self.consumers[id];
        let last = consumers.len().saturating_sub(1);
        let mut out = TokenStream::new();
        for (i, &(c, slot)) in consumers.iter().enumerate() {
            // Fan-out: every consumer but the last gets a clone.
            let value = if i == last {
                quote!(#v)
            } else {
                quote!(::std::clone::Clone::clone(&#v))
            };
            out.extend(self.push_into(c, slot, value));
        }
        out
    }

    fn push_into(&self, id: NodeId, slot: usize, value: TokenStream) -> TokenStream {
        let op = self.op(id);
        let f = self.var(id);
        match self.parts[id] {
            Part::Send | Part::Deferred => return quote!(#f.push(#value);),
            Part::Loop => {
                let send = send_var(id);
                return quote!(#send.push(#value););
            }
            Part::Stage if slot == 0 => return quote!(#f.push(#value);),
            Part::Stage => return quote!(#f.push_right(#value);),
            Part::Root | Part::Elsewhere => unreachable!("roots are never fed within a role"),
            Part::Fused => {}
        }
        let out = record(id);
        let rest = || self.push(id, &out);
        match op {
            Operator::Map => {
                let rest = rest();
                quote! { let #out = #f(#value); #rest }
            }
            Operator::Filter => {
                let rest = rest();
                quote! { let #out = #value; if #f(&#out) { #rest } }
            }
            Operator::FilterMap => {
                let rest = rest();
                quote! { if let ::std::option::Option::Some(#out) = #f(#value) { #rest } }
            }
            Operator::FlatMap => {
                let rest = rest();
                quote! { for #out in #f(#value) { #rest } }
            }
            Operator::Demux { .. } => {
                // Each record to the one branch its number names: moved, not
                // cloned (a branch's consumers share it as any stream's do).
                let arms = self.consumers[id].iter().map(|&(branch, slot)| {
                    let Operator::Branch { index } = self.op(branch) else {
                        unreachable!("a demux is consumed by its branches only")
                    };
                    let body = self.push_into(branch, slot, quote!(#out));
                    quote! { #index => { #body } }
                });
                quote! {
                    let #out = #value;
                    match #f(&#out) {
                        #(#arms)*
                        _ => {}
                    }
                }
            }
            Operator::Inspect => {
                let rest = rest();
                quote! { let #out = #value; #f(&#out); #rest }
            }
            Operator::Cloned => {
                let rest = rest();
                quote! { let #out = ::std::clone::Clone::clone(#value); #rest }
            }
            Operator::Enumerate => {
                let rest = rest();
                quote! { let #out = #f.number(#value); #rest }
            }
            Operator::ForEach => quote! { #f(#value); },
            Operator::DestSink | Operator::SendExternal { .. } => quote! { #f.push(#value); },
            // Records pass through unchanged.
            _ => {
                let rest = rest();
                quote! { let #out = #value; #rest }
            }
        }
    }
}

/// Whether `tokens` mention `ident` anywhere, inside groups too.
fn names(tokens: &TokenStream, ident: &Ident) -> bool {
    tokens.clone().into_iter().any(|tree| match tree {
        proc_macro2::TokenTree::Ident(i) => i == *ident,
        proc_macro2::TokenTree::Group(g) => names(&g.stream(), ident),
        _ => false,
    })
}
