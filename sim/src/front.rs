//! The dependency, the front service (unprotected or protected) and one run
//! of the timeline against them.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use failwell::breaker::{CircuitBreaker, State, Window};
use failwell::bulkhead::{Bulkhead, Priority};
use failwell::chaos::Chaos;
use failwell::degrade::{Served, StaleCache};
use failwell::health::HealthRegistry;
use failwell::metrics::MetricsRegistry;
use failwell::pipeline::Pipeline;
use failwell::retry::{Backoff, Jitter, Retry, RetryBudget};
use failwell::shed::AdaptiveLimit;
use failwell::watchdog::{Finding, Watchdog};
use tiny_http::{Header, Request, Response, Server};

use crate::load::{self, Sample};
use crate::timeline::{Phase, Timeline};
use crate::Mode;

/// What one run observed.
#[derive(Debug)]
pub struct Run {
    pub mode: Mode,
    pub phase: Duration,
    pub samples: Vec<Sample>,
    /// (seconds, live front-service threads).
    pub threads: Vec<(f64, usize)>,
    /// (seconds, breaker state: 0 closed, 1 half-open, 2 open); protected only.
    pub breaker: Vec<(f64, u8)>,
    /// (seconds, "from -> to").
    pub transitions: Vec<(f64, String)>,
    /// The watchdog's reports, with their times.
    pub findings: Vec<(f64, String)>,
    /// The health endpoint's answer, sampled during the outage.
    pub health_in_outage: Option<String>,
}

/// How long "hanging" lasts: past the end of the run.
fn hang(timeline: &Timeline) -> Duration {
    timeline.phase * 2 + Duration::from_secs(5)
}

fn start_dependency(
    timeline: Timeline,
    stop: Arc<AtomicBool>,
) -> io::Result<(String, JoinHandle<()>)> {
    let server = Server::http("127.0.0.1:0").map_err(io::Error::other)?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| io::Error::other("no IP address"))?;
    let chaos = Arc::new(
        Chaos::builder()
            .seed(7)
            .build()
            .map_err(|e| io::Error::other(e.to_string()))?,
    );
    let handle = thread::spawn(move || {
        let mut phase = None;
        let mut n: u64 = 0;
        while !stop.load(SeqCst) {
            let now = timeline.phase_at(timeline.elapsed());
            if phase != Some(now) {
                phase = Some(now);
                let (fault, lat, delay) = match now {
                    Phase::Healthy | Phase::Recovered => (0.0, 0.0, Duration::ZERO),
                    Phase::Slow => (0.0, 1.0, Duration::from_millis(1500)),
                    Phase::Failing => (0.5, 0.5, hang(&timeline)),
                };
                let _ = chaos.set_fault_rate(fault);
                let _ = chaos.set_latency(lat, delay);
            }
            let Ok(Some(req)) = server.recv_timeout(Duration::from_millis(20)) else {
                continue;
            };
            n += 1;
            let chaos = Arc::clone(&chaos);
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(5));
                chaos.inject_latency();
                let resp = if chaos.should_fail() {
                    Response::from_string("injected failure").with_status_code(500)
                } else {
                    Response::from_string(format!("value {n}"))
                };
                let _ = req.respond(resp);
            });
        }
    });
    Ok((format!("http://{addr}"), handle))
}

/// Counts live front-service threads.
struct Live(Arc<AtomicUsize>);

