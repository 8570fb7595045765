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
#ifndef FAILWELL_HPP
#define FAILWELL_HPP

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "failwell.h"

namespace failwell {

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
    Breaker(const Breaker &) = delete;
    Breaker &operator=(const Breaker &) = delete;
    Breaker &operator=(Breaker &&) = delete;
    ~Breaker() { fw_breaker_free(b_); }

    /// A permit, or nothing (with the refusal in `why`, if given).
    std::optional<BreakerPermit> acquire(Refusal *why = nullptr) {
        fw_breaker_permit_t p{};
        uint64_t wait = 0;
        fw_status_t s = fw_breaker_acquire(b_, &p, &wait);
        if (s == FW_OK) {
            return BreakerPermit(b_, p);
        }
        if (s >= FW_EINVAL) {
            detail::check(s);
        }
        if (why != nullptr) {
            why->status = s;
            why->retry_after = wait == UINT64_MAX ? std::nullopt
                                                  : std::optional<std::chrono::nanoseconds>(
                                                        std::chrono::nanoseconds(static_cast<int64_t>(wait)));
        }
        return std::nullopt;
    }

    /// Runs `f` (returning bool: true = success) if admitted; returns
    /// whether it ran. An exception from `f` counts as a failure and
    /// propagates.
    template <typename F>
    bool call(F &&f) {
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

    const fw_breaker_t *raw() const noexcept { return b_; }

private:
    fw_breaker_t *b_ = nullptr;
};

/// A permit of a Bulkhead, returned when destroyed.
class BulkheadPermit {
public:
    BulkheadPermit(BulkheadPermit &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    BulkheadPermit(const BulkheadPermit &) = delete;
    BulkheadPermit &operator=(const BulkheadPermit &) = delete;
    BulkheadPermit &operator=(BulkheadPermit &&) = delete;
    ~BulkheadPermit() {
        if (p_ != nullptr) {
            fw_bulkhead_permit_release(p_);
        }
    }

private:
    friend class Bulkhead;
    explicit BulkheadPermit(fw_bulkhead_permit_t *p) : p_(p) {}
    fw_bulkhead_permit_t *p_;
};

/// A bulkhead.
class Bulkhead {
public:
    explicit Bulkhead(const fw_bulkhead_config_t &config = fw_bulkhead_config_default()) {
        detail::check(fw_bulkhead_new(&config, &h_));
    }
    Bulkhead(const Bulkhead &) = delete;
    Bulkhead &operator=(const Bulkhead &) = delete;
    ~Bulkhead() { fw_bulkhead_free(h_); }

    /// A permit now, or nothing.
    std::optional<BulkheadPermit> try_acquire(fw_priority_t prio = FW_PRIORITY_NORMAL) {
        fw_bulkhead_permit_t *p = nullptr;
        fw_status_t s = fw_bulkhead_try_acquire(h_, prio, &p);
        return finish(s, p);
    }

    /// A permit within `timeout`, or nothing.
    std::optional<BulkheadPermit> acquire_for(std::chrono::nanoseconds timeout,
                                              fw_priority_t prio = FW_PRIORITY_NORMAL) {
        fw_bulkhead_permit_t *p = nullptr;
        fw_status_t s = fw_bulkhead_acquire_timeout(h_, prio, static_cast<uint64_t>(timeout.count()), &p);
        return finish(s, p);
    }

    fw_bulkhead_snapshot_t snapshot() const {
        fw_bulkhead_snapshot_t s;
        detail::check(fw_bulkhead_snapshot(h_, &s));
        return s;
    }

private:
    static std::optional<BulkheadPermit> finish(fw_status_t s, fw_bulkhead_permit_t *p) {
        if (s == FW_OK) {
            return BulkheadPermit(p);
        }
        if (s >= FW_EINVAL) {
            detail::check(s);
        }
        return std::nullopt;
    }
    fw_bulkhead_t *h_ = nullptr;
};

/// A rate limiter.
class RateLimiter {
public:
    explicit RateLimiter(const fw_rate_limiter_config_t &config) {
        detail::check(fw_rate_limiter_new(&config, &l_));
    }
    RateLimiter(const RateLimiter &) = delete;
    RateLimiter &operator=(const RateLimiter &) = delete;
    ~RateLimiter() { fw_rate_limiter_free(l_); }

    /// Admitted now? Otherwise `why` says when to come back.
    bool try_acquire(uint32_t n = 1, Refusal *why = nullptr) {
        uint64_t wait = 0;
        fw_status_t s = fw_rate_limiter_try_acquire(l_, n, &wait);
        if (s == FW_OK) {
            return true;
        }
        if (s >= FW_EINVAL) {
            detail::check(s);
        }
        if (why != nullptr) {
            why->status = s;
            why->retry_after = std::chrono::nanoseconds(static_cast<int64_t>(wait));
        }
        return false;
    }

private:
    fw_rate_limiter_t *l_ = nullptr;
};

}  // namespace failwell

#endif
