// failwell.hpp — a header-only C++17 wrapper over failwell.h.
//
// RAII handles and permits: a handle frees itself; a permit records
// "ignored" (breaker) or returns itself (bulkhead) if it goes out of scope
// unrecorded, also when an exception unwinds.
//
// Error handling: construction with an invalid configuration throws
// failwell::Error (status and the library's message), because a
// misconfigured object cannot exist. Refusals on the hot path are not
// exceptional: acquire() returns std::optional<Permit> (empty when
// refused) and reports the status and retry-after through `Refusal`.
// Handles are thread-safe, as in C; permits are move-only.
//
// Callbacks (retried, pipelined and timed calls, health checks, watchdog
// reports) are any C++ callables. An exception thrown by a retried,
// pipelined or timed call is caught at the C boundary and rethrown to the
// caller; one thrown by a health check fails the check with its what(); one
// thrown by a watchdog callback is counted (callback_errors()) — none ever
// unwinds into C.
//
// What counts as a failure (the rule of every failwell language): an
// exception thrown by a guarded call is a failure; a thread cancellation
// (glibc's abi::__forced_unwind) is an interruption, not the dependency's
// answer, and counts as ignored; a permit destroyed unrecorded is ignored.
#ifndef FAILWELL_HPP
#define FAILWELL_HPP

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "failwell.h"

#if defined(__GLIBCXX__)
#include <cxxabi.h>
// A forced unwind has no exception object: catching it by reference (as
// glibc documents) trips UndefinedBehaviorSanitizer's null check.
#define FAILWELL_CATCHES_FORCED_UNWIND __attribute__((no_sanitize("null")))
#else
#define FAILWELL_CATCHES_FORCED_UNWIND
#endif

namespace failwell {

/// The version of the library loaded at run time ("MAJOR.MINOR.PATCH");
/// `FW_VERSION_STRING` is the header's.
inline const char *version() noexcept { return fw_version(); }

/// A failwell call failed (invalid configuration or argument).
class Error : public std::runtime_error {
public:
    Error(fw_status_t status, const std::string &what) : std::runtime_error(what), status_(status) {}
    fw_status_t status() const noexcept { return status_; }

private:
    fw_status_t status_;
};

namespace detail {
inline std::string last_error() {
    size_t need = fw_last_error(nullptr, 0);
    std::string s(need, '\0');
    fw_last_error(s.data(), s.size());
    s.resize(need > 0 ? need - 1 : 0);
    return s;
}

inline void check(fw_status_t s) {
    if (s != FW_OK) {
        throw Error(s, std::string(fw_status_str(s)) + ": " + last_error());
    }
}
}  // namespace detail

/// Why an acquire was refused, and when to come back (if known).
struct Refusal {
    fw_status_t status = FW_OK;
    std::optional<std::chrono::nanoseconds> retry_after;
};

namespace detail {
/// A status other than FW_OK from a call that may refuse or stop: an error
/// (FW_EINVAL, FW_EPANIC) throws; a refusal or FW_ECALL goes to `why` (if
/// given) with the wait it names (`wait_ns`, UINT64_MAX for none).
inline void refused(fw_status_t s, uint64_t wait_ns, Refusal *why) {
    if (s >= FW_EINVAL && s != FW_ECALL) {
        check(s);
    }
    if (why != nullptr) {
        why->status = s;
        why->retry_after = std::nullopt;
        if (wait_ns != UINT64_MAX) {
            why->retry_after = std::chrono::nanoseconds(static_cast<int64_t>(wait_ns));
        }
    }
}
}  // namespace detail

class Breaker;

/// Permission to make one call through a Breaker. Record it once; if it is
/// destroyed unrecorded, the call counts as ignored. The Breaker must
/// outlive its permits.
class BreakerPermit {
public:
    BreakerPermit(BreakerPermit &&o) noexcept : b_(std::exchange(o.b_, nullptr)), p_(o.p_) {}
    BreakerPermit &operator=(BreakerPermit &&o) noexcept {
        if (this != &o) {
            reset();
            b_ = std::exchange(o.b_, nullptr);
            p_ = o.p_;
        }
        return *this;
    }
    BreakerPermit(const BreakerPermit &) = delete;
    BreakerPermit &operator=(const BreakerPermit &) = delete;
    ~BreakerPermit() { reset(); }

    void success() { record(FW_OUTCOME_SUCCESS); }
    void failure() { record(FW_OUTCOME_FAILURE); }
    void ignore() { record(FW_OUTCOME_IGNORE); }
    void record(fw_outcome_t outcome, std::chrono::nanoseconds duration = std::chrono::nanoseconds(-1)) {
        if (b_ != nullptr) {
            detail::check(fw_breaker_record(std::exchange(b_, nullptr), &p_, outcome, duration.count()));
        }
    }

private:
    friend class Breaker;
    BreakerPermit(const fw_breaker_t *b, fw_breaker_permit_t p) : b_(b), p_(p) {}
    void reset() noexcept {
        if (b_ != nullptr) {
            fw_breaker_ignore(std::exchange(b_, nullptr), &p_);
        }
    }
    const fw_breaker_t *b_;
    fw_breaker_permit_t p_;
};

/// A circuit breaker.
class Breaker {
public:
    explicit Breaker(const fw_breaker_config_t &config = fw_breaker_config_default()) {
        detail::check(fw_breaker_new(&config, &b_));
    }
    Breaker(Breaker &&o) noexcept : b_(std::exchange(o.b_, nullptr)) {}
    Breaker &operator=(Breaker &&o) noexcept {
        std::swap(b_, o.b_);
        return *this;
    }
    Breaker(const Breaker &) = delete;
    Breaker &operator=(const Breaker &) = delete;
    ~Breaker() { fw_breaker_free(b_); }

    /// The C handle (for the metrics and health registries).
    const fw_breaker_t *native() const noexcept { return b_; }

    /// The configuration in force.
    fw_breaker_config_t config() const {
        fw_breaker_config_t c;
        detail::check(fw_breaker_config_get(b_, &c));
        return c;
    }

    /// Changes thresholds, counts and durations live (not which policies
    /// are on, nor the window); throws Error for an invalid change, which
    /// then changes nothing.
    void reconfigure(const fw_breaker_config_t &config) { detail::check(fw_breaker_reconfigure(b_, &config)); }

    /// A permit, or nothing (with the refusal in `why`, if given). A
    /// discarded permit counts the call as ignored at once.
    [[nodiscard]] std::optional<BreakerPermit> acquire(Refusal *why = nullptr) {
        fw_breaker_permit_t p{};
        uint64_t wait = 0;
        fw_status_t s = fw_breaker_acquire(b_, &p, &wait);
        if (s == FW_OK) {
            return BreakerPermit(b_, p);
        }
        detail::refused(s, wait, why);
        return std::nullopt;
    }