impl Live {
    fn enter(c: &Arc<AtomicUsize>) -> Live {
        c.fetch_add(1, SeqCst);
        Live(Arc::clone(c))
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

/// failwell around the dependency: leaked to `'static` so permits can move
/// into request threads (one per run of this demo).
struct Protection {
    bulkhead: Arc<Bulkhead>,
    breaker: Arc<CircuitBreaker>,
    watchdog: Arc<Watchdog>,
    pipeline: Pipeline,
    cache: StaleCache<&'static str, String>,
    health: Arc<HealthRegistry>,
    metrics: MetricsRegistry,
}

fn protection(
    phase: Duration,
    findings: Arc<Mutex<Vec<(f64, String)>>>,
    start: Instant,
) -> Result<&'static Protection, failwell::ConfigError> {
    let breaker = Arc::new(
        CircuitBreaker::builder()
            .failure_rate(0.5, Window::Count(20))
            .minimum_calls(10)
            .open_for(phase / 4)
            .half_open_calls(3)
            .build()?,
    );
    let retry = Arc::new(
        Retry::builder()
            .max_attempts(2)
            .backoff(Backoff::Constant(Duration::from_millis(50)))
            .jitter(Jitter::Full)
            .budget(Arc::new(RetryBudget::new()))
            .build()?,
    );
    let adaptive = Arc::new(
        AdaptiveLimit::builder()
            .limits(5, 100)
            .initial_limit(20)
            .build()?,
    );
    let pipeline = Pipeline::builder()
        .total_timeout(Duration::from_millis(800))
        .retry(retry.clone())
        .breaker(breaker.clone())
        .adaptive_limit(adaptive.clone())
        .attempt_timeout(Duration::from_millis(300))
        .build()?;
    let watchdog = Arc::new(
        Watchdog::builder()
            .tick(Duration::from_millis(250))
            // Twice the threads at the start of the run (earlier runs may
            // have left hanging threads in this process).
            .thread_leak(2.0, None)
            .on_finding(move |f: &Finding| {
                findings
                    .lock()
                    .expect("unpoisoned")
                    .push((start.elapsed().as_secs_f64(), f.to_string()));
            })
            .build()?,
    );
    let health = Arc::new(
        HealthRegistry::builder()
            .interval(Duration::from_millis(250))
            .build()?,
    );
    health.register_breaker(
        "dependency-breaker",
        breaker.clone(),
        failwell::health::Status::Degraded,
    )?;
    health.register_watchdog(
        "watchdog",
        watchdog.clone(),
        failwell::health::Status::Degraded,
    )?;
    let metrics = MetricsRegistry::new();
    metrics.register_breaker("dependency", breaker.clone())?;
    metrics.register_retry("dependency", retry)?;
    metrics.register_adaptive_limit("dependency", adaptive)?;
    metrics.register_health("front", health.clone())?;
    let bulkhead = Arc::new(
        Bulkhead::builder()
            .max_concurrent(64)
            .critical_reserve(16)
            .build()?,
    );
    metrics.register_bulkhead("front", bulkhead.clone())?;
    let p = Protection {
        bulkhead,
        breaker,
        pipeline,
        cache: StaleCache::builder()
            .max_stale(Duration::from_secs(600))
            .build()?,
        health,
        metrics,
        watchdog,
    };
    Ok(Box::leak(Box::new(p)))
}

fn respond(req: Request, code: u16, body: String, stale: Option<Duration>) {
    let mut r = Response::from_string(body).with_status_code(code);
    if let Some(age) = stale {
        if let Ok(h) = Header::from_bytes("X-Failwell-Stale", format!("{}ms", age.as_millis())) {
            r = r.with_header(h);
        }
    }
    let _ = req.respond(r);
}

fn handle_unprotected(req: Request, dep: &str, agent: &ureq::Agent) {
    if req.url() == "/local" {
        return respond(req, 200, "local ok".into(), None);
    }
    // No timeout: waits as long as the dependency takes.
    match agent.get(&format!("{dep}/value")).call() {
        Ok(r) => {
            let body = r.into_string().unwrap_or_default();
            respond(req, 200, body, None)
        }
        Err(e) => respond(req, 502, format!("dependency failed: {e}"), None),
    }
}

fn handle_protected(req: Request, dep: &str, agent: &ureq::Agent, p: &Protection) {
    match req.url() {
        "/local" => respond(req, 200, "local ok".into(), None),
        "/health" => {
            let r = p.health.report();
            respond(req, 200, format!("{r:#?}"), None)
        }
        "/metrics" => respond(req, 200, p.metrics.render_prometheus(), None),
        _ => {
            let url = format!("{dep}/value");
            let fetched = p.cache.get_or_fetch("value", || {
                p.pipeline.call(|deadline| {
                    agent
                        .get(&url)
                        .timeout(deadline.remaining().max(Duration::from_millis(1)))
                        .call()
                        .map_err(|e| e.to_string())
                        .and_then(|r| r.into_string().map_err(|e| e.to_string()))
                })
            });
            match fetched {
                Ok(Served::Fresh(v)) => respond(req, 200, v, None),
                Ok(Served::Stale { value, age, .. }) => respond(req, 200, value, Some(age)),
                Err(e) => respond(req, 503, format!("unavailable: {e}"), None),
            }
        }
    }
}

/// Runs the timeline once against a fresh dependency and front service.
pub fn run(mode: Mode, timeline: Timeline, rate: f64, out: &Path) -> io::Result<Run> {
    let stop = Arc::new(AtomicBool::new(false));
    let (dep, dep_thread) = start_dependency(timeline, stop.clone())?;
    let server = Server::http("127.0.0.1:0").map_err(io::Error::other)?;
    let front = format!(
        "http://{}",
        server
            .server_addr()
            .to_ip()
            .ok_or_else(|| io::Error::other("no IP address"))?
    );
    let live = Arc::new(AtomicUsize::new(0));
    let findings = Arc::new(Mutex::new(Vec::new()));
    let transitions = Arc::new(Mutex::new(Vec::new()));
    let protection = match mode {
        Mode::Unprotected => None,
        Mode::Protected => {
            let p = protection(timeline.phase, findings.clone(), timeline.start)
                .map_err(|e| io::Error::other(e.to_string()))?;
            let (t, start) = (transitions.clone(), timeline.start);
            p.breaker.add_listener(move |tr| {
                t.lock().expect("unpoisoned").push((
                    start.elapsed().as_secs_f64(),
                    format!("{} -> {}", tr.from, tr.to),
                ));
            });
            Some(p)
        }
    };

    // The front service's dispatcher.
    let front_thread = {
        let (stop, live, dep) = (stop.clone(), live.clone(), dep.clone());
        thread::spawn(move || {
            let agent = ureq::AgentBuilder::new().build();
            // The watchdog reports the dispatcher if it ever stalls.
            let beat = protection.map(|p| {
                p.watchdog
                    .heartbeat("front-dispatcher", Duration::from_secs(1))
                    .expect("a timeout of 1 s is valid")
            });
            while !stop.load(SeqCst) {
                if let Some(b) = &beat {
                    b.beat();
                }
                let Ok(Some(req)) = server.recv_timeout(Duration::from_millis(20)) else {
                    continue;
                };
                let (agent, dep, live) = (agent.clone(), dep.clone(), live.clone());
                match protection {
                    None => {
                        thread::spawn(move || {
                            let _live = Live::enter(&live);
                            handle_unprotected(req, &dep, &agent);
                        });
                    }
                    Some(p) => {
                        let prio = if req.url() == "/dep" {
                            Priority::Normal
                        } else {
                            Priority::Critical
                        };
                        match p.bulkhead.try_acquire_with(prio) {
                            Err(_) => respond(req, 503, "overloaded".into(), None),
                            Ok(permit) => {
                                thread::spawn(move || {
                                    let _live = Live::enter(&live);
                                    let _permit = permit;
                                    handle_protected(req, &dep, &agent, p);
                                });
                            }
                        }
                    }
                }
            }
        })
    };

    // Samples of threads and breaker state; progress once a phase; the
    // health endpoint's answer in the middle of the outage, over HTTP.
    let sampler = {
        let (stop, live, health_url) = (stop.clone(), live.clone(), format!("{front}/health"));
        let breaker = protection.map(|p| p.breaker.clone());
        thread::spawn(move || {
            let mut threads = Vec::new();
            let mut states = Vec::new();
            let mut health = None;
            let mut last_phase = None;
            while !stop.load(SeqCst) {
                let t = timeline.elapsed();
                let s = t.as_secs_f64();
                threads.push((s, live.load(SeqCst)));
                if let Some(b) = &breaker {
                    let code = match b.state() {
                        State::Closed | State::Disabled | State::MetricsOnly => 0,
                        State::HalfOpen => 1,
                        State::Open | State::ForcedOpen => 2,
                    };
                    states.push((s, code));
                }
                let phase = timeline.phase_at(t);
                if last_phase != Some(phase) {
                    println!(
                        "  t={s:5.1}s  phase {:<16} front threads {}",
                        phase.name(),
                        live.load(SeqCst)
                    );
                    last_phase = Some(phase);
                }
                if protection.is_some()
                    && phase == Phase::Failing
                    && health.is_none()
                    && t > timeline.phase * 2 + timeline.phase / 2
                {
                    health = Some(
                        ureq::get(&health_url)
                            .timeout(Duration::from_secs(1))
                            .call()
                            .map_err(|e| e.to_string())
                            .and_then(|r| r.into_string().map_err(|e| e.to_string()))
                            .unwrap_or_else(|e| format!("GET /health failed: {e}")),
                    );
                }
                thread::sleep(Duration::from_millis(100));
            }
            (threads, states, health)
        })
    };

    let samples = load::run(&front, timeline, rate);
    stop.store(true, SeqCst);
    let (threads, breaker, health_in_outage) = sampler
        .join()
        .map_err(|_| io::Error::other("sampler panicked"))?;
    let _ = front_thread.join();
    let _ = dep_thread.join();
    if let Some(p) = protection {
        std::fs::write(out.join("metrics.prom"), p.metrics.render_prometheus())?;
        std::fs::write(
            out.join("health.txt"),
            format!("{:#?}\n", p.health.report()),
        )?;
    }
    let transitions = std::mem::take(&mut *transitions.lock().expect("unpoisoned"));
    let findings = std::mem::take(&mut *findings.lock().expect("unpoisoned"));
    Ok(Run {
        mode,
        phase: timeline.phase,
        samples,
        threads,
        breaker,
        transitions,
        findings,
        health_in_outage,
    })
}
