//! The code that creates every operator of the role once, before the first
//! tick: its quoted closures, with their captured values in front.

use super::classify::{Lowering, Part};
use super::splice::{splice, Spliced};
use super::{channel_literal, comment, initial_var, leveled, send_var, witness};
use crate::error::Problem;
use crate::paths::nameable_type;
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};
use std::collections::BTreeSet;
use weir::ir::{Delivery, Level, NodeId, Operator};

impl Lowering<'_> {
    /// The code creating node `id`'s operator, once, before the first tick.
    pub(super) fn setup(&self, id: NodeId) -> Result<Vec<TokenStream>, Problem> {
        let node = &self.graph.nodes[id];
        let at = &node.at;
        let var = self.var(id);
        let w = witness(id);
        let ins: Vec<Ident> = node.inputs.iter().map(|&i| witness(i)).collect();
        let problem = |message: String| Problem {
            message,
            at: Some(at.to_string()),
        };
        let spliced = node
            .args
            .iter()
            .map(|q| splice(q, self.role_name(node.location)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut code = Vec::new();
        match self.parts[id] {
            Part::Elsewhere => return Ok(code),
            Part::Send | Part::Loop => {
                let Operator::Network { delivery, .. } = &node.op else {
                    unreachable!("only network nodes send")
                };
                let to = self.role_name(node.location);
                let whom = if self.parts[id] == Part::Loop {
                    "between the members of"
                } else {
                    "to"
                };
                code.push(comment(format!(
                    "channel {id}: {} {whom} `{to}`, at {at}",
                    node.op.name()
                )));
                let channel = channel_literal(id);
                let w_in = &ins[0];
                let constructor = match delivery {
                    Delivery::ToProcess | Delivery::Broadcast => quote!(outbox),
                    Delivery::ToMember => quote!(outbox_to_members),
                    Delivery::RoundRobin => quote!(outbox_round_robin),
                };
                let send = send_var(id);
                code.push(quote!(let mut #send = node.#constructor(#channel, &#w_in);));
                if self.parts[id] == Part::Send {
                    return Ok(code);
                }
            }
            _ => {}
        }
        let described = match (node.nondet(), node.args.first()) {
            (Some(nondet), _) => {
                format!("{nondet}: records in an order that changes from run to run, accepted")
            }
            (None, Some(q)) => format!("{}(q!(..)) at {}", node.op.name(), q.at),
            (None, None) => format!("{}() at {at}", node.op.name()),
        };
        let ops = quote!(::weir_runtime::ops);
        if !matches!(node.op, Operator::Network { .. }) {
            code.push(comment(described));
        }
        // Captured values are bound in front of the whole call, so that each
        // closure is itself an argument and rustc infers its parameters from
        // the operator's bound, as it did at the `q!`. The call names `node`
        // and these locals, which no capture may shadow.
        let mut names: BTreeSet<String> = ins.iter().map(Ident::to_string).collect();
        names.insert("node".to_string());
        names.extend([var.to_string(), w.to_string(), initial_var(id).to_string()]);
        let (args, lets) = hoist_captures(&var, &spliced, &names, &mut code);
        let (pattern, call) = match &node.op {
            Operator::Network {
                element_type,
                tagged,
                ..
            } => {
                let ty = nameable_type(element_type).map_err(problem)?;
                let from = self.role_name(self.graph.nodes[node.inputs[0]].location);
                code.push(comment(format!(
                    "channel {id}: {} from `{from}`, at {at}",
                    node.op.name()
                )));
                let channel = channel_literal(id);
                let inbox = if *tagged {
                    quote!(inbox_tagged)
                } else {
                    quote!(inbox)
                };
                (quote!((mut #var, #w)), quote!(node.#inbox::<#ty>(#channel)))
            }
            Operator::SourceStream | Operator::SourceInterval | Operator::SourceIntervalDelayed => {
                let method = format_ident!("{}", node.op.name());
                (quote!((mut #var, #w)), quote!(node.#method(#(#args),*)))
            }
            Operator::SourceExternal { name } => (
                quote!((mut #var, #w)),
                quote!(node.source_external(#name, #(#args),*)?),
            ),
            Operator::SendExternal { source } => {
                let source = self.var(*source);
                (quote!(mut #var), quote!(#source.replies(#(&#ins),*)))
            }
            Operator::SampleEvery | Operator::Timeout => {
                let method = format_ident!("{}", node.op.name());
                (
                    quote!((mut #var, #w)),
                    quote!(node.#method(&#(#ins),*, #(#args),*)),
                )
            }
            Operator::Membership { cluster } => {
                let cluster = self.role_name(*cluster);
                if !self.exchanges_with(node.location, cluster) {
                    return Err(problem(format!(
                        "`membership()` of cluster `{cluster}` at `{}`, which exchanges no records with it: only the links of a network edge between the two can come and go",
                        self.role_name(node.location)
                    )));
                }
                (quote!((mut #var, #w)), quote!(node.membership(#cluster)))
            }
            Operator::Cycle {
                level,
                element_type,
            } => {
                let ty = nameable_type(element_type).map_err(problem)?;
                if *level == Level::Unbounded {
                    (quote!((mut #var, #w)), quote!(#ops::cycle::<#ty>()))
                } else if let Some(initial) = args.first() {
                    let init = initial_var(id);
                    code.push(quote!(let #w = #ops::witness::<#ty>();));
                    (quote!(mut #init), quote!(#ops::initial(&#w, #initial)))
                } else {
                    (quote!(#w), quote!(#ops::witness::<#ty>()))
                }
            }
            Operator::Union => (quote!(#w), quote!(#ops::union(#(&#ins),*))),
            Operator::Cloned => (quote!(#w), quote!(#ops::cloned(#(&#ins),*))),
            Operator::TickBatch
            | Operator::AllTicks
            | Operator::Latest
            | Operator::IntoStream
            | Operator::AssumeOrdering { .. }
            | Operator::Branch { .. } => (quote!(#w), quote!(#ops::same(#(&#ins),*))),
            Operator::DestSink => {
                let place = at.to_string();
                (
                    quote!((mut #var, #w)),
                    quote!(#ops::dest_sink(#(&#ins,)* #(#args,)* #place)),
                )
            }
            Operator::Fold { level }
            | Operator::Reduce { level }
            | Operator::Count { level }
            | Operator::FoldKeyed { level }
            | Operator::ReduceKeyed { level } => {
                let f = leveled(node.op.name(), *level);
                (
                    quote!((mut #var, #w)),
                    quote!(#ops::#f(#(&#ins,)* #(#args),*)),
                )
            }
            Operator::IntoStreamFinal => (
                quote!((mut #var, #w)),
                quote!(#ops::final_value(#(&#ins),*)),
            ),
            op => {
                // Every other operator's constructor is named after it.
                let f = format_ident!("{}", op.name());
                (
                    quote!((mut #var, #w)),
                    quote!(#ops::#f(#(&#ins,)* #(#args),*)),
                )
            }
        };
        if lets.is_empty() {
            code.push(quote!(let #pattern = #call;));
        } else {
            code.push(quote!(let #pattern = { #(#lets)* #call };));
        }
        Ok(code)
    }
}

/// The arguments of an operator's call, and the `let`s of captured values to
/// put in front of it. The last argument with captures has them in front of
/// the call; any other is bound to a local first (with its captures in a
/// block of its own, so that every argument has its own copy of a value they
/// share), as is one whose capture would shadow a name in `taken`.
/// Operators take at most one closure with parameters, last (`fold`'s `init`
/// has none), so the closure that needs inference is the one left in place.
fn hoist_captures(
    var: &Ident,
    args: &[Spliced],
    taken: &BTreeSet<String>,
    code: &mut Vec<TokenStream>,
) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let shadows = |a: &Spliced| a.lets.iter().any(|(name, _)| taken.contains(name));
    let in_place = args
        .iter()
        .rposition(|a| !a.lets.is_empty())
        .filter(|&k| !shadows(&args[k]));
    let mut exprs = Vec::with_capacity(args.len());
    for (k, arg) in args.iter().enumerate() {
        if arg.lets.is_empty() || Some(k) == in_place {
            exprs.push(arg.code.clone());
        } else {
            let local = format_ident!("{var}_arg{k}");
            let block = arg.block();
            code.push(quote!(let #local = #block;));
            exprs.push(quote!(#local));
        }
    }
    let lets = in_place
        .map(|k| args[k].lets.iter().map(|(_, stmt)| stmt.clone()).collect())
        .unwrap_or_default();
    (exprs, lets)
}
