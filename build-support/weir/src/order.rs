//! Orderings: whether a stream's records come in an order that is the same
//! on every run.
//!
//! Every [`Stream`](crate::Stream) carries its ordering as a type parameter,
//! [`TotalOrder`] (the default) or [`NoOrder`]. Records merged from several
//! senders or inputs (a cluster's records at a process, `union`, a keyed
//! fold's output) arrive in an order that changes from run to run: such a
//! stream is `NoOrder`, and an operator whose result depends on the order
//! (`fold`, `reduce`, `enumerate`, `first`, the keyed folds) does not
//! type-check on it. The ways out are the commutative forms
//! (`fold_commutative`, ...), whose closure promises that the order does not
//! matter, and [`Stream::assume_ordering`](crate::Stream::assume_ordering)
//! with a [`nondet!`](crate::nondet) that says why it is fine. The types
//! vanish at compile time: the generated code is the same.

/// Records in an order that is the same on every run (given the same inputs).
pub enum TotalOrder {}

/// Records in an order that may change from run to run.
pub enum NoOrder {}

/// [`TotalOrder`] or [`NoOrder`].
pub trait Ordering: sealed::Sealed + 'static {
    /// Whether the order is the same on every run.
    const TOTAL: bool;
}

impl Ordering for TotalOrder {
    const TOTAL: bool = true;
}

impl Ordering for NoOrder {
    const TOTAL: bool = false;
}

/// Implemented for [`TotalOrder`] only: the bound of operators whose result
/// depends on the records' order.
#[diagnostic::on_unimplemented(
    message = "this operator's result depends on the order of the records, and this stream's order changes from run to run (`NoOrder`)",
    label = "called on a stream without a deterministic order",
    note = "records merged from several senders or inputs (a cluster's records, `union`, a keyed fold's output) have no order to rely on",
    note = "if the order does not matter to the closure, use the commutative form (`fold_commutative`, `reduce_commutative`, `fold_keyed_commutative`, `reduce_keyed_commutative`); otherwise say why the nondeterminism is fine: `.assume_ordering(nondet!(\"why\"))`"
)]
pub trait Ordered: Ordering {}

impl Ordered for TotalOrder {}

/// The ordering of a stream made from two: total only if both are.
pub trait Meet<O: Ordering>: Ordering {
    /// The ordering of the two together.
    type Output: Ordering;
}

/// The ordering of a stream made from streams in orders `A` and `B`.
pub type Both<A, B> = <A as Meet<B>>::Output;

impl Meet<TotalOrder> for TotalOrder {
    type Output = TotalOrder;
}

impl Meet<NoOrder> for TotalOrder {
    type Output = NoOrder;
}

impl<O: Ordering> Meet<O> for NoOrder {
    type Output = NoOrder;
}

/// A declaration that a flow accepts nondeterminism at one place, with the
/// reason: made by [`nondet!`](crate::nondet), and shown in the generated
/// code and the flow's pictures.
#[derive(Debug, Clone, Copy)]
pub struct NonDet {
    pub(crate) reason: &'static str,
}

impl NonDet {
    #[doc(hidden)]
    pub const fn new(reason: &'static str) -> NonDet {
        NonDet { reason }
    }

    /// Why the nondeterminism is fine.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

/// Marks nondeterminism the flow accepts, with the reason as a string
/// literal: `stream.assume_ordering(nondet!("the counter only grows"))`.
#[macro_export]
macro_rules! nondet {
    ($reason:literal) => {{
        const _: () = ::core::assert!(
            !$reason.is_empty(),
            "nondet! needs a reason: why the nondeterminism is fine here"
        );
        $crate::order::NonDet::new($reason)
    }};
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::TotalOrder {}
    impl Sealed for super::NoOrder {}
}
