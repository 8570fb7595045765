// The C++ wrapper: RAII handles and permits, exceptions for invalid
// configuration, optional permits for refusals.
#include <atomic>
#include <memory>
#include <chrono>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>
#include <unistd.h>

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
    CHECK(std::string(failwell::version()) == FW_VERSION_STRING);
    {
        // The breaker's manual modes, Retry-After and the wait; handles move.
        failwell::Breaker b;
        b.open_for(std::chrono::seconds(5));
        auto wait = b.retry_after();
        CHECK(wait.has_value() && *wait > std::chrono::seconds(4) && *wait <= std::chrono::seconds(5));
        CHECK(!b.acquire().has_value());
        b.force_open();
        CHECK(!b.retry_after().has_value());  // only a manual change admits
        b.disable();
        CHECK(b.state() == FW_BREAKER_DISABLED && b.acquire().has_value());
        b.metrics_only();
        CHECK(b.state() == FW_BREAKER_METRICS_ONLY);
        for (int i = 0; i < 10; i++) {
            auto p = b.acquire();
            CHECK(p.has_value());
            p->failure();
        }
        CHECK(b.state() == FW_BREAKER_METRICS_ONLY && b.snapshot().failures == 10);
        b.reset();
        CHECK(b.retry_after() == std::chrono::nanoseconds(0));
        failwell::Breaker other;
        other = std::move(b);  // the old `other` is freed by `b`
        CHECK(other.state() == FW_BREAKER_CLOSED && other.snapshot().failures == 10);
    }
    {
        // The rate limiter's timed acquire: the wait is slept when it fits.
        fw_rate_limiter_config_t rc = fw_rate_limiter_config_default();
        rc.requests = 100;  // one per 10 ms
        rc.burst = 1;
        failwell::RateLimiter l(rc);
        CHECK(l.try_acquire());
        auto t = std::chrono::steady_clock::now();
        CHECK(l.acquire_for(std::chrono::milliseconds(500)));
        CHECK(std::chrono::steady_clock::now() - t >= std::chrono::milliseconds(5));
        failwell::Refusal why;
        CHECK(!l.acquire_for(std::chrono::microseconds(1), 1, &why) && why.status == FW_REJECTED_RATE_LIMITED);
        CHECK(!l.acquire_for(std::chrono::seconds(1), 2, &why) && why.status == FW_REJECTED_EXCEEDS_CAPACITY);
        failwell::RateLimiter moved = std::move(l);
        CHECK(moved.snapshot().admitted == 2);
        // A bulkhead permit reassigned returns the one it held.
        fw_bulkhead_config_t bc = fw_bulkhead_config_default();
        bc.max_concurrent = 2;
        failwell::Bulkhead pool(bc);
        auto p1 = pool.try_acquire();
        auto p2 = pool.try_acquire();
        CHECK(p1.has_value() && p2.has_value() && !pool.try_acquire().has_value());
        *p1 = std::move(*p2);
        CHECK(pool.snapshot().in_use == 1);
        p1.reset();
        CHECK(pool.snapshot().in_use == 0);
        failwell::Bulkhead pool2 = std::move(pool);
        CHECK(pool2.snapshot().max_concurrent == 2);
    }
    {
        // Chaos: every call fails at rate 1, none with injection off.
        fw_chaos_config_t cc = fw_chaos_config_default();
        cc.fault_rate = 1.0;
        cc.seed = 7;
        failwell::Chaos chaos(cc);
        CHECK(chaos.should_fail());
        chaos.set_enabled(false);
        CHECK(!chaos.should_fail());
        cc.fault_rate = 2.0;
        cc.seed = 0;
        try {
            chaos.reconfigure(cc);
            CHECK(false);
        } catch (const failwell::Error &e) {
            CHECK(std::string(e.what()).find("fault_rate") != std::string::npos);
        }
        chaos.inject_latency();
        // Throttler: with every request accepted, it sends them all.
        failwell::Throttler th(2.0, std::chrono::seconds(10), 42);
        int sent = 0;
        for (int i = 0; i < 100; i++) {
            if (th.try_send()) {
                th.accepted();
                sent++;
            }
        }
        CHECK(sent == 100);
        try {
            failwell::Throttler bad(0.5);
            CHECK(false);
        } catch (const failwell::Error &e) {
            CHECK(e.status() == FW_EINVAL);
        }
    }
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
        // The classification rule: a C++ exception is a failure.
        CHECK(b.snapshot().failures == 1 && b.snapshot().ignored == 1);
        CHECK(b.call([] { return false; }));
        CHECK(b.state() == FW_BREAKER_OPEN);
        failwell::Refusal why;
        CHECK(!b.acquire(&why).has_value());
        CHECK(why.status == FW_REJECTED_CIRCUIT_OPEN && why.retry_after.has_value());
        b.reset();
        CHECK(b.state() == FW_BREAKER_CLOSED);
