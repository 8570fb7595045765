//! What the watchdog finds, and how a finding reads.

use std::fmt;
use std::time::Duration;

/// What a finding is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FindingKind {
    /// A heartbeat missed its timeout.
    Stall {
        /// The heartbeat's name.
        name: String,
        /// How long since its last beat.
        silent_for: Duration,
        /// Its timeout.
        timeout: Duration,
        /// The name of the thread that registered it, if it had one.
        thread: Option<String>,
    },
    /// A cycle of threads waiting on each other's locks.
    Deadlock {
        /// Each thread in the cycle: its id (as `ThreadId`'s debug text) and
        /// backtrace.
        threads: Vec<(String, String)>,
    },
    /// The process has more threads than its limit allows.
    ThreadLeak {
        /// Threads now.
        threads: u64,
        /// The baseline it is compared with.
        baseline: u64,
        /// The limit exceeded.
        limit: u64,
    },
    /// A registered gauge is above its limit.
    GaugeLeak {
        /// The gauge's name.
        name: String,
        /// Its value now.
        value: u64,
        /// Its baseline.
        baseline: u64,
        /// The limit exceeded.
        limit: u64,
    },
}

/// One report: a finding that appeared (`cleared == false`) or that cleared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What was found (as last seen).
    pub kind: FindingKind,
    /// `true` when this report says the finding has cleared.
    pub cleared: bool,
    /// How long the finding has lasted (zero when it first appears).
    pub lasted: Duration,
}

impl Finding {
    /// A stable identity for the finding, e.g. `stall:order-consumer`.
    pub fn key(&self) -> String {
        key(&self.kind)
    }
}

pub(super) fn key(kind: &FindingKind) -> String {
    match kind {
        FindingKind::Stall { name, .. } => format!("stall:{name}"),
        FindingKind::Deadlock { threads } => {
            let mut ids: Vec<_> = threads.iter().map(|t| t.0.as_str()).collect();
            ids.sort_unstable();
            format!("deadlock:{ids:?}")
        }
        FindingKind::ThreadLeak { .. } => "threads".to_string(),
        FindingKind::GaugeLeak { name, .. } => format!("gauge:{name}"),
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.cleared {
            write!(f, "cleared after {:?}: ", self.lasted)?;
        }
        match &self.kind {
            FindingKind::Stall {
                name,
                silent_for,
                timeout,
                thread,
            } => write!(
                f,
                "stall: heartbeat {name:?} silent for {silent_for:?} (timeout {timeout:?}, thread {})",
                thread.as_deref().unwrap_or("unnamed")
            ),
            FindingKind::Deadlock { threads } => {
                let ids: Vec<_> = threads.iter().map(|t| t.0.as_str()).collect();
                write!(f, "deadlock: lock cycle between threads {ids:?}")
            }
            FindingKind::ThreadLeak {
                threads,
                baseline,
                limit,
            } => write!(
                f,
                "thread leak: {threads} threads (baseline {baseline}, limit {limit})"
            ),
            FindingKind::GaugeLeak {
                name,
                value,
                baseline,
                limit,
            } => write!(
                f,
                "leak: gauge {name:?} at {value} (baseline {baseline}, limit {limit})"
            ),
        }
    }
}
