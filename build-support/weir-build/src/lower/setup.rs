//! The code that creates every operator of the role once, before the first
//! tick: its quoted closures, with their captured values in front.

use super::classify::{Lowering, Part};
use super::splice::splice;
use super::{channel_literal, comment, initial_var, leveled, send_var, witness};
use crate::error::Problem;
use crate::paths::nameable_type;
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};
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
        let args = node
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
        let described = match node.args.first() {
            Some(q) => format!("{}(q!(..)) at {}", node.op.name(), q.at),
            None => format!("{}() at {at}", node.op.name()),
        };
        let ops = quote!(::weir_runtime::ops);
        if !matches!(node.op, Operator::Network { .. }) {
            code.push(comment(described));
        }
        let statement = match &node.op {
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
                quote!(let (mut #var, #w) = node.#inbox::<#ty>(#channel);)
            }
            Operator::SourceStream | Operator::SourceInterval | Operator::SourceIntervalDelayed => {
                let method = format_ident!("{}", node.op.name());
                quote!(let (mut #var, #w) = node.#method(#(#args),*);)
            }
            Operator::SourceExternal { name } => {
                quote!(let (mut #var, #w) = node.source_external(#name, #(#args),*)?;)
            }
            Operator::SendExternal { source } => {
                let source = self.var(*source);
                quote!(let mut #var = #source.replies(#(&#ins),*);)
            }
            Operator::SampleEvery | Operator::Timeout => {
                let method = format_ident!("{}", node.op.name());
                quote!(let (mut #var, #w) = node.#method(&#(#ins),*, #(#args),*);)
            }
            Operator::Membership { cluster } => {
                let cluster = self.role_name(*cluster);
                if !self.exchanges_with(node.location, cluster) {
                    return Err(problem(format!(
                        "`membership()` of cluster `{cluster}` at `{}`, which exchanges no records with it: only the links of a network edge between the two can come and go",
                        self.role_name(node.location)
                    )));
                }
                quote!(let (mut #var, #w) = node.membership(#cluster);)
            }
            Operator::Cycle {
                level,
                element_type,
            } => {
                let ty = nameable_type(element_type).map_err(problem)?;
                if *level == Level::Unbounded {
                    quote!(let (mut #var, #w) = #ops::cycle::<#ty>();)
                } else if let Some(initial) = args.first() {
                    let init = initial_var(id);
                    quote! {
                        let #w = #ops::witness::<#ty>();
                        let mut #init = #ops::initial(&#w, #initial);
                    }
                } else {
                    quote!(let #w = #ops::witness::<#ty>();)
                }
            }
            Operator::Union => quote!(let #w = #ops::union(#(&#ins),*);),
            Operator::Cloned => quote!(let #w = #ops::cloned(#(&#ins),*);),
            Operator::TickBatch | Operator::AllTicks | Operator::Latest | Operator::IntoStream => {
                quote!(let #w = #ops::same(#(&#ins),*);)
            }
            Operator::DestSink => {
                let place = at.to_string();
                quote!(let (mut #var, #w) = #ops::dest_sink(#(&#ins,)* #(#args,)* #place);)
            }
            Operator::Fold { level }
            | Operator::Reduce { level }
            | Operator::Count { level }
            | Operator::FoldKeyed { level }
            | Operator::ReduceKeyed { level } => {
                let f = leveled(node.op.name(), *level);
                quote!(let (mut #var, #w) = #ops::#f(#(&#ins,)* #(#args),*);)
            }
            Operator::IntoStreamFinal => {
                quote!(let (mut #var, #w) = #ops::final_value(#(&#ins),*);)
            }
            op => {
                // Every other operator's constructor is named after it.
                let f = format_ident!("{}", op.name());
                quote!(let (mut #var, #w) = #ops::#f(#(&#ins,)* #(#args),*);)
            }
        };
        code.push(statement);
        Ok(code)
    }
}