    /// Runs `f` (returning bool: true = success) if admitted; returns
    /// whether it ran. An exception from `f` counts as a failure and
    /// propagates.
    template <typename F>
    FAILWELL_CATCHES_FORCED_UNWIND bool call(F &&f) {
        auto permit = acquire();
        if (!permit) {
            return false;
        }
        try {
            if (f()) {
                permit->success();
            } else {
                permit->failure();
            }
#if defined(__GLIBCXX__)
        } catch (abi::__forced_unwind &) {
            permit->ignore();  // cancelled: no answer from the dependency
            throw;
#endif
        } catch (...) {
            permit->failure();
            throw;
        }
        return true;
    }

    fw_breaker_state_t state() const {
        fw_breaker_state_t s;
        detail::check(fw_breaker_state(b_, &s));
        return s;
    }

    fw_breaker_snapshot_t snapshot() const {
        fw_breaker_snapshot_t s;
        detail::check(fw_breaker_snapshot(b_, &s));
        return s;
    }

    void force_open() { detail::check(fw_breaker_set_manual(b_, FW_BREAKER_FORCE_OPEN)); }
    void reset() { detail::check(fw_breaker_set_manual(b_, FW_BREAKER_RESET)); }
    /// Pass everything, count nothing (until another manual change).
    void disable() { detail::check(fw_breaker_set_manual(b_, FW_BREAKER_DISABLE)); }
    /// Pass everything, count, never trip (until another manual change).
    void metrics_only() { detail::check(fw_breaker_set_manual(b_, FW_BREAKER_METRICS_ONLY_MODE)); }

    /// Opens the breaker for `duration` from now (a server's Retry-After);
    /// then the first caller becomes a half-open probe.
    void open_for(std::chrono::nanoseconds duration) {
        detail::check(fw_breaker_open_for(b_, static_cast<uint64_t>(duration.count() < 0 ? 0 : duration.count())));
    }

    /// How long until a call would be admitted (zero if now); nothing if
    /// only a manual change can admit one.
    std::optional<std::chrono::nanoseconds> retry_after() const {
        uint64_t ns = 0;
        detail::check(fw_breaker_retry_after(b_, &ns));
        if (ns == UINT64_MAX) {
            return std::nullopt;
        }
        return std::chrono::nanoseconds(static_cast<int64_t>(ns));
    }

    /// A transition listener: `from`, `to`, and when (the breaker clock's
    /// nanoseconds).
    using Listener = std::function<void(fw_breaker_state_t from, fw_breaker_state_t to, uint64_t at_ns)>;

    /// Calls `listener` after every state change, on the thread that made
    /// it (after the breaker's lock is released). The library owns the
    /// callable: it is destroyed after its last call, when removed or when
    /// the breaker's last holder (this handle, a pipeline, a registry) goes.
    /// An exception from it is caught and dropped. Returns the id for
    /// remove_listener().
    uint64_t add_listener(Listener listener) {
        auto fn = std::make_unique<Listener>(std::move(listener));
        auto trampoline = [](const fw_event_t *event, void *user_data) noexcept {
            try {
                (*static_cast<Listener *>(user_data))(event->from, event->to, event->at_ns);
            } catch (...) {
            }
        };
        auto destroy = [](void *user_data) noexcept { delete static_cast<Listener *>(user_data); };
        uint64_t id = 0;
        detail::check(fw_breaker_add_listener_owned(b_, trampoline, fn.get(), destroy, &id));
        fn.release();  // the library's now
        return id;
    }

    /// Removes listener `id`: no call starts after this returns (one
    /// running finishes). False if it was not registered.
    bool remove_listener(uint64_t id) {
        bool removed = false;
        detail::check(fw_breaker_remove_listener(b_, id, &removed));
        return removed;
    }

    const fw_breaker_t *raw() const noexcept { return b_; }

private:
    friend class Region;
    friend class Fleet;
    /// Takes ownership of a breaker a region or a fleet made.
    explicit Breaker(fw_breaker_t *owned) noexcept : b_(owned) {}

    fw_breaker_t *b_ = nullptr;
};

/// A permit of a Bulkhead, returned when destroyed.
class BulkheadPermit {
public:
    BulkheadPermit(BulkheadPermit &&o) noexcept : p_(std::exchange(o.p_, fw_bulkhead_permit_t{})) {}
    /// Returns the permit held, then takes `o`'s.
    BulkheadPermit &operator=(BulkheadPermit &&o) noexcept {
        if (this != &o) {
            if (p_._bulkhead != nullptr) {
                fw_bulkhead_permit_release(&p_);
            }
            p_ = std::exchange(o.p_, fw_bulkhead_permit_t{});
        }
        return *this;
    }
    BulkheadPermit(const BulkheadPermit &) = delete;
    BulkheadPermit &operator=(const BulkheadPermit &) = delete;
    ~BulkheadPermit() {
        if (p_._bulkhead != nullptr) {
            fw_bulkhead_permit_release(&p_);
        }
    }

private:
    friend class Bulkhead;
    explicit BulkheadPermit(fw_bulkhead_permit_t p) : p_(p) {}
    fw_bulkhead_permit_t p_;
};

class Region;

/// A bulkhead.
class Bulkhead {
public:
    explicit Bulkhead(const fw_bulkhead_config_t &config = fw_bulkhead_config_default()) {
        detail::check(fw_bulkhead_new(&config, &h_));
    }
    Bulkhead(Bulkhead &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    Bulkhead &operator=(Bulkhead &&o) noexcept {
        std::swap(h_, o.h_);
        return *this;
    }
    Bulkhead(const Bulkhead &) = delete;
    Bulkhead &operator=(const Bulkhead &) = delete;
    ~Bulkhead() { fw_bulkhead_free(h_); }

    /// The C handle.
    const fw_bulkhead_t *native() const noexcept { return h_; }

    /// A permit now, or nothing. A discarded permit is returned at once.
    [[nodiscard]] std::optional<BulkheadPermit> try_acquire(fw_priority_t prio = FW_PRIORITY_NORMAL) {
        fw_bulkhead_permit_t p{};
        fw_status_t s = fw_bulkhead_try_acquire(h_, prio, &p);
        return finish(s, p);
    }

    /// A permit within `timeout`, or nothing. A discarded permit is
    /// returned at once.
    [[nodiscard]] std::optional<BulkheadPermit> acquire_for(std::chrono::nanoseconds timeout,
                                              fw_priority_t prio = FW_PRIORITY_NORMAL) {
        fw_bulkhead_permit_t p{};
        fw_status_t s = fw_bulkhead_acquire_timeout(h_, prio, static_cast<uint64_t>(timeout.count()), &p);
        return finish(s, p);
    }

    fw_bulkhead_snapshot_t snapshot() const {
        fw_bulkhead_snapshot_t s;
        detail::check(fw_bulkhead_snapshot(h_, &s));
        return s;
    }

    /// Changes the live bulkhead to `config`, all or nothing (throws
    /// `failwell::Error` and changes nothing if it is invalid).
    void reconfigure(const fw_bulkhead_config_t &config) { detail::check(fw_bulkhead_reconfigure(h_, &config)); }

private:
    static std::optional<BulkheadPermit> finish(fw_status_t s, fw_bulkhead_permit_t p) {
        if (s == FW_OK) {
            return BulkheadPermit(p);
        }
        if (s >= FW_EINVAL) {
            detail::check(s);
        }
        return std::nullopt;
    }
    friend class Region;
    /// Takes ownership of a bulkhead a region made.
    explicit Bulkhead(fw_bulkhead_t *owned) noexcept : h_(owned) {}

    fw_bulkhead_t *h_ = nullptr;
};

/// A rate limiter.
class RateLimiter {
public:
    explicit RateLimiter(const fw_rate_limiter_config_t &config) {
        detail::check(fw_rate_limiter_new(&config, &l_));
    }
    RateLimiter(RateLimiter &&o) noexcept : l_(std::exchange(o.l_, nullptr)) {}
    RateLimiter &operator=(RateLimiter &&o) noexcept {
        std::swap(l_, o.l_);
        return *this;
    }
    RateLimiter(const RateLimiter &) = delete;
    RateLimiter &operator=(const RateLimiter &) = delete;
    ~RateLimiter() { fw_rate_limiter_free(l_); }

