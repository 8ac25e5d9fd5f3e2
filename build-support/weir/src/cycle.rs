//! Feedback loops: a stream used before the stream that feeds it is defined.

use crate::ir::NodeId;
use crate::level::Boundedness;
use crate::location::Location;
use crate::order::{Ordering, TotalOrder};
use crate::stream::{Collection, Marker, Stream};
use std::panic::Location as Caller;

/// A cycle's two ends: the handle that completes it, and its stream.
pub type Cycle<'a, T, L, B, O = TotalOrder> = (CycleHandle<'a, T, L, B, O>, Stream<'a, T, L, B, O>);

/// The far end of a cycle: [`complete`](CycleHandle::complete) it with the stream
/// whose records the cycle's stream yields. A handle dropped without completing is
/// a build error at the cycle.
#[must_use = "a cycle must be completed with `.complete(stream)`"]
pub struct CycleHandle<'a, T, L: Location<'a>, B, O = TotalOrder> {
    pub(crate) node: NodeId,
    pub(crate) location: L,
    pub(crate) at: &'static Caller<'static>,
    pub(crate) completed: bool,
    pub(crate) _marker: Marker<'a, T, B, O>,
}

impl<'a, T, L: Location<'a>, B: Boundedness, O: Ordering> CycleHandle<'a, T, L, B, O> {
    /// Feeds the cycle: its stream yields `stream`'s records (next tick for an
    /// unbounded `cycle`; for a `tick_cycle` the loop must pass through
    /// `defer_tick`), in their order.
    #[track_caller]
    pub fn complete(mut self, stream: Stream<'a, T, L, B, O>) {
        let flow = self.location.flow();
        let at = Caller::caller();
        if stream.location().id() != self.location.id() {
            flow.error(
                at,
                format!(
                    "cycle at `{}` completed with a stream at `{}`",
                    flow.location_name(self.location.id()),
                    flow.location_name(stream.location().id())
                ),
            );
        }
        flow.complete_cycle(self.node, stream.node());
        self.completed = true;
    }
}

impl<'a, T, L: Location<'a>, B, O> Drop for CycleHandle<'a, T, L, B, O> {
    fn drop(&mut self) {
        if !self.completed {
            self.location.flow().error(
                self.at,
                "this cycle is never completed: call `.complete(stream)` on its handle".into(),
            );
        }
    }
}
