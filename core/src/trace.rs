//! Structured events through the `tracing` crate (the `tracing` cargo
//! feature); without the feature every function here is empty and inlined
//! away. Events are emitted on cold paths only: breaker transitions,
//! listener and callback panics, watchdog findings, health changes — never
//! on a closed pass, an acquire or a rate-limiter check.
//!
//! Targets: `failwell::breaker`, `failwell::watchdog`, `failwell::health`.

#[cfg(feature = "tracing")]
mod on {
    use crate::breaker::{State, Transition};
    use crate::health::Status;
    use crate::watchdog::{Finding, FindingKind};

    fn opened(s: State) -> bool {
        matches!(s, State::Open | State::ForcedOpen)
    }

    pub(crate) fn breaker_transition(name: Option<&str>, t: &Transition) {
        let breaker = name.unwrap_or("");
        let (from, to) = (t.from.as_str(), t.to.as_str());
        if opened(t.to) {
            tracing::warn!(target: "failwell::breaker", breaker, from, to,
                generation = t.generation, "circuit breaker opened");
        } else {
            tracing::info!(target: "failwell::breaker", breaker, from, to,
                generation = t.generation, "circuit breaker state changed");
        }
    }

    pub(crate) fn listener_panicked(name: Option<&str>, t: &Transition) {
        tracing::error!(target: "failwell::breaker", breaker = name.unwrap_or(""),
            from = t.from.as_str(), to = t.to.as_str(), generation = t.generation,
            "circuit breaker listener panicked (caught; counted in listener_panics)");
    }

    pub(crate) fn finding(f: &Finding) {
        let key = f.key();
        let kind = match &f.kind {
            FindingKind::Stall { .. } => "stall",
            FindingKind::Deadlock { .. } => "deadlock",
            FindingKind::ThreadLeak { .. } => "thread_leak",
            FindingKind::GaugeLeak { .. } => "gauge_leak",
        };
        let lasted_ms = f.lasted.as_millis() as u64;
        if f.cleared {
            tracing::info!(target: "failwell::watchdog", kind, key, lasted_ms, cleared = true,
                "{f}");
        } else if let FindingKind::Deadlock { threads } = &f.kind {
            let backtraces: Vec<String> = threads
                .iter()
                .map(|(id, bt)| format!("thread {id}:\n{bt}"))
                .collect();
            tracing::error!(target: "failwell::watchdog", kind, key, lasted_ms, cleared = false,
                backtraces = backtraces.join("\n").as_str(), "{f}");
        } else {
            tracing::warn!(target: "failwell::watchdog", kind, key, lasted_ms, cleared = false,
                "{f}");
        }
    }

    pub(crate) fn callback_panicked(f: &Finding) {
        tracing::error!(target: "failwell::watchdog", key = f.key(),
            "watchdog on_finding callback panicked (caught; counted in callback_panics)");
    }

    pub(crate) fn health_changed(
        check: Option<&str>,
        from: Status,
        to: Status,
        error: Option<&str>,
    ) {
        let (check, from_s, to_s) = (check.unwrap_or(""), from.as_str(), to.as_str());
        let error = error.unwrap_or("");
        if to > from {
            tracing::warn!(target: "failwell::health", check, from = from_s, to = to_s, error,
                "health got worse");
        } else {
            tracing::info!(target: "failwell::health", check, from = from_s, to = to_s, error,
                "health got better");
        }
    }
}

#[cfg(feature = "tracing")]
pub(crate) use on::*;

#[cfg(not(feature = "tracing"))]
mod off {
    use crate::breaker::Transition;
    use crate::health::Status;
    use crate::watchdog::Finding;

    #[inline(always)]
    pub(crate) fn breaker_transition(_: Option<&str>, _: &Transition) {}
    #[inline(always)]
    pub(crate) fn listener_panicked(_: Option<&str>, _: &Transition) {}
    #[inline(always)]
    pub(crate) fn callback_panicked(_: &Finding) {}
    #[inline(always)]
    pub(crate) fn health_changed(_: Option<&str>, _: Status, _: Status, _: Option<&str>) {}
}

#[cfg(not(feature = "tracing"))]
pub(crate) use off::*;