    /// The C handle.
    const fw_rate_limiter_t *native() const noexcept { return l_; }

    /// Admitted now? Otherwise `why` says when to come back. (The tokens
    /// are spent when it returns true: hence [[nodiscard]].)
    [[nodiscard]] bool try_acquire(uint32_t n = 1, Refusal *why = nullptr) {
        uint64_t wait = 0;
        fw_status_t s = fw_rate_limiter_try_acquire(l_, n, &wait);
        if (s == FW_OK) {
            return true;
        }
        detail::refused(s, wait, why);
        return false;
    }

    /// Admitted within `timeout` (sleeping until the slot reserved for it,
    /// never spinning)? Otherwise `why` says why: the wait was longer than
    /// the timeout, or the cost exceeds the burst.
    [[nodiscard]] bool acquire_for(std::chrono::nanoseconds timeout, uint32_t n = 1, Refusal *why = nullptr) {
        uint64_t t = static_cast<uint64_t>(timeout.count() < 0 ? 0 : timeout.count());
        fw_status_t s = fw_rate_limiter_acquire_timeout(l_, n, t);
        if (s == FW_OK) {
            return true;
        }
        detail::refused(s, UINT64_MAX, why);
        return false;
    }

    /// Changes the live limiter to `config`, all or nothing (throws
    /// `failwell::Error` and changes nothing if it is invalid).
    void reconfigure(const fw_rate_limiter_config_t &config) {
        detail::check(fw_rate_limiter_reconfigure(l_, &config));
    }

    fw_rate_limiter_snapshot_t snapshot() const {
        fw_rate_limiter_snapshot_t s;
        detail::check(fw_rate_limiter_snapshot(l_, &s));
        return s;
    }

private:
    friend class Region;
    friend class Fleet;
    /// Takes ownership of a limiter a region or a fleet made.
    explicit RateLimiter(fw_rate_limiter_t *owned) noexcept : l_(owned) {}

    fw_rate_limiter_t *l_ = nullptr;
};

#if defined(__unix__)
/// A host region: shared memory the processes of a host open by name.
/// The primitives it hands out are the ordinary ones, and outlive it.
class Region {
public:
    /// Creates or attaches `/dev/shm/<name>` (or a path), `size` bytes if
    /// new (throws `failwell::Error`: FW_EIO, FW_EREGION, FW_EINVAL).
    Region(const char *name_or_path, size_t size) {
        detail::check(fw_region_open(name_or_path, size, &r_));
    }
    Region(Region &&o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
    Region &operator=(Region &&o) noexcept {
        std::swap(r_, o.r_);
        return *this;
    }
    Region(const Region &) = delete;
    Region &operator=(const Region &) = delete;
    ~Region() { fw_region_close(r_); }

    /// The rate limiter `name`, created with `config` if absent; every
    /// process asking for it shares it. A name held with another
    /// configuration throws (FW_EREGION).
    RateLimiter rate_limiter(const char *name, const fw_rate_limiter_config_t &config) {
        fw_rate_limiter_t *l = nullptr;
        detail::check(fw_region_rate_limiter_new(r_, name, &config, &l));
        return RateLimiter(l);
    }

    /// The rate limiter `name` with the region's configuration.
    RateLimiter attach_rate_limiter(const char *name) {
        fw_rate_limiter_t *l = nullptr;
        detail::check(fw_region_rate_limiter_attach(r_, name, &l));
        return RateLimiter(l);
    }

    /// The circuit breaker `name`: one breaker for every process using the
    /// region (a trip by any is seen by all on their next call; at most
    /// `half_open_calls` probes host-wide), created with `config` if
    /// absent. A name held with another configuration throws (FW_EREGION).
    Breaker circuit_breaker(const char *name, const fw_breaker_config_t &config = fw_breaker_config_default()) {
        fw_breaker_t *b = nullptr;
        detail::check(fw_region_breaker_new(r_, name, &config, &b));
        return Breaker(b);
    }

    /// The circuit breaker `name` with the region's configuration.
    Breaker attach_circuit_breaker(const char *name) {
        fw_breaker_t *b = nullptr;
        detail::check(fw_region_breaker_attach(r_, name, &b));
        return Breaker(b);
    }

    /// The bulkhead `name`: one limit for every process using the region,
    /// created with `config` if absent; permits of a process that dies come
    /// back within a second. A name held with another configuration throws
    /// (FW_EREGION).
    Bulkhead bulkhead(const char *name, const fw_bulkhead_config_t &config = fw_bulkhead_config_default()) {
        fw_bulkhead_t *h = nullptr;
        detail::check(fw_region_bulkhead_new(r_, name, &config, &h));
        return Bulkhead(h);
    }

    /// The bulkhead `name` with the region's configuration.
    Bulkhead attach_bulkhead(const char *name) {
        fw_bulkhead_t *h = nullptr;
        detail::check(fw_region_bulkhead_attach(r_, name, &h));
        return Bulkhead(h);
    }

    /// Removes the region file (processes using it keep it mapped).
    static void unlink(const char *name_or_path) { detail::check(fw_region_unlink(name_or_path)); }

private:
    fw_region_t *r_ = nullptr;
};
#endif

/// A connection to the fleet's Redis (`redis://host:port/db`): the rate
/// limiters and breakers it hands out are the ordinary ones, shared by
/// every instance using their names, and outlive it.
class Fleet {
public:
    /// Connects now (throws `failwell::Error`: FW_EFLEET if Redis cannot
    /// be reached within the timeouts, FW_EINVAL for a bad setting or URL);
    /// `connect = false` does not reach Redis (the primitives decide on
    /// their fallbacks until it answers).
    explicit Fleet(const char *url, const fw_fleet_config_t &config = fw_fleet_config_default(),
                   bool connect = true) {
        detail::check(connect ? fw_fleet_connect(url, &config, &f_) : fw_fleet_open(url, &config, &f_));
    }
    Fleet(const Fleet &) = delete;
    Fleet &operator=(const Fleet &) = delete;
    Fleet(Fleet &&o) noexcept : f_(std::exchange(o.f_, nullptr)) {}
    Fleet &operator=(Fleet &&o) noexcept {
        std::swap(f_, o.f_);
        return *this;
    }
    ~Fleet() { fw_fleet_free(f_); }

