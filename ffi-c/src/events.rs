//! `fw_event_t`: the one event type every callback receives (breaker
//! transitions, watchdog findings), with `fw_callback_t`.

use std::ffi::{c_char, c_void};

use crate::breaker::fw_breaker_state_t;

/// What an event reports: one of the `FW_EVENT_*` constants.
pub type fw_event_kind_t = u32;
/// A circuit breaker changed state (`from`, `to`).
pub const FW_EVENT_BREAKER_TRANSITION: fw_event_kind_t = 1;
/// A watchdog finding appeared or cleared (`finding`, `cleared`, `name`,
/// `value`, `limit`, `lasted_ns`).
pub const FW_EVENT_WATCHDOG_FINDING: fw_event_kind_t = 2;

/// What a finding is about: one of the `FW_FINDING_*` constants.
pub type fw_finding_kind_t = u32;
/// A heartbeat missed its timeout.
pub const FW_FINDING_STALL: fw_finding_kind_t = 1;
/// A lock cycle (needs the `deadlock-detection` feature).
pub const FW_FINDING_DEADLOCK: fw_finding_kind_t = 2;
/// More threads than the limit.
pub const FW_FINDING_THREAD_LEAK: fw_finding_kind_t = 3;
/// A gauge above its limit.
pub const FW_FINDING_GAUGE_LEAK: fw_finding_kind_t = 4;

/// An event, valid only during the callback. Fields that do not apply to
/// the event's kind are zero (or NULL).
#[repr(C)]
#[derive(Debug)]
pub struct fw_event_t {
    pub kind: fw_event_kind_t,
    /// When it happened, in the monotonic clock's nanoseconds.
    pub at_ns: u64,
    /// Breaker transition: the state before.
    pub from: fw_breaker_state_t,
    /// Breaker transition: the state after.
    pub to: fw_breaker_state_t,
    /// Watchdog finding: what it is about.
    pub finding: fw_finding_kind_t,
    /// Watchdog finding: true when it has cleared.
    pub cleared: bool,
    /// Watchdog finding: the heartbeat's or gauge's name, or NULL.
    pub name: *const c_char,
    /// Watchdog finding: silence (stall, ns), thread count or gauge value.
    pub value: u64,
    /// Watchdog finding: timeout (stall, ns) or the limit exceeded.
    pub limit: u64,
    /// Watchdog finding: how long it lasted (on clearing), ns.
    pub lasted_ns: u64,
    /// A one-line description (both kinds), NUL-terminated.
    pub description: *const c_char,
}

impl fw_event_t {
    pub(crate) fn empty(kind: fw_event_kind_t, at_ns: u64, description: *const c_char) -> Self {
        fw_event_t {
            kind,
            at_ns,
            from: fw_breaker_state_t::FW_BREAKER_CLOSED,
            to: fw_breaker_state_t::FW_BREAKER_CLOSED,
            finding: 0,
            cleared: false,
            name: std::ptr::null(),
            value: 0,
            limit: 0,
            lasted_ns: 0,
            description,
        }
    }
}

/// Every callback: called with an event and the `user_data` given at
/// registration. It must be thread-safe (it may run on any thread, and on
/// several at once), must return promptly, and must not unwind (throw)
/// into failwell.
pub type fw_callback_t =
    Option<unsafe extern "C" fn(event: *const fw_event_t, user_data: *mut c_void)>;
