//! The scripted timeline of the dependency.

use std::time::{Duration, Instant};

/// A phase of the dependency's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Fast and correct.
    Healthy,
    /// Every response takes seconds.
    Slow,
    /// Half the requests fail at once, half hang.
    Failing,
    /// Fast and correct again.
    Recovered,
}

impl Phase {
    pub const ALL: [Phase; 4] = [
        Phase::Healthy,
        Phase::Slow,
        Phase::Failing,
        Phase::Recovered,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Healthy => "healthy",
            Phase::Slow => "slow",
            Phase::Failing => "failing+hanging",
            Phase::Recovered => "recovered",
        }
    }
}

/// Four phases of equal length from a start instant.
#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    pub start: Instant,
    pub phase: Duration,
}

impl Timeline {
    pub fn new(phase: Duration) -> Self {
        Timeline {
            start: Instant::now(),
            phase,
        }
    }

    pub fn total(&self) -> Duration {
        self.phase * 4
    }

    /// The phase at `offset` from the start (the last phase after the end).
    pub fn phase_at(&self, offset: Duration) -> Phase {
        let i = (offset.as_nanos() / self.phase.as_nanos().max(1)) as usize;
        Phase::ALL[i.min(3)]
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}