    const fw_fleet_t *native() const noexcept { return f_; }

    /// The rate limit `name` for the fleet, leased (default) or exact, as
    /// `fleet_config` says; its counts with `fw_fleet_rate_limiter_snapshot`
    /// on `native()`. Not reconfigurable, no pipeline layer.
    RateLimiter rate_limiter(const char *name, const fw_rate_limiter_config_t &config,
                             const fw_fleet_limiter_config_t &fleet_config = fw_fleet_limiter_config_default()) {
        fw_rate_limiter_t *l = nullptr;
        detail::check(fw_fleet_rate_limiter_new(f_, name, &config, &fleet_config, &l));
        return RateLimiter(l);
    }

    /// The circuit breaker `name`, whose verdict every instance using the
    /// name shares (each refuses within about a sync interval after the
    /// fleet opens; at most `half_open_calls` probes fleet-wide).
    Breaker circuit_breaker(const char *name, const fw_breaker_config_t &config = fw_breaker_config_default(),
                            const fw_fleet_breaker_config_t &fleet_config = fw_fleet_breaker_config_default()) {
        fw_breaker_t *b = nullptr;
        detail::check(fw_fleet_breaker_new(f_, name, &config, &fleet_config, &b));
        return Breaker(b);
    }

    /// A PING's round trip (throws FW_EFLEET if Redis does not answer).
    std::chrono::nanoseconds ping() const {
        uint64_t ns = 0;
        detail::check(fw_fleet_ping(f_, &ns));
        return std::chrono::nanoseconds(static_cast<int64_t>(ns));
    }

    /// The connection's Redis request counts.
    fw_fleet_snapshot_t snapshot() const {
        fw_fleet_snapshot_t s{};
        detail::check(fw_fleet_snapshot(f_, &s));
        return s;
    }

private:
    fw_fleet_t *f_ = nullptr;
};

/// Chaos injection: failures and delays at configured rates, for tests
/// and game days.
class Chaos {
public:
    explicit Chaos(const fw_chaos_config_t &config = fw_chaos_config_default()) {
        detail::check(fw_chaos_new(&config, &c_));
    }
    Chaos(Chaos &&o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
    Chaos &operator=(Chaos &&o) noexcept {
        std::swap(c_, o.c_);
        return *this;
    }
    Chaos(const Chaos &) = delete;
    Chaos &operator=(const Chaos &) = delete;
    ~Chaos() { fw_chaos_free(c_); }

    const fw_chaos_t *native() const noexcept { return c_; }

    /// Is this call to fail? (Counted if so.)
    [[nodiscard]] bool should_fail() const {
        bool out = false;
        detail::check(fw_chaos_should_fail(c_, &out));
        return out;
    }
    /// Sleeps the calling thread if this call is to be delayed.
    void inject_latency() const { detail::check(fw_chaos_inject_latency(c_)); }
    void set_enabled(bool on) { detail::check(fw_chaos_set_enabled(c_, on)); }
    /// Changes rates, delay and switch, all or nothing (the seed stays).
    void reconfigure(const fw_chaos_config_t &config) { detail::check(fw_chaos_reconfigure(c_, &config)); }

private:
    fw_chaos_t *c_ = nullptr;
};

/// Client-side adaptive throttling (Google SRE): rejects requests locally
/// with a probability that grows as the backend accepts fewer of them.
class Throttler {
public:
    /// Multiplier `k` (>= 1; the SRE book's 2) over a sliding `window`
    /// (>= 1 s; the book's 2 minutes); `seed` 0: a fresh random seed.
    explicit Throttler(double k = 2.0, std::chrono::nanoseconds window = std::chrono::minutes(2), uint64_t seed = 0) {
        detail::check(fw_throttler_new(k, static_cast<uint64_t>(window.count() < 0 ? 0 : window.count()), seed, &t_));
    }
    Throttler(Throttler &&o) noexcept : t_(std::exchange(o.t_, nullptr)) {}
    Throttler &operator=(Throttler &&o) noexcept {
        std::swap(t_, o.t_);
        return *this;
    }
    Throttler(const Throttler &) = delete;
    Throttler &operator=(const Throttler &) = delete;
    ~Throttler() { fw_throttler_free(t_); }

    const fw_throttler_t *native() const noexcept { return t_; }