#if defined(__GLIBCXX__)
        {
            // A thread cancelled inside the call (pthread_exit unwinds with
            // abi::__forced_unwind) is an interruption: ignored, not failed.
            auto before = b.snapshot();
            pthread_t t;
            auto body = [](void *arg) -> void * {
                auto *br = static_cast<failwell::Breaker *>(arg);
                br->call([]() -> bool { pthread_exit(nullptr); });
                return nullptr;
            };
            CHECK(pthread_create(&t, nullptr, body, &b) == 0);
            CHECK(pthread_join(t, nullptr) == 0);
            auto after = b.snapshot();
            CHECK(after.ignored == before.ignored + 1 && after.failures == before.failures);
        }
#endif
        fw_breaker_config_t c = b.config();
        c.open_for_ms = 1234;
        b.reconfigure(c);
        CHECK(b.config().open_for_ms == 1234);
        c.failure_rate = 0.5;
        try {
            b.reconfigure(c);
            CHECK(false);
        } catch (const failwell::Error &e) {
            CHECK(std::string(e.what()).find("fw_breaker_reconfigure: consecutive_failures/failure_rate") != std::string::npos);
        }
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
        // Reconfigured like the breaker: the whole config, all or nothing.
        cfg.max_concurrent = 3;
        h.reconfigure(cfg);
        CHECK(h.snapshot().max_concurrent == 3);
        cfg.critical_reserve = 3;
        try {
            h.reconfigure(cfg);
            CHECK(false);
        } catch (const failwell::Error &e) {
            CHECK(std::string(e.what()).find("fw_bulkhead_reconfigure: critical_reserve") != std::string::npos);
        }
        CHECK(h.snapshot().max_concurrent == 3);
    }
    {
        fw_rate_limiter_config_t cfg = fw_rate_limiter_config_default();
        cfg.requests = 1;
        failwell::RateLimiter l(cfg);
        failwell::Refusal why;
        CHECK(l.try_acquire());
        CHECK(!l.try_acquire(1, &why));
        CHECK(why.status == FW_REJECTED_RATE_LIMITED && why.retry_after->count() > 0);
        cfg.requests = 1000;
        l.reconfigure(cfg);
        CHECK(l.snapshot().interval_ns == 1000000ULL);
        cfg.precise = true;
        try {
            l.reconfigure(cfg);
            CHECK(false);
        } catch (const failwell::Error &e) {
            CHECK(std::string(e.what()).find("precise") != std::string::npos);
        }
        CHECK(l.snapshot().interval_ns == 1000000ULL);
    }
    {
        // The fleet without a Redis (nothing listens on port 1): connect
        // throws FW_EFLEET, a fleet opened lazily hands out the ordinary
        // classes, deciding on their fallbacks; a bad URL is FW_EINVAL.
        try {
            failwell::Fleet f("redis://127.0.0.1:1/");
            CHECK(false);
        } catch (const failwell::Error &e) {
            CHECK(e.status() == FW_EFLEET);
            CHECK(std::string(e.what()).find("FW_EFLEET: fw_fleet_connect") == 0);
        }
        try {
            failwell::Fleet f("http://127.0.0.1/");
            CHECK(false);
        } catch (const failwell::Error &e) {
            CHECK(e.status() == FW_EINVAL);
        }
        failwell::Fleet lazy("redis://127.0.0.1:1/", fw_fleet_config_default(), false);
        failwell::Fleet moved = std::move(lazy);
        fw_rate_limiter_config_t cfg = fw_rate_limiter_config_default();
        cfg.requests = 1;
        cfg.period_ns = 3600ULL * 1000000000ULL;
        cfg.burst = 2;
        fw_fleet_limiter_config_t lc = fw_fleet_limiter_config_default();
        lc.mode = FW_FLEET_EXACT;
        failwell::RateLimiter quota = moved.rate_limiter("quota", cfg, lc);
        CHECK(quota.try_acquire() && quota.try_acquire() && !quota.try_acquire());  // the local share
        fw_fleet_limiter_snapshot_t ls{};
        CHECK(fw_fleet_rate_limiter_snapshot(quota.native(), &ls) == FW_OK && ls.fallbacks == 3);
        failwell::Breaker payments = moved.circuit_breaker("payments");
        CHECK(payments.call([] { return true; }));
        try {
            moved.ping();
            CHECK(false);
        } catch (const failwell::Error &e) {
            CHECK(e.status() == FW_EFLEET);
        }
        CHECK(moved.snapshot().failures >= 1);
        lc.instances = 0;
        try {
            moved.rate_limiter("bad", cfg, lc);
            CHECK(false);
        } catch (const failwell::Error &e) {
            CHECK(std::string(e.what()).find("instances") != std::string::npos);
        }
    }
    {
        // A host region: two mappings, one limiter; another configuration
        // throws FW_EREGION; the limiter outlives the region.
        std::string name = "failwell-cpp-" + std::to_string(getpid());
        fw_rate_limiter_config_t cfg = fw_rate_limiter_config_default();
        cfg.requests = 1;
        cfg.period_ns = 3600ULL * 1000000000ULL;
        cfg.burst = 2;
        auto region = std::make_unique<failwell::Region>(name.c_str(), 1 << 20);
        failwell::RateLimiter a = region->rate_limiter("api", cfg);
        failwell::Region other(name.c_str(), 1 << 20);
        failwell::RateLimiter b = other.attach_rate_limiter("api");
        CHECK(a.try_acquire() && b.try_acquire() && !a.try_acquire());
        cfg.burst = 3;
        try {
            other.rate_limiter("api", cfg);
            CHECK(false);
        } catch (const failwell::Error &e) {
            CHECK(e.status() == FW_EREGION);
            CHECK(std::string(e.what()).find("FW_EREGION: fw_region_rate_limiter_new") == 0);
        }
        // One bulkhead for both mappings; a permit is an RAII guard; the
        // bulkhead outlives the region.
        fw_bulkhead_config_t bc = fw_bulkhead_config_default();
        bc.max_concurrent = 2;
        failwell::Bulkhead pool = region->bulkhead("pool", bc);
        failwell::Bulkhead same = other.attach_bulkhead("pool");
        {
            auto p1 = pool.try_acquire();
            auto p2 = same.acquire_for(std::chrono::milliseconds(10));
            CHECK(p1 && p2 && !pool.try_acquire() && !same.try_acquire());
            CHECK(same.snapshot().in_use == 2);
        }
        CHECK(pool.snapshot().in_use == 0);
        bc.max_concurrent = 3;
        try {
            other.bulkhead("pool", bc);
            CHECK(false);
        } catch (const failwell::Error &e) {
            CHECK(e.status() == FW_EREGION);
            CHECK(std::string(e.what()).find("fw_region_bulkhead_new") != std::string::npos);
        }
        try {
            other.attach_bulkhead("absent");
            CHECK(false);
        } catch (const failwell::Error &e) {
            CHECK(e.status() == FW_EREGION);
        }
        // One breaker for both mappings: a trip through one is the other's.
        fw_breaker_config_t brc = fw_breaker_config_default();
        brc.consecutive_failures = 2;
        brc.failure_rate = 0;
        failwell::Breaker dep = region->circuit_breaker("dep", brc);
        failwell::Breaker dep2 = other.attach_circuit_breaker("dep");
        dep.acquire()->failure();
        dep2.acquire()->failure();
        CHECK(!dep2.acquire().has_value() && dep.state() == FW_BREAKER_OPEN);
        brc.consecutive_failures = 3;
        try {
            other.circuit_breaker("dep", brc);
            CHECK(false);
        } catch (const failwell::Error &e) {
            CHECK(e.status() == FW_EREGION);
        }
        region.reset();
        CHECK(b.snapshot().admitted == 2);
        CHECK(pool.try_acquire().has_value());
        CHECK(dep2.snapshot().opened == 1);
        failwell::Region::unlink(name.c_str());
    }
    {
        // Pipeline: retry outside a breaker around a lambda; its layers may
        // be destroyed first; a refusal's Retry-After comes back; an
        // exception crosses back and is counted by no layer.
        fw_breaker_config_t bc = fw_breaker_config_default();
        bc.failure_rate = 0;
        bc.consecutive_failures = 3;  // three failed attempts in one call trip it
        failwell::Breaker b(bc);
        std::optional<failwell::Pipeline> pipeline;
        {
            fw_retry_config_t rc = fw_retry_config_default();
            rc.max_attempts = 3;
            rc.initial_ns = 1000000;
            failwell::Retry r(rc);
            failwell::Pipeline::Layers layers;
            layers.total_timeout = std::chrono::seconds(5);
            layers.retry = &r;
            layers.breaker = &b;
            layers.attempt_timeout = std::chrono::seconds(1);
            pipeline.emplace(layers);
        }
        int calls = 0;
        uint64_t first_deadline = 0;
        auto flaky = [&](uint32_t attempt, uint64_t deadline_ns) {
            if (attempt == 1) {
                first_deadline = deadline_ns;
            }
            return ++calls < 2 ? 503 : 0;
        };
        CHECK(pipeline->call(flaky) == FW_OK);
        CHECK(calls == 2 && first_deadline != UINT64_MAX);
        uint64_t left = 0;
        CHECK(fw_deadline_remaining(first_deadline, &left) == FW_OK && left <= 1000000000ULL);
        try {
            pipeline->call([](uint32_t, uint64_t) -> int { throw std::runtime_error("from the call"); });
            CHECK(false);
        } catch (const std::runtime_error &e) {
            CHECK(std::string(e.what()) == "from the call");
        }
        CHECK(b.snapshot().ignored == 1 && b.snapshot().failures == 1);
        int32_t last = 0;
        CHECK(pipeline->call([](uint32_t, uint64_t) { return 500; }, &last) == FW_ECALL && last == 500);
        failwell::Refusal why;
        CHECK(pipeline->call([](uint32_t, uint64_t) { return 0; }, nullptr, &why) == FW_REJECTED_CIRCUIT_OPEN);
        CHECK(why.status == FW_REJECTED_CIRCUIT_OPEN && why.retry_after.has_value() && why.retry_after->count() > 0);
        failwell::Pipeline none;
        CHECK(none.call([](uint32_t attempt, uint64_t deadline_ns) {
            return attempt == 1 && deadline_ns == UINT64_MAX ? 0 : 1;
        }) == FW_OK);
        // Step by step, as an event loop drives it (the breaker is open
        // now: refused, not retried).
        auto run = pipeline->begin();
        CHECK(run.has_value());
        failwell::Refusal refused;
        CHECK(!run->admit(&refused).has_value() && refused.status == FW_REJECTED_CIRCUIT_OPEN);
        failwell::Refusal stop;
        CHECK(!run->next(&stop).has_value() && stop.status == FW_ECALL);
        b.reset();
        auto again = pipeline->begin();
        auto deadline = again->admit();
        CHECK(deadline.has_value() && *deadline != UINT64_MAX);
        again->finish(503);
        auto delay = again->next();
        CHECK(delay.has_value() && delay->count() >= 0);
        CHECK(again->admit().has_value());
        again->finish(0);
        failwell::Pipeline::Layers bad;
        bad.priority = 9;
        try {
            failwell::Pipeline p(bad);
            CHECK(false);
        } catch (const failwell::Error &e) {
            CHECK(e.status() == FW_EINVAL && std::string(e.what()).find("priority") != std::string::npos);
        }
    }
    {
        // StaleCache: serve the last good value while the fetch fails.
        failwell::StaleCache cache;
        CHECK(!cache.serve_stale("user:7").has_value());
        cache.put("user:7", std::string("Ada\0Lovelace", 12));
        auto stale = cache.serve_stale("user:7");
        CHECK(stale.has_value() && stale->value == std::string("Ada\0Lovelace", 12));
        CHECK(stale.has_value() && stale->age.count() >= 0 && stale->age < std::chrono::seconds(1));
        auto s = cache.snapshot();
        CHECK(s.fresh == 1 && s.stale == 1 && s.misses == 1 && s.entries == 1);
        failwell::Metrics metrics;
        metrics.add("users", cache);
        CHECK(metrics.render().find("failwell_stale_cache_stale_total{instance=\"users\"} 1") != std::string::npos);
        fw_stale_cache_config_t bad = fw_stale_cache_config_default();
        bad.capacity = 0;
        try {
            failwell::StaleCache c(bad);
            CHECK(false);
        } catch (const failwell::Error &e) {
            CHECK(std::string(e.what()).find("capacity") != std::string::npos);
        }
    }
    {
        // Retry: a C++ lambda driven by fw_retry_call; exceptions cross back.
        fw_retry_config_t cfg = fw_retry_config_default();
        cfg.max_attempts = 4;
        cfg.initial_ns = 1000000;
        cfg.max_ns = 2000000;
        failwell::Retry r(cfg);
        int calls = 0;
        CHECK(r.call([&](uint32_t attempt) { return ++calls < 3 && attempt < 3 ? 1 : 0; }) == FW_OK);
        CHECK(calls == 3);
        int32_t last = 0;
        CHECK(r.call([](uint32_t) { return 7; }, std::chrono::nanoseconds(0), &last) == FW_ECALL);
        CHECK(last == 7);
        CHECK(r.call([](uint32_t) { return -2; }, {}, &last) == FW_ECALL && last == -2);
        try {
            r.call([](uint32_t) -> int { throw std::runtime_error("from the lambda"); });
            CHECK(false);
        } catch (const std::runtime_error &e) {
            CHECK(std::string(e.what()) == "from the lambda");
        }
        CHECK(r.delay(1).count() <= 1000000);
        CHECK(r.snapshot().calls == 4);
        auto named = [](uint32_t) { return 0; };  // an lvalue callable
        CHECK(r.call(named) == FW_OK && r.snapshot().calls == 5);
        auto run = r.begin();
        CHECK(run.has_value());
        int waits = 0;
        failwell::Refusal why;
        while (auto d = r.next(*run, {}, &why)) {
            CHECK(d->count() <= 2000000);
            waits++;
        }
        CHECK(waits == 3 && why.status == FW_ECALL);
        uint64_t past = 0;
        fw_now_ns(&past);
        CHECK(!r.begin(past).has_value());
    }
    {
        failwell::AdaptiveLimit l;
        auto p = l.try_acquire();
        CHECK(p.has_value());
        p->success();
        { auto q = l.try_acquire(FW_PRIORITY_CRITICAL); CHECK(q.has_value()); }  // released unreported
        CHECK(l.limit() > 0);
    }
    {
        // Timed calls: the result, a timeout (the state outlives the wait),
        // an exception carried back.
        auto r = failwell::call_with_timeout(std::chrono::seconds(1), [] { return 42; });
        CHECK(r.has_value() && *r == 42);
        failwell::Refusal why;
        auto slow = failwell::call_with_timeout(
            std::chrono::milliseconds(10),
            [] {
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
                return 1;
            },
            &why);
        CHECK(!slow.has_value() && why.status == FW_REJECTED_DEADLINE_EXCEEDED);
        auto late = failwell::call_with_timeout(std::chrono::nanoseconds(0), [] { return 5; }, &why);
        CHECK(!late.has_value() && why.status == FW_REJECTED_DEADLINE_EXCEEDED);
        try {
            failwell::call_with_timeout(std::chrono::seconds(1), []() -> int32_t { throw std::logic_error("x"); });
            CHECK(false);
        } catch (const std::logic_error &) {
            CHECK(true);
        }
        failwell::TimeoutPool pool(2);
        auto own = pool.call(std::chrono::seconds(1), [] { return 9; });
        CHECK(own.has_value() && *own == 9);
        CHECK(pool.snapshot().completed == 1);
        std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the abandoned calls finish
    }
    {
        // Watchdog: a stall reported to a C++ callback; a throwing callback
        // is counted, not unwound into C.
        std::atomic<int> stalls{0};
        fw_watchdog_config_t cfg = fw_watchdog_config_default();
        cfg.tick_ns = 10000000;
        cfg.thread_leak_factor = 0;
        failwell::Watchdog w(
            [&](const fw_event_t &e) {
                if (e.finding == FW_FINDING_STALL && !e.cleared) {
                    stalls++;
                    throw std::runtime_error("callback bug");
                }
            },
            cfg);
        {
            auto hb = w.heartbeat("worker", std::chrono::milliseconds(20));
            hb.beat();
            for (int i = 0; i < 100 && stalls.load() == 0; i++) {
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
        }
        CHECK(stalls.load() == 1);
        // The callback counts the stall before it throws; the wrapper counts
        // the exception after: wait for that second step.
        for (int i = 0; i < 200 && w.callback_errors() == 0; i++) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        CHECK(w.callback_errors() == 1);
        std::atomic<uint64_t> open{4};
        {
            auto g = w.gauge("connections", [&] { return open.load(); }, 4);
            failwell::TimeoutPool pool(1);
            auto wp = w.watch_pool("pool", pool, 3);
        }
        try {
            w.gauge("bad", [] { return uint64_t{0}; }, 1, 0.0, 0);
            CHECK(false);
        } catch (const failwell::Error &e) {
            CHECK(std::string(e.what()).find("ceiling") != std::string::npos);
        }
    }
    {
        // A check still running past its timeout when the Health goes: the
        // destructor waits for it, so the std::function and what it holds
        // are never used after they are destroyed (ASan watches).
        auto finished = std::make_shared<std::atomic<bool>>(false);
        {
            // Declared first, so destroyed right after the Health.
            auto owned = std::make_unique<std::string>("state the check uses");
            failwell::Health h(std::chrono::hours(1));
            h.add("slow", true, std::chrono::milliseconds(10),
                  [finished, p = owned.get()]() -> std::optional<std::string> {
                      std::this_thread::sleep_for(std::chrono::milliseconds(200));
                      (void)p->size();
                      finished->store(true);
                      return std::nullopt;
                  });
            CHECK(h.status(true) == FW_HEALTH_UNHEALTHY); /* timed out */
            CHECK(!finished->load());
        } /* ~Health waits for the check; only then is `owned` freed */
        CHECK(finished->load());
    }
    {
        // Health: C++ checks (one throws), a breaker; metrics of everything.
        failwell::Health h(std::chrono::seconds(60));
        h.add("db", true, std::chrono::seconds(1), [] { return std::optional<std::string>(); });
        h.add("cache", false, std::chrono::seconds(1), []() -> std::optional<std::string> { return "cold"; });
        h.add("queue", false, std::chrono::seconds(1),
              []() -> std::optional<std::string> { throw std::runtime_error("refused"); });
        fw_breaker_config_t bc = fw_breaker_config_default();
        bc.failure_rate = 0;
        bc.consecutive_failures = 1;
        failwell::Breaker b(bc);
        h.add_breaker("payments", b, FW_HEALTH_UNHEALTHY);
        CHECK(h.status(true) == FW_HEALTH_DEGRADED);
        CHECK(b.call([] { return false; }));
        CHECK(h.status(true) == FW_HEALTH_UNHEALTHY);
        try {
            h.add("db", true, std::chrono::seconds(1), [] { return std::optional<std::string>(); });
            CHECK(false);
        } catch (const failwell::Error &e) {
            CHECK(std::string(e.what()).find("already") != std::string::npos);
        }
        failwell::Metrics m;
        m.add("payments", b);
        m.add("health", h);
        failwell::Retry r;
        m.add("retry", r);
        failwell::AdaptiveLimit al;
        m.add("shed", al);
        std::string text = m.render();
        CHECK(text.find("failwell_breaker_calls_total{instance=\"payments\"} 1") != std::string::npos);
        CHECK(text.find("failwell_health") != std::string::npos);
        CHECK(text.find("failwell_retry") != std::string::npos);
        CHECK(text.size() > 4096 || text.back() == '\n');
    }
    {
        // Every handle moves: move-constructed and move-assigned handles
        // work, the one replaced is freed, moved-from ones destroy safely;
        // move-assigning a permit-like object gives back what it held.
        auto in_flight = [](const failwell::AdaptiveLimit &l) {
            uint64_t limit = 0, n = 0;
            fw_adaptive_limit_get(l.native(), &limit, &n);
            return n;
        };
        failwell::AdaptiveLimit a1, a2;
        std::optional<failwell::AdaptivePermit> p1 = a1.try_acquire();
        std::optional<failwell::AdaptivePermit> p2 = a1.try_acquire();
        CHECK(p1.has_value() && p2.has_value() && in_flight(a1) == 2);
        *p1 = std::move(*p2);  // p1's permit goes back, p2's is now p1's
        CHECK(in_flight(a1) == 1);
        p1->success();
        CHECK(in_flight(a1) == 0);
        a2 = std::move(a1);  // a2's old limit is freed with a1
        failwell::AdaptiveLimit a3 = std::move(a2);
        CHECK(a3.try_acquire().has_value());

        failwell::TimeoutPool pool1(2), pool2(3);
        pool2 = std::move(pool1);
        failwell::TimeoutPool pool3 = std::move(pool2);
        CHECK(pool3.call(std::chrono::seconds(1), [] { return 7; }) == std::optional<int32_t>(7));

        std::atomic<int> heard{0};
        fw_watchdog_config_t wc = fw_watchdog_config_default();
        wc.tick_ns = 10'000'000;
        failwell::Watchdog w1([&](const fw_event_t &) { heard++; }, wc);
        failwell::Watchdog w2([](const fw_event_t &) {}, wc);
        w2 = std::move(w1);  // the callback state moves with the handle
        failwell::Watchdog w3 = std::move(w2);
        failwell::Heartbeat hb1 = w3.heartbeat("moved-1", std::chrono::hours(1));
        failwell::Heartbeat hb2 = w3.heartbeat("moved-2", std::chrono::milliseconds(20));
        hb1 = std::move(hb2);  // "moved-1" is unregistered, "moved-2" kept
        for (int i = 0; i < 200 && heard.load() == 0; i++) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        CHECK(heard.load() >= 1);  // the 20 ms heartbeat stalls, reported
        std::atomic<int> reads_a{0}, reads_b{0};
        failwell::Gauge ga = w3.gauge("ga", [&] { reads_a++; return uint64_t{0}; }, 10);
        failwell::Gauge gb = w3.gauge("gb", [&] { reads_b++; return uint64_t{0}; }, 10);
        ga = std::move(gb);  // "ga" unregistered: its read never runs again
        int before = reads_a.load();
        std::this_thread::sleep_for(std::chrono::milliseconds(60));
        CHECK(reads_a.load() == before);
        CHECK(reads_b.load() >= 1);

        failwell::Health h1(std::chrono::hours(1)), h2(std::chrono::hours(1));
        h1.add("db", true, std::chrono::seconds(1), [] { return std::optional<std::string>("down"); });
        h2 = std::move(h1);  // the check's closure moves with the registry
        failwell::Health h3 = std::move(h2);
        CHECK(h3.status(true) == FW_HEALTH_UNHEALTHY);

        fw_bulkhead_config_t one = fw_bulkhead_config_default();
        one.max_concurrent = 1;
        failwell::Bulkhead bh(one);
        failwell::Pipeline::Layers layers;
        layers.bulkhead = &bh;
        failwell::Pipeline pl1(layers), pl2;
        pl2 = std::move(pl1);
        failwell::Pipeline pl3 = std::move(pl2);
        std::optional<failwell::PipelineRun> r1 = pl3.begin();
        std::optional<failwell::PipelineRun> r2 = pl3.begin();
        CHECK(r1.has_value() && r2.has_value());
        CHECK(r1->admit());  // holds the bulkhead's one permit
        CHECK(!bh.try_acquire().has_value());
        *r1 = std::move(*r2);  // the unfinished run is freed: its permit back
        CHECK(bh.try_acquire().has_value());

        failwell::StaleCache c1, c2;
        c1.put("k", "v");
        c2 = std::move(c1);
        failwell::StaleCache c3 = std::move(c2);
        CHECK(c3.serve_stale("k").has_value() && c3.serve_stale("k")->value == "v");

        failwell::Metrics m1, m2;
        m1.add("moved-shed", a3);
        m2 = std::move(m1);
        failwell::Metrics m3 = std::move(m2);
        CHECK(m3.render().find("instance=\"moved-shed\"") != std::string::npos);
    }
    {
        // Breaker listeners: the library owns the callable (destroyed after
        // its last call: on removal, or with the breaker's last holder);
        // one that throws is contained.
        auto alive = std::make_shared<int>(0);
        std::vector<std::pair<fw_breaker_state_t, fw_breaker_state_t>> seen;
        fw_breaker_config_t bc = fw_breaker_config_default();
        bc.failure_rate = 0;
        bc.consecutive_failures = 1;
        std::optional<failwell::Breaker> b(std::in_place, bc);
        uint64_t id = b->add_listener([&seen, alive](fw_breaker_state_t from, fw_breaker_state_t to, uint64_t at) {
            CHECK(at > 0);
            seen.emplace_back(from, to);
        });
        uint64_t thrower = b->add_listener([alive](fw_breaker_state_t, fw_breaker_state_t, uint64_t) {
            throw std::runtime_error("listener bug");
        });
        CHECK(alive.use_count() == 3);
        CHECK(b->call([] { return false; }));  // ran, failed: trips it
        CHECK(seen.size() == 1 && seen[0].first == FW_BREAKER_CLOSED && seen[0].second == FW_BREAKER_OPEN);
        CHECK(b->remove_listener(thrower));
        CHECK(!b->remove_listener(thrower));
        CHECK(alive.use_count() == 2);  // the removed callable is destroyed
        b->reset();
        CHECK(seen.size() == 2 && seen[1].second == FW_BREAKER_CLOSED);
        (void)id;
        b.reset();                       // the last holder: the listener goes with it
        CHECK(alive.use_count() == 1);
    }
    std::printf("test_cpp: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
