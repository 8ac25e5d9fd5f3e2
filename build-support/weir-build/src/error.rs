//! Build errors, reported like compiler errors: message first, then where.

use std::fmt;

/// Everything that stopped code generation, collected so one build shows all.
#[derive(Clone, PartialEq, Eq)]
pub struct BuildError {
    /// Each problem, with where it is.
    pub problems: Vec<Problem>,
}

/// One problem, with the flow-code location it concerns (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    /// `file:line:column` in the flow crate, or a file to add or remove.
    pub at: Option<String>,
}

impl BuildError {
    /// `Ok` when nothing was found.
    pub(crate) fn from_problems(problems: Vec<Problem>) -> Result<(), BuildError> {
        if problems.is_empty() {
            Ok(())
        } else {
            Err(BuildError { problems })
        }
    }

    pub(crate) fn one(message: impl Into<String>, at: Option<String>) -> Self {
        BuildError {
            problems: vec![Problem {
                message: message.into(),
                at,
            }],
        }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {}", p.message)?;
            if let Some(at) = &p.at {
                write!(f, "\n  --> {at}")?;
            }
        }
        Ok(())
    }
}

// `build.rs` usually ends in `.unwrap()`, which prints `Debug`: make it the report.
impl fmt::Debug for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "weir-build found {} problem(s):", self.problems.len())?;
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for BuildError {}

impl From<std::io::Error> for BuildError {
    fn from(err: std::io::Error) -> Self {
        BuildError::one(err.to_string(), None)
    }
}
