//! Support for `q!`: how a quoted expression reaches the IR.
//!
//! `q!(expr)` first calls [`record_quote`] with the expression's code, location and
//! captured values, then evaluates to a closure `|_: Hole| expr` that can never be
//! called. The operator receiving it takes the record with `take_records`: the
//! closure itself only carries the type.

pub mod capture;

use crate::ir::{QuotedExpr, SourceLoc};
use std::cell::RefCell;

/// An uninhabited type: a closure taking it can be type-checked but never called.
#[derive(Debug, Clone, Copy)]
pub enum Hole {}

/// A `q!` expression producing a value of type `T`.
///
/// Operators take `impl IntoQuoted<F>` where `F` carries the operator's bound
/// (`F: FnMut(T) -> U` for `map`): rustc elaborates the supertrait and checks the
/// quoted expression against it, so closure parameter types are inferred.
pub trait IntoQuoted<T>: FnOnce(Hole) -> T {}

impl<T, C: FnOnce(Hole) -> T> IntoQuoted<T> for C {}

/// What `q!` records at the point where it is evaluated.
#[derive(Debug)]
pub struct QuoteRecord {
    /// The expression's tokens, with the flow crate's paths as placeholders.
    pub code: &'static str,
    /// `file!()` at the `q!`.
    pub file: &'static str,
    /// `line!()` at the `q!`.
    pub line: u32,
    /// `column!()` at the `q!`.
    pub column: u32,
    /// `module_path!()` at the `q!`.
    pub module: &'static str,
    /// The locals it captures, in order of first use.
    pub captures: Vec<capture::Capture>,
}

thread_local! {
    static PENDING: RefCell<Vec<QuoteRecord>> = const { RefCell::new(Vec::new()) };
}

/// Called by `q!` before it yields its typed closure.
pub fn record_quote(record: QuoteRecord) {
    PENDING.with(|p| p.borrow_mut().push(record));
}

/// Never called: gives a captured local's type to the closure `q!` type-checks.
pub fn hole_of<T>(_: &T) -> T {
    unreachable!("q! closures are never called")
}

/// Why a quoted expression could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuoteError {
    /// The argument was not produced by `q!` right there.
    Missing,
    /// More `q!` were evaluated than the operator takes: (found, expected).
    Ambiguous(usize, usize),
    /// A captured value could not be encoded for the generated code.
    Capture {
        /// The local's name.
        name: String,
        /// Why it could not be encoded.
        reason: String,
    },
}

impl std::fmt::Display for QuoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QuoteError::Missing => write!(f, "this argument must be written as `q!(...)`"),
            QuoteError::Ambiguous(found, expected) => write!(
                f,
                "{found} `q!` expressions were evaluated before this operator took {expected}: \
                 pass each `q!(...)` directly to its operator"
            ),
            QuoteError::Capture { name, reason } => {
                write!(
                    f,
                    "captured value `{name}` cannot be spliced into generated code: {reason}"
                )
            }
        }
    }
}

/// Takes the records of an operator's `count` quoted arguments, in order.
pub(crate) fn take_records(count: usize) -> Result<Vec<QuotedExpr>, QuoteError> {
    let pending = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    match pending.len() {
        0 => return Err(QuoteError::Missing),
        n if n < count => return Err(QuoteError::Missing),
        n if n > count => return Err(QuoteError::Ambiguous(n, count)),
        _ => {}
    }
    pending.into_iter().map(into_expr).collect()
}

fn into_expr(record: QuoteRecord) -> Result<QuotedExpr, QuoteError> {
    let mut captures = Vec::with_capacity(record.captures.len());
    for capture in record.captures {
        let value = capture.value.map_err(|reason| QuoteError::Capture {
            name: capture.name.to_string(),
            reason,
        })?;
        captures.push((capture.name.to_string(), value));
    }
    Ok(QuotedExpr {
        code: record.code.to_string(),
        at: SourceLoc {
            file: record.file.to_string(),
            line: record.line,
            column: record.column,
        },
        module: record.module.to_string(),
        captures,
        traits_in_scope: Vec::new(),
    })
}

/// Forgets quotes recorded but never taken (a flow that panicked half-way).
pub(crate) fn clear_pending() {
    PENDING.with(|p| p.borrow_mut().clear());
}