    /// Counts a request and decides: send it (true) or reject it locally.
    [[nodiscard]] bool try_send() const {
        fw_status_t s = fw_throttler_try_send(t_);
        if (s == FW_OK) {
            return true;
        }
        detail::refused(s, UINT64_MAX, nullptr);
        return false;
    }
    /// The backend accepted a request.
    void accepted() const { detail::check(fw_throttler_accepted(t_)); }

private:
    fw_throttler_t *t_ = nullptr;
};

/// A retry policy: backoff, jitter, attempts, an optional budget.
class Retry {
public:
    explicit Retry(const fw_retry_config_t &config = fw_retry_config_default()) {
        detail::check(fw_retry_new(&config, &r_));
    }
    Retry(Retry &&o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
    Retry &operator=(Retry &&o) noexcept {
        std::swap(r_, o.r_);
        return *this;
    }
    Retry(const Retry &) = delete;
    Retry &operator=(const Retry &) = delete;
    ~Retry() { fw_retry_free(r_); }

    const fw_retry_t *native() const noexcept { return r_; }

    /// The delay after attempt `attempt` (1-based), jittered.
    std::chrono::nanoseconds delay(uint32_t attempt, std::chrono::nanoseconds previous = {}) const {
        uint64_t out = 0;
        detail::check(fw_retry_delay(r_, attempt, static_cast<uint64_t>(previous.count()), &out));
        return std::chrono::nanoseconds(static_cast<int64_t>(out));
    }

    /// Runs `f(attempt)` — returning 0 for success, > 0 for a failure worth
    /// retrying, < 0 for a final failure — under the policy, sleeping between
    /// attempts, never past `timeout` (0: none). Returns the C status
    /// (FW_OK, FW_ECALL when the policy gave up, a rejection); `*last` gets
    /// the last result. An exception from `f` ends the loop and is rethrown.
    template <class F>
    fw_status_t call(F &&f, std::chrono::nanoseconds timeout = {}, int32_t *last = nullptr) const {
        struct Ctx {
            std::remove_reference_t<F> *f;
            std::exception_ptr error;
        } ctx{&f, nullptr};
        auto trampoline = [](void *user_data, uint32_t attempt) noexcept -> int32_t {
            auto *c = static_cast<Ctx *>(user_data);
            try {
                return static_cast<int32_t>((*c->f)(attempt));
            } catch (...) {
                c->error = std::current_exception();
                return -1;
            }
        };
        int32_t result = 0;
        fw_status_t s = fw_retry_call(r_, static_cast<uint64_t>(timeout.count()), trampoline, &ctx, &result);
        if (ctx.error) {
            std::rethrow_exception(ctx.error);
        }
        if (s >= FW_EINVAL && s != FW_ECALL) {
            detail::check(s);
        }
        if (last != nullptr) {
            *last = result;
        }
        return s;
    }

    /// The step-wise form, for event loops that sleep with their own timer:
    /// starts a call (never past `deadline_ns`, an instant from
    /// fw_deadline_after; 0 = none), or nothing if that deadline has passed.
    std::optional<fw_retry_run_t> begin(uint64_t deadline_ns = 0) const {
        fw_retry_run_t run;
        fw_status_t s = fw_retry_begin(r_, deadline_ns, &run);
        if (s == FW_OK) {
            return run;
        }
        if (s >= FW_EINVAL) {
            detail::check(s);
        }
        return std::nullopt;
    }

    /// After a failed attempt of `run`: how long to wait before the next,
    /// or nothing when the policy gives up (`why->status` FW_ECALL) or the
    /// budget refuses (FW_REJECTED_RETRY_BUDGET_EXHAUSTED). Never blocks.
    std::optional<std::chrono::nanoseconds> next(fw_retry_run_t &run, std::chrono::nanoseconds at_least = {},
                                                 Refusal *why = nullptr) const {
        uint64_t delay = 0;
        fw_status_t s = fw_retry_next(r_, &run, static_cast<uint64_t>(at_least.count()), &delay);
        if (s == FW_OK) {
            return std::chrono::nanoseconds(static_cast<int64_t>(delay));
        }
        detail::refused(s, UINT64_MAX, why);
        return std::nullopt;
    }

    fw_retry_snapshot_t snapshot() const {
        fw_retry_snapshot_t out;
        detail::check(fw_retry_snapshot(r_, &out));
        return out;
    }

private:
    fw_retry_t *r_ = nullptr;
};

/// A permit from an AdaptiveLimit: report success() or dropped() once;
/// destroyed unreported, it is returned without a sample.
class AdaptivePermit {
public:
    AdaptivePermit(AdaptivePermit &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    AdaptivePermit(const AdaptivePermit &) = delete;
    AdaptivePermit &operator=(const AdaptivePermit &) = delete;
    /// Returns the permit held (without a sample), then takes `o`'s.
    AdaptivePermit &operator=(AdaptivePermit &&o) noexcept {
        if (this != &o) {
            if (p_ != nullptr) {
                fw_adaptive_permit_release(p_);
            }
            p_ = std::exchange(o.p_, nullptr);
        }
        return *this;
    }
    ~AdaptivePermit() {
        if (p_ != nullptr) {
            fw_adaptive_permit_release(p_);
        }
    }

    /// The call completed; its latency is a sample.
    void success() {
        if (p_ != nullptr) {
            detail::check(fw_adaptive_permit_success(std::exchange(p_, nullptr)));
        }
    }

    /// The call was dropped (timed out, refused for overload).
    void dropped() {
        if (p_ != nullptr) {
            detail::check(fw_adaptive_permit_dropped(std::exchange(p_, nullptr)));
        }
    }

private:
    friend class AdaptiveLimit;
    explicit AdaptivePermit(fw_adaptive_permit_t *p) : p_(p) {}
    fw_adaptive_permit_t *p_;
};

/// An adaptive concurrency limit (load shedding).
class AdaptiveLimit {
public:
    explicit AdaptiveLimit(const fw_adaptive_limit_config_t &config = fw_adaptive_limit_config_default()) {
        detail::check(fw_adaptive_limit_new(&config, &l_));
    }
    AdaptiveLimit(AdaptiveLimit &&o) noexcept : l_(std::exchange(o.l_, nullptr)) {}
    /// Takes `o`'s adaptivelimit; the one held before is freed with `o`.
    AdaptiveLimit &operator=(AdaptiveLimit &&o) noexcept {
        std::swap(l_, o.l_);
        return *this;
    }
    AdaptiveLimit(const AdaptiveLimit &) = delete;
    AdaptiveLimit &operator=(const AdaptiveLimit &) = delete;
    ~AdaptiveLimit() { fw_adaptive_limit_free(l_); }

    const fw_adaptive_limit_t *native() const noexcept { return l_; }

    /// A permit, or nothing when shed.
    std::optional<AdaptivePermit> try_acquire(fw_priority_t prio = FW_PRIORITY_NORMAL) {
        fw_adaptive_permit_t *p = nullptr;
        fw_status_t s = fw_adaptive_limit_try_acquire(l_, prio, &p);
        if (s == FW_OK) {
            return AdaptivePermit(p);
        }
        if (s >= FW_EINVAL) {
            detail::check(s);
        }
        return std::nullopt;
    }

