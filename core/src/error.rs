//! The errors failwell returns: why a call was refused ([`Rejected`]), the
//! wrapper that separates a refusal from the call's own error ([`Error`]),
//! and invalid configuration ([`ConfigError`]).

use std::fmt;
use std::time::Duration;

/// failwell refused to run the call. Where it is known, the variant says when
/// coming back may succeed (`retry_after`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rejected {
    /// A circuit breaker is open (or forced open). `retry_after` is the time
    /// until it lets a probe through, `None` when it stays open until a
    /// manual change (forced open).
    CircuitOpen {
        /// Time until the breaker admits a probe, if known.
        retry_after: Option<Duration>,
    },
    /// A bulkhead had no permit free (within the wait allowed, if any).
    BulkheadFull,
    /// A rate limiter refused; `retry_after` is when the request would conform.
    RateLimited {
        /// Time until the same request would be admitted.
        retry_after: Duration,
    },
    /// A request asked for more than a limiter can ever admit at once (a
    /// cost above the rate limiter's burst). Retrying cannot help.
    ExceedsCapacity {
        /// The cost asked for.
        requested: u32,
        /// The most that can ever be admitted at once.
        capacity: u32,
    },
    /// Load shedding refused the call.
    Shed,
    /// The caller's deadline passed before the call could run or finish.
    DeadlineExceeded,
    /// The retry budget allows no more retries now.
    RetryBudgetExhausted,
}

impl Rejected {
    /// When coming back may succeed, where known.
    pub fn retry_after(&self) -> Option<Duration> {
        match *self {
            Rejected::CircuitOpen { retry_after } => retry_after,
            Rejected::RateLimited { retry_after } => Some(retry_after),
            _ => None,
        }
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejected::CircuitOpen {
                retry_after: Some(d),
            } => write!(f, "circuit open; retry after {d:?}"),
            Rejected::CircuitOpen { retry_after: None } => {
                f.write_str("circuit forced open; no automatic retry")
            }
            Rejected::BulkheadFull => f.write_str("bulkhead full"),
            Rejected::RateLimited { retry_after } => {
                write!(f, "rate limited; retry after {retry_after:?}")
            }
            Rejected::ExceedsCapacity {
                requested,
                capacity,
            } => write!(
                f,
                "request of {requested} exceeds the capacity of {capacity}; it can never be admitted"
            ),
            Rejected::Shed => f.write_str("load shed"),
            Rejected::DeadlineExceeded => f.write_str("deadline exceeded"),
            Rejected::RetryBudgetExhausted => f.write_str("retry budget exhausted"),
        }
    }
}

impl std::error::Error for Rejected {}

/// The result error of a protected call: either failwell refused to run it,
/// or it ran and failed with its own error `E`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error<E> {
    /// failwell refused to run the call.
    Rejected(Rejected),
    /// The call ran and returned this error.
    Inner(E),
}

impl<E> Error<E> {
    /// The refusal, if failwell refused.
    pub fn rejected(&self) -> Option<&Rejected> {
        match self {
            Error::Rejected(r) => Some(r),
            Error::Inner(_) => None,
        }
    }

    /// The call's own error, if it ran and failed.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Error::Rejected(_) => None,
            Error::Inner(e) => Some(e),
        }
    }
}

impl<E> From<Rejected> for Error<E> {
    fn from(r: Rejected) -> Self {
        Error::Rejected(r)
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Rejected(r) => write!(f, "rejected: {r}"),
            Error::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Rejected(r) => Some(r),
            Error::Inner(e) => Some(e),
        }
    }
}

/// An invalid configuration, found when a builder builds or a live instance
/// is reconfigured. It names the field and says what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    field: &'static str,
    problem: String,
}

impl ConfigError {
    /// A configuration error for `field`, described by `problem`.
    pub fn new(field: &'static str, problem: impl Into<String>) -> Self {
        ConfigError {
            field,
            problem: problem.into(),
        }
    }

    /// The name of the offending field (e.g. `"failure_rate_threshold"`).
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// What is wrong with it.
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid `{}`: {}", self.field, self.problem)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests;
