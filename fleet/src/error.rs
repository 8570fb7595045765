//! What can go wrong talking to the fleet's Redis.

use std::fmt;
use std::time::Duration;

use failwell::ConfigError;

/// An error of `failwell-fleet`: a bad setting, or Redis unreachable, slow
/// or refusing.
#[derive(Debug)]
#[non_exhaustive]
pub enum FleetError {
    /// A setting is invalid; names the field.
    Config(ConfigError),
    /// The Redis URL could not be parsed.
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        source: redis::RedisError,
    },
    /// Redis did not answer in time, the connection failed, or Redis
    /// answered with an error. `op` says what was being done.
    Redis {
        /// The operation (`connect`, `load scripts`, `rate limit`, ...).
        op: &'static str,
        /// The `redis` crate's error.
        source: redis::RedisError,
    },
    /// failwell's own breaker around Redis is open after recent failures:
    /// the call was not sent. `retry_after` is when it will try again.
    Unavailable {
        /// Time until the next attempt reaches Redis.
        retry_after: Option<Duration>,
    },
    /// Redis answered something this crate did not expect (another
    /// program's key of the same name, say).
    Protocol {
        /// What was expected and what came.
        problem: String,
    },
}

impl FleetError {
    /// Whether the error says Redis is unreachable or slow (as opposed to
    /// a bad setting): the errors a primitive degrades on.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            FleetError::Redis { .. } | FleetError::Unavailable { .. }
        )
    }
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FleetError::Config(c) => write!(f, "{c}"),
            FleetError::Url { url, source } => {
                write!(f, "url: {url:?} is not a Redis URL: {source}")
            }
            FleetError::Redis { op, source } => write!(f, "redis: {op}: {source}"),
            FleetError::Unavailable { retry_after } => match retry_after {
                Some(d) => write!(
                    f,
                    "redis: unavailable after recent failures; next try in {d:?}"
                ),
                None => write!(f, "redis: unavailable after recent failures"),
            },
            FleetError::Protocol { problem } => write!(f, "redis: unexpected reply: {problem}"),
        }
    }
}

impl std::error::Error for FleetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FleetError::Config(c) => Some(c),
            FleetError::Url { source, .. } | FleetError::Redis { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<ConfigError> for FleetError {
    fn from(e: ConfigError) -> Self {
        FleetError::Config(e)
    }
}