    /// The current limit.
    uint64_t limit() const {
        uint64_t limit = 0, in_flight = 0;
        detail::check(fw_adaptive_limit_get(l_, &limit, &in_flight));
        return limit;
    }

private:
    fw_adaptive_limit_t *l_ = nullptr;
};

namespace detail {
template <class F>
std::optional<int32_t> timed_call(const fw_timeout_pool_t *pool, std::chrono::nanoseconds timeout, F f,
                                  Refusal *why) {
    struct Ctx {
        F f;
        std::exception_ptr error;
    };
    auto ctx = std::make_shared<Ctx>(Ctx{std::move(f), nullptr});
    // The worker owns one reference until the call returns, even if the
    // caller has stopped waiting (the C API runs f exactly once unless it
    // refuses the call).
    auto *held = new std::shared_ptr<Ctx>(ctx);
    auto trampoline = [](void *user_data) noexcept -> int32_t {
        std::unique_ptr<std::shared_ptr<Ctx>> own(static_cast<std::shared_ptr<Ctx> *>(user_data));
        try {
            return (*own)->f();
        } catch (...) {
            (*own)->error = std::current_exception();
            return -1;
        }
    };
    uint64_t deadline = 0;
    detail::check(fw_deadline_after(static_cast<uint64_t>(timeout.count()), &deadline));
    int32_t result = 0;
    fw_status_t s = pool == nullptr ? fw_call_with_timeout(deadline, trampoline, held, &result)
                                    : fw_timeout_pool_call(pool, deadline, trampoline, held, &result);
    if (s == FW_REJECTED_BULKHEAD_FULL || s >= FW_EINVAL) {
        delete held;  // refused: f never ran
    }
    if (s == FW_OK) {
        if (ctx->error) {
            std::rethrow_exception(ctx->error);
        }
        return result;
    }
    if (s >= FW_EINVAL) {
        detail::check(s);
    }
    if (why != nullptr) {
        why->status = s;
        why->retry_after = std::nullopt;
    }
    return std::nullopt;
}
}  // namespace detail

/// Runs `f()` (returning int32_t) on failwell's default helper pool and
/// waits at most `timeout`. Returns its result, or nothing when the time ran
/// out (the call is abandoned and finishes on its own; its state is kept
/// alive until it does) or every worker was busy (`why` says which). An
/// exception from `f` that arrives in time is rethrown.
template <class F>
std::optional<int32_t> call_with_timeout(std::chrono::nanoseconds timeout, F f, Refusal *why = nullptr) {
    return detail::timed_call(nullptr, timeout, std::move(f), why);
}

/// A bounded pool of helper threads of one's own (`call_with_timeout` uses
/// a default one of 64).
class TimeoutPool {
public:
    explicit TimeoutPool(uint32_t max_threads,
                         std::chrono::nanoseconds idle_timeout = std::chrono::nanoseconds(0)) {
        detail::check(fw_timeout_pool_new(max_threads, static_cast<uint64_t>(idle_timeout.count()), &p_));
    }
    TimeoutPool(TimeoutPool &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    /// Takes `o`'s timeoutpool; the one held before is freed with `o`.
    TimeoutPool &operator=(TimeoutPool &&o) noexcept {
        std::swap(p_, o.p_);
        return *this;
    }
    TimeoutPool(const TimeoutPool &) = delete;
    TimeoutPool &operator=(const TimeoutPool &) = delete;
    ~TimeoutPool() { fw_timeout_pool_free(p_); }

    const fw_timeout_pool_t *native() const noexcept { return p_; }

    /// As `failwell::call_with_timeout`, on this pool.
    template <class F>
    std::optional<int32_t> call(std::chrono::nanoseconds timeout, F f, Refusal *why = nullptr) const {
        return detail::timed_call(p_, timeout, std::move(f), why);
    }

    fw_timeout_pool_snapshot_t snapshot() const {
        fw_timeout_pool_snapshot_t out;
        detail::check(fw_timeout_pool_snapshot(p_, &out));
        return out;
    }

private:
    fw_timeout_pool_t *p_ = nullptr;
};

/// A heartbeat registered with a Watchdog; unregistered on destruction.
class Heartbeat {
public:
    Heartbeat(Heartbeat &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    Heartbeat(const Heartbeat &) = delete;
    Heartbeat &operator=(const Heartbeat &) = delete;
    /// Unregisters the heartbeat held, then takes `o`'s.
    Heartbeat &operator=(Heartbeat &&o) noexcept {
        if (this != &o) {
            fw_heartbeat_free(h_);
            h_ = std::exchange(o.h_, nullptr);
        }
        return *this;
    }
    ~Heartbeat() { fw_heartbeat_free(h_); }

    /// Proves progress now.
    void beat() { detail::check(fw_heartbeat_beat(h_)); }

private:
    friend class Watchdog;
    explicit Heartbeat(fw_heartbeat_t *h) : h_(h) {}
    fw_heartbeat_t *h_;
};

/// A gauge registered with a Watchdog; unregistered on destruction (after
/// which its read function never runs again).
class Gauge {
public:
    Gauge(Gauge &&o) noexcept : g_(std::exchange(o.g_, nullptr)), read_(std::move(o.read_)) {}
    Gauge(const Gauge &) = delete;
    Gauge &operator=(const Gauge &) = delete;
    /// Unregisters the gauge held (its read function never runs again),
    /// then takes `o`'s.
    Gauge &operator=(Gauge &&o) noexcept {
        if (this != &o) {
            fw_gauge_free(g_);
            g_ = std::exchange(o.g_, nullptr);
            read_ = std::move(o.read_);
        }
        return *this;
    }
    ~Gauge() { fw_gauge_free(g_); }  // before read_ goes

private:
    friend class Watchdog;
    Gauge(fw_gauge_t *g, std::unique_ptr<std::function<uint64_t()>> read) : g_(g), read_(std::move(read)) {}
    fw_gauge_t *g_;
    std::unique_ptr<std::function<uint64_t()>> read_;
};

/// A watchdog on its own thread; `on_finding` gets each finding when it
/// appears and when it clears (on the watchdog's thread).
class Watchdog {
public:
    using Callback = std::function<void(const fw_event_t &)>;

    explicit Watchdog(Callback on_finding, const fw_watchdog_config_t &config = fw_watchdog_config_default())
        : state_(std::make_unique<State>(std::move(on_finding))) {
        auto trampoline = [](const fw_event_t *event, void *user_data) noexcept {
            auto *st = static_cast<State *>(user_data);
            try {
                st->callback(*event);
            } catch (...) {
                st->errors.fetch_add(1, std::memory_order_relaxed);
            }
        };
        detail::check(fw_watchdog_new(&config, trampoline, state_.get(), &w_));
    }
    Watchdog(Watchdog &&o) noexcept : state_(std::move(o.state_)), w_(std::exchange(o.w_, nullptr)) {}
    /// Takes `o`'s watchdog; the one held before is freed with `o`.
    Watchdog &operator=(Watchdog &&o) noexcept {
        std::swap(w_, o.w_);
        std::swap(state_, o.state_);
        return *this;
    }
    Watchdog(const Watchdog &) = delete;
    Watchdog &operator=(const Watchdog &) = delete;
    /// Stops and joins the watchdog's thread before the callback goes.
    ~Watchdog() { fw_watchdog_free(w_); }

    const fw_watchdog_t *native() const noexcept { return w_; }

    /// A heartbeat that must beat at least every `timeout`.
    Heartbeat heartbeat(const std::string &name, std::chrono::nanoseconds timeout) {
        fw_heartbeat_t *h = nullptr;
        detail::check(fw_watchdog_heartbeat(w_, name.c_str(), static_cast<uint64_t>(timeout.count()), &h));
        return Heartbeat(h);
    }

    /// A gauge: `read()` returns a resource count, reported as a leak when
    /// above `factor` x `baseline` (factor 0: none) or `ceiling` (0: none).
    /// A read that throws reads 0.
    Gauge gauge(const std::string &name, std::function<uint64_t()> read, uint64_t baseline, double factor = 2.0,
                uint64_t ceiling = 0) {
        auto fn = std::make_unique<std::function<uint64_t()>>(std::move(read));
        auto trampoline = [](void *user_data) noexcept -> uint64_t {
            try {
                return (*static_cast<std::function<uint64_t()> *>(user_data))();
            } catch (...) {
                return 0;
            }
        };
        fw_gauge_t *g = nullptr;
        detail::check(fw_watchdog_gauge(w_, name.c_str(), trampoline, fn.get(), baseline, factor, ceiling, &g));
        return Gauge(g, std::move(fn));
    }

    /// Reports a pool's abandoned calls above `max_abandoned` as a leak.
    Gauge watch_pool(const std::string &name, const TimeoutPool &pool, uint64_t max_abandoned) {
        fw_gauge_t *g = nullptr;
        detail::check(fw_watchdog_watch_pool(w_, name.c_str(), pool.native(), max_abandoned, &g));
        return Gauge(g, nullptr);
    }

    /// Callback invocations that threw (caught, counted).
    uint64_t callback_errors() const noexcept { return state_->errors.load(std::memory_order_relaxed); }

private:
    struct State {
        explicit State(Callback cb) : callback(std::move(cb)) {}
        Callback callback;
        std::atomic<uint64_t> errors{0};
    };
    std::unique_ptr<State> state_;
    fw_watchdog_t *w_ = nullptr;
};

/// A health registry: checks run in the background, read cheaply.
class Health {
public:
    /// A check: nothing when healthy, else why not. A check that throws
    /// fails with the exception's what().
    using Check = std::function<std::optional<std::string>()>;

