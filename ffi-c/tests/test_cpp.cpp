// The C++ wrapper: RAII handles and permits, exceptions for invalid
// configuration, optional permits for refusals.
#include <cstdio>
#include <stdexcept>
#include <string>

#include "failwell.hpp"

static int passed = 0, failed = 0;
#define CHECK(c)                                                              \
    do {                                                                      \
        if (c) {                                                              \
            passed++;                                                         \
        } else {                                                              \
            failed++;                                                         \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
        }                                                                     \
    } while (0)

int main() {
    {
        fw_breaker_config_t cfg = fw_breaker_config_default();
        cfg.failure_rate = 0;
        cfg.consecutive_failures = 2;
        failwell::Breaker b(cfg);
        CHECK(b.call([] { return true; }));
        {
            auto p = b.acquire();
            CHECK(p.has_value());
            // destroyed unrecorded: ignored
        }
        CHECK(b.snapshot().ignored == 1);
        try {
            b.call([]() -> bool { throw std::runtime_error("boom"); });
            CHECK(false);
        } catch (const std::runtime_error &) {
            CHECK(true);
        }
        CHECK(b.call([] { return false; }));
        CHECK(b.state() == FW_BREAKER_OPEN);
        failwell::Refusal why;
        CHECK(!b.acquire(&why).has_value());
        CHECK(why.status == FW_REJECTED_CIRCUIT_OPEN && why.retry_after.has_value());
        b.reset();
        CHECK(b.state() == FW_BREAKER_CLOSED);
    }
    {
        fw_breaker_config_t bad = fw_breaker_config_default();
        bad.half_open_calls = 0;
        try {
            failwell::Breaker b(bad);
            CHECK(false);
        } catch (const failwell::Error &e) {
            CHECK(e.status() == FW_EINVAL);
            CHECK(std::string(e.what()).find("half_open_calls") != std::string::npos);
        }
    }
    {
        fw_bulkhead_config_t cfg = fw_bulkhead_config_default();
        cfg.max_concurrent = 1;
        failwell::Bulkhead h(cfg);
        {
            auto p = h.try_acquire();
            CHECK(p.has_value());
            CHECK(!h.try_acquire().has_value());
            CHECK(!h.acquire_for(std::chrono::milliseconds(1)).has_value());
        }
        CHECK(h.snapshot().in_use == 0);
        CHECK(h.try_acquire().has_value());
    }
    {
        fw_rate_limiter_config_t cfg = fw_rate_limiter_config_default();
        cfg.requests = 1;
        failwell::RateLimiter l(cfg);
        failwell::Refusal why;
        CHECK(l.try_acquire());
        CHECK(!l.try_acquire(1, &why));
        CHECK(why.status == FW_REJECTED_RATE_LIMITED && why.retry_after->count() > 0);
    }
    std::printf("test_cpp: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
