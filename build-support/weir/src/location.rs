//! Locations: where a stream lives. A [`Process`] has one instance; a [`Cluster`]
//! has as many as the deployment gives it.
//!
//! Both carry a `Tag` type. Locations created from a marker type
//! (`flow.process_of::<Leader>()`) have distinct types, so rustc rejects mixing their
//! streams without a network edge.

use crate::builder::FlowBuilder;
use crate::cycle::Cycle;
use crate::ir::{LocationId, Operator};
use crate::level::{Bounded, Unbounded};
use crate::order::NoOrder;
use crate::quote::IntoQuoted;
use crate::stream::{Collection, Stream};
use std::marker::PhantomData;
use std::panic::Location as Caller;
pub use weir_core::{ClusterId, Membership};

/// A marker type naming a role: `pub struct Leader; impl weir::Role for Leader {}`.
///
/// The role name is the type's name in snake case (`KvServer` → `kv_server`).
pub trait Role {
    /// The role's name: the type's, in snake case.
    fn role_name() -> String {
        let full = std::any::type_name::<Self>();
        let last = full.rsplit("::").next().unwrap_or(full);
        let mut name = String::new();
        for (i, c) in last.chars().enumerate() {
            if c.is_uppercase() {
                if i > 0 {
                    name.push('_');
                }
                name.extend(c.to_lowercase());
            } else {
                name.push(c);
            }
        }
        name
    }
}

/// Something a stream can live at.
pub trait Location<'a>: Clone {
    /// Its index among the flow's locations.
    fn id(&self) -> LocationId;
    /// The flow it belongs to.
    fn flow(&self) -> &'a FlowBuilder;

    /// An unbounded stream fed later by [`CycleHandle::complete`](crate::CycleHandle::complete): what the
    /// completing stream yields in one tick arrives here in the next. For a
    /// completing stream without a deterministic order, see
    /// [`cycle_unordered`](Location::cycle_unordered).
    #[track_caller]
    fn cycle<T>(&self) -> Cycle<'a, T, Self, Unbounded> {
        self.flow().new_cycle(self, Vec::new(), Caller::caller())
    }

    /// [`cycle`](Location::cycle), completed with a [`NoOrder`] stream.
    #[track_caller]
    fn cycle_unordered<T>(&self) -> Cycle<'a, T, Self, Unbounded, NoOrder> {
        self.flow().new_cycle(self, Vec::new(), Caller::caller())
    }

    /// A tick-level stream fed later by [`CycleHandle::complete`](crate::CycleHandle::complete), within the tick:
    /// the loop must pass through `defer_tick()`.
    #[track_caller]
    fn tick_cycle<T>(&self) -> Cycle<'a, T, Self, Bounded> {
        self.flow().new_cycle(self, Vec::new(), Caller::caller())
    }

    /// [`tick_cycle`](Location::tick_cycle), completed with a [`NoOrder`]
    /// stream.
    #[track_caller]
    fn tick_cycle_unordered<T>(&self) -> Cycle<'a, T, Self, Bounded, NoOrder> {
        self.flow().new_cycle(self, Vec::new(), Caller::caller())
    }

    /// Like [`tick_cycle`](Location::tick_cycle), with the items of `initial` in
    /// the first tick.
    #[track_caller]
    fn tick_cycle_with_initial<T, I: IntoIterator<Item = T>>(
        &self,
        initial: impl IntoQuoted<I>,
    ) -> Cycle<'a, T, Self, Bounded> {
        let at = Caller::caller();
        let initial = self.flow().quoted(initial, at);
        self.flow().new_cycle(self, vec![initial], at)
    }
}

macro_rules! location_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name<'a, Tag = ()> {
            pub(crate) id: LocationId,
            pub(crate) flow: &'a FlowBuilder,
            _tag: PhantomData<fn() -> Tag>,
        }

        impl<'a, Tag> $name<'a, Tag> {
            pub(crate) fn new(id: LocationId, flow: &'a FlowBuilder) -> Self {
                $name { id, flow, _tag: PhantomData }
            }
        }

        // Manual impl: `Tag` need not be `Clone`.
        impl<Tag> Clone for $name<'_, Tag> {
            fn clone(&self) -> Self {
                $name::new(self.id, self.flow)
            }
        }

        impl<'a, Tag> Location<'a> for $name<'a, Tag> {
            fn id(&self) -> LocationId {
                self.id
            }
            fn flow(&self) -> &'a FlowBuilder {
                self.flow
            }
        }
    };
}

location_type!(
    /// A location with exactly one instance.
    Process
);
location_type!(
    /// A location with any number of instances (members), set at deploy time.
    Cluster
);

impl<'a, Tag> Cluster<'a, Tag> {
    /// At `at`, a location that exchanges records with this cluster: one
    /// `(member, Joined | Left)` record each time the link with a member comes
    /// up or goes down. Members linked at start are reported `Joined` in the
    /// first tick; over tolerant edges, a member that dies is reported `Left`
    /// (within the peer timeout if it only stops answering), one asked to
    /// stop as soon as it says so (it only drains from then on), and
    /// `Joined` again when it rejoins. An instance never reports itself. Each
    /// member's events come in order; the members' are interleaved as links
    /// happen to come and go ([`NoOrder`]).
    #[track_caller]
    pub fn membership<L: Location<'a>>(
        &self,
        at: &L,
    ) -> Stream<'a, (ClusterId, Membership), L, Unbounded, NoOrder> {
        let op = Operator::Membership { cluster: self.id };
        let node = self.flow.source_node_at(at, op, Caller::caller());
        Stream::from_node(node, at.clone())
    }

    /// Inside `q!` at this cluster: the id of the member running the code.
    ///
    /// Only meaningful in quoted code, where it reads the member's `--index`; the
    /// build rejects it in code placed at another location.
    pub fn self_id(&self) -> ClusterId {
        panic!("`self_id()` is only available inside `q!`")
    }

    /// Inside `q!` at this cluster: which run of the member this is. It grows
    /// from one run of a member to the next (a restarted member has a larger
    /// one), so it tells apart what two runs of one member said.
    pub fn incarnation(&self) -> u64 {
        panic!("`incarnation()` is only available inside `q!`")
    }

    /// Inside `q!` at this cluster: the member's durable state, in the
    /// directory its `--state-dir` names (`WEIR_STATE_DIR`); open a
    /// [`Log`](crate::durable::Log) or a [`Cell`](crate::durable::Cell) on
    /// it. What a tick writes there is on disk before any record that tick
    /// produced leaves the member. A member started without a state
    /// directory stops with an error saying so.
    pub fn durable(&self) -> crate::durable::Storage {
        panic!("`durable()` is only available inside `q!`")
    }

    /// Inside `q!`, at any location: every member of this cluster, in index order.
    pub fn members(&self) -> &[ClusterId] {
        panic!("`members()` is only available inside `q!`")
    }
}