    explicit Health(std::chrono::nanoseconds interval = std::chrono::seconds(5)) {
        detail::check(fw_health_new(static_cast<uint64_t>(interval.count()), &h_));
    }
    Health(Health &&o) noexcept : h_(std::exchange(o.h_, nullptr)), checks_(std::move(o.checks_)) {}
    /// Takes `o`'s health; the one held before is freed with `o`.
    Health &operator=(Health &&o) noexcept {
        std::swap(h_, o.h_);
        std::swap(checks_, o.checks_);
        return *this;
    }
    Health(const Health &) = delete;
    Health &operator=(const Health &) = delete;
    /// Stops the registry's thread and waits for any check still running
    /// (one past its timeout included) before the checks go.
    ~Health() { fw_health_free(h_); }

    const fw_health_t *native() const noexcept { return h_; }

    void add(const std::string &name, bool critical, std::chrono::nanoseconds timeout, Check check) {
        checks_.push_back(std::make_unique<Check>(std::move(check)));
        auto trampoline = [](void *user_data, char *error, size_t len) noexcept -> int32_t {
            std::optional<std::string> why;
            try {
                why = (*static_cast<Check *>(user_data))();
            } catch (const std::exception &e) {
                why = e.what();
            } catch (...) {
                why = "unknown exception";
            }
            if (!why) {
                return 0;
            }
            if (len > 0) {
                size_t n = why->size() < len - 1 ? why->size() : len - 1;
                why->copy(error, n);
                error[n] = '\0';
            }
            return 1;
        };
        fw_status_t s = fw_health_register(h_, name.c_str(), critical, static_cast<uint64_t>(timeout.count()),
                                           trampoline, checks_.back().get());
        if (s != FW_OK) {
            checks_.pop_back();
            detail::check(s);
        }
    }

    /// A breaker as a check: open reads `when_open`.
    void add_breaker(const std::string &name, const Breaker &breaker,
                     fw_health_status_t when_open = FW_HEALTH_DEGRADED) {
        detail::check(fw_health_register_breaker(h_, name.c_str(), breaker.native(), when_open));
    }

    /// The aggregate of the last round, or of a round run now.
    fw_health_status_t status(bool run_now = false) const {
        fw_health_status_t out = FW_HEALTH_HEALTHY;
        detail::check(fw_health_status(h_, run_now, &out));
        return out;
    }

private:
    fw_health_t *h_ = nullptr;
    std::list<std::unique_ptr<Check>> checks_;
};

/// One call through a Pipeline driven step by step, for event loops that
/// sleep with their own timer (Pipeline::begin). Move-only; frees itself,
/// giving an unfinished attempt's permits back.
class PipelineRun {
public:
    PipelineRun(PipelineRun &&o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
    PipelineRun(const PipelineRun &) = delete;
    PipelineRun &operator=(const PipelineRun &) = delete;
    /// Frees the run held (an unfinished attempt's permits go back), then
    /// takes `o`'s.
    PipelineRun &operator=(PipelineRun &&o) noexcept {
        if (this != &o) {
            fw_pipeline_run_free(r_);
            r_ = std::exchange(o.r_, nullptr);
        }
        return *this;
    }
    ~PipelineRun() { fw_pipeline_run_free(r_); }

    /// Admits the next attempt: its deadline (an instant for
    /// fw_deadline_remaining; UINT64_MAX for none), or nothing when a layer
    /// refused (`why` gets the status and its Retry-After, if it names one).
    std::optional<uint64_t> admit(Refusal *why = nullptr) {
        uint64_t deadline = 0, wait = 0;
        fw_status_t s = fw_pipeline_admit(r_, &deadline, &wait);
        if (s == FW_OK) {
            return deadline;
        }
        detail::refused(s, wait, why);
        return std::nullopt;
    }

    /// Reports the admitted attempt: 0 success, > 0 the dependency's
    /// failure, < 0 not its fault.
    void finish(int32_t result) { detail::check(fw_pipeline_finish(r_, result)); }

    /// After an attempt was finished or refused: how long to wait before the
    /// next, or nothing to stop (`why->status` FW_ECALL, or
    /// FW_REJECTED_RETRY_BUDGET_EXHAUSTED).
    std::optional<std::chrono::nanoseconds> next(Refusal *why = nullptr) {
        uint64_t delay = 0;
        fw_status_t s = fw_pipeline_next(r_, &delay);
        if (s == FW_OK) {
            return std::chrono::nanoseconds(static_cast<int64_t>(delay));
        }
        detail::refused(s, UINT64_MAX, why);
        return std::nullopt;
    }

private:
    friend class Pipeline;
    explicit PipelineRun(fw_pipeline_run_t *r) : r_(r) {}
    fw_pipeline_run_t *r_;
};

/// The layers composed in the fixed order (total deadline, retry, breaker,
/// rate limiter, adaptive limit, bulkhead, per-attempt deadline) around a
/// call. The pipeline keeps its own references to its layers, so they may
/// be destroyed before it. Thread-safe.
class Pipeline {
public:
    /// Which layers, each optional (nullptr / zero: off).
    struct Layers {
        std::chrono::nanoseconds total_timeout{};
        const Retry *retry = nullptr;
        const Breaker *breaker = nullptr;
        const RateLimiter *rate_limiter = nullptr;
        const AdaptiveLimit *adaptive_limit = nullptr;
        const Bulkhead *bulkhead = nullptr;
        std::chrono::nanoseconds attempt_timeout{};
        fw_priority_t priority = FW_PRIORITY_NORMAL;
    };

    /// A pipeline with no layer: runs the call once, as it is.
    Pipeline() : Pipeline(Layers{}) {}
    explicit Pipeline(const Layers &layers) {
        fw_pipeline_config_t c = fw_pipeline_config_default();
        c.total_timeout_ns = static_cast<uint64_t>(layers.total_timeout.count());
        c.retry = layers.retry != nullptr ? layers.retry->native() : nullptr;
        c.breaker = layers.breaker != nullptr ? layers.breaker->native() : nullptr;
        c.rate_limiter = layers.rate_limiter != nullptr ? layers.rate_limiter->native() : nullptr;
        c.adaptive_limit = layers.adaptive_limit != nullptr ? layers.adaptive_limit->native() : nullptr;
        c.bulkhead = layers.bulkhead != nullptr ? layers.bulkhead->native() : nullptr;
        c.attempt_timeout_ns = static_cast<uint64_t>(layers.attempt_timeout.count());
        c.priority = layers.priority;
        detail::check(fw_pipeline_new(&c, &p_));
    }
    Pipeline(Pipeline &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    /// Takes `o`'s pipeline; the one held before is freed with `o`.
    Pipeline &operator=(Pipeline &&o) noexcept {
        std::swap(p_, o.p_);
        return *this;
    }
    Pipeline(const Pipeline &) = delete;
    Pipeline &operator=(const Pipeline &) = delete;
    ~Pipeline() { fw_pipeline_free(p_); }

    /// Runs `f(attempt, deadline_ns)` — returning 0 for success, > 0 for a
    /// failure of the dependency (counted and retried), < 0 for one that is
    /// not (neither) — through the layers, sleeping between retries. Honour
    /// `deadline_ns` (an instant for fw_deadline_remaining; UINT64_MAX when
    /// none). Returns the C status: FW_OK, FW_ECALL (the last attempt
    /// failed; `*last` gets its result) or the refusal that ended the call
    /// (`why` gets it and the refusing layer's Retry-After, if it names
    /// one). An exception from `f` ends the call, counted by no layer, and is
    /// rethrown.
    template <class F>
    fw_status_t call(F &&f, int32_t *last = nullptr, Refusal *why = nullptr) const {
        struct Ctx {
            std::remove_reference_t<F> *f;
            std::exception_ptr error;
        } ctx{&f, nullptr};
        auto trampoline = [](void *user_data, uint32_t attempt, uint64_t deadline_ns) noexcept -> int32_t {
            auto *c = static_cast<Ctx *>(user_data);
            try {
                return static_cast<int32_t>((*c->f)(attempt, deadline_ns));
            } catch (...) {
                c->error = std::current_exception();
                return -1;
            }
        };
        int32_t result = 0;
        uint64_t wait = 0;
        fw_status_t s = fw_pipeline_call(p_, trampoline, &ctx, &result, &wait);
        if (ctx.error) {
            std::rethrow_exception(ctx.error);
        }
        if (s != FW_OK) {
            detail::refused(s, s == FW_ECALL ? UINT64_MAX : wait, why);
        } else if (why != nullptr) {
            *why = Refusal{};
        }
        if (last != nullptr) {
            *last = result;
        }
        return s;
    }

    /// Starts a call to drive step by step, within `deadline_ns` (an
    /// instant from fw_deadline_after; 0 for none), or nothing when that
    /// deadline has passed (`why->status` FW_REJECTED_DEADLINE_EXCEEDED).
    std::optional<PipelineRun> begin(uint64_t deadline_ns = 0, Refusal *why = nullptr) const {
        fw_pipeline_run_t *r = nullptr;
        fw_status_t s = fw_pipeline_begin(p_, deadline_ns, &r);
        if (s == FW_OK) {
            return PipelineRun(r);
        }
        detail::refused(s, UINT64_MAX, why);
        return std::nullopt;
    }

private:
    fw_pipeline_t *p_ = nullptr;
};

/// A stale-while-error cache of strings (any bytes) by string key: put()
/// the value of every successful fetch; when a fetch fails, serve_stale()
/// gives the last good value if it is young enough. Thread-safe.
class StaleCache {
public:
    /// A value served stale, and how old it is.
    struct Stale {
        std::string value;
        std::chrono::nanoseconds age;
    };

    explicit StaleCache(const fw_stale_cache_config_t &config = fw_stale_cache_config_default()) {
        detail::check(fw_stale_cache_new(&config, &c_));
    }
    StaleCache(StaleCache &&o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
    /// Takes `o`'s stalecache; the one held before is freed with `o`.
    StaleCache &operator=(StaleCache &&o) noexcept {
        std::swap(c_, o.c_);
        return *this;
    }
    StaleCache(const StaleCache &) = delete;
    StaleCache &operator=(const StaleCache &) = delete;
    ~StaleCache() { fw_stale_cache_free(c_); }

    /// The fetch of `key` succeeded with `value`: keep it as the last good one.
    void put(const std::string &key, const std::string &value) {
        detail::check(fw_stale_cache_put(c_, key.data(), key.size(), value.data(), value.size()));
    }

    /// The fetch of `key` failed: its last good value if young enough.
    std::optional<Stale> serve_stale(const std::string &key) const {
        fw_stale_value_t *v = nullptr;
        uint64_t age = 0;
        fw_status_t s = fw_stale_cache_serve_stale(c_, key.data(), key.size(), &v, &age);
        if (s == FW_ECALL) {
            return std::nullopt;
        }
        detail::check(s);
        std::unique_ptr<fw_stale_value_t, void (*)(fw_stale_value_t *)> owned(v, fw_stale_value_free);
        const uint8_t *data = nullptr;
        size_t len = 0;
        detail::check(fw_stale_value_get(v, &data, &len));
        return Stale{std::string(reinterpret_cast<const char *>(data), len),
                     std::chrono::nanoseconds(static_cast<int64_t>(age))};
    }

    fw_stale_cache_snapshot_t snapshot() const {
        fw_stale_cache_snapshot_t out;
        detail::check(fw_stale_cache_snapshot(c_, &out));
        return out;
    }

    /// The C handle (for the metrics registry).
    const fw_stale_cache_t *native() const noexcept { return c_; }

private:
    fw_stale_cache_t *c_ = nullptr;
};

/// A metrics registry: Prometheus text of everything added to it. The
/// objects added must outlive their rendering (the registry keeps the C
/// library's own references).
class Metrics {
public:
    Metrics() { detail::check(fw_metrics_new(&m_)); }
    Metrics(Metrics &&o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
    /// Takes `o`'s metrics; the one held before is freed with `o`.
    Metrics &operator=(Metrics &&o) noexcept {
        std::swap(m_, o.m_);
        return *this;
    }
    Metrics(const Metrics &) = delete;
    Metrics &operator=(const Metrics &) = delete;
    ~Metrics() { fw_metrics_free(m_); }

    void add(const std::string &name, const Breaker &b) {
        detail::check(fw_metrics_register_breaker(m_, name.c_str(), b.native()));
    }
    void add(const std::string &name, const Bulkhead &b) {
        detail::check(fw_metrics_register_bulkhead(m_, name.c_str(), b.native()));
    }
    void add(const std::string &name, const RateLimiter &l) {
        detail::check(fw_metrics_register_rate_limiter(m_, name.c_str(), l.native()));
    }
    void add(const std::string &name, const Retry &r) {
        detail::check(fw_metrics_register_retry(m_, name.c_str(), r.native()));
    }
    void add(const std::string &name, const AdaptiveLimit &l) {
        detail::check(fw_metrics_register_adaptive_limit(m_, name.c_str(), l.native()));
    }
    void add(const std::string &name, const TimeoutPool &p) {
        detail::check(fw_metrics_register_timeout_pool(m_, name.c_str(), p.native()));
    }
    void add(const std::string &name, const StaleCache &c) {
        detail::check(fw_metrics_register_stale_cache(m_, name.c_str(), c.native()));
    }
    void add(const std::string &name, const Health &h) {
        detail::check(fw_metrics_register_health(m_, name.c_str(), h.native()));
    }

    /// Everything registered, in the Prometheus text format.
    std::string render() const {
        std::string out(4096, '\0');
        for (;;) {
            size_t needed = 0;
            detail::check(fw_metrics_render(m_, out.data(), out.size(), &needed));
            if (needed <= out.size()) {
                out.resize(needed > 0 ? needed - 1 : 0);
                return out;
            }
            out.assign(needed, '\0');  // grew since: try again with room
        }
    }

private:
    fw_metrics_t *m_ = nullptr;
};

}  // namespace failwell

#endif
