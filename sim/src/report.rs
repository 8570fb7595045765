//! The report: a table per phase for both runs, an SVG plot, and the
//! qualitative verdict the smoke test checks.

use std::path::Path;

use plotters::prelude::*;

use crate::front::Run;
use crate::timeline::Phase;
use crate::Mode;

/// Per phase and endpoint.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub requests: usize,
    pub success: f64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub stale: usize,
}

fn phase_range(run: &Run, p: Phase) -> (f64, f64) {
    let len = run.phase.as_secs_f64();
    let i = Phase::ALL.iter().position(|q| *q == p).unwrap_or(0) as f64;
    (i * len, (i + 1.0) * len)
}

pub fn stats(run: &Run, phase: Phase, endpoint: &str) -> Stats {
    let (a, b) = phase_range(run, phase);
    let mut lat: Vec<f64> = Vec::new();
    let (mut ok, mut stale) = (0, 0);
    for s in run
        .samples
        .iter()
        .filter(|s| s.endpoint == endpoint && s.at >= a && s.at < b)
    {
        lat.push(s.latency_ms);
        ok += s.ok as usize;
        stale += s.stale as usize;
    }
    if lat.is_empty() {
        return Stats::default();
    }
    lat.sort_by(f64::total_cmp);
    let pct = |q: f64| lat[((lat.len() - 1) as f64 * q).round() as usize];
    Stats {
        requests: lat.len(),
        success: ok as f64 * 100.0 / lat.len() as f64,
        p50: pct(0.5),
        p99: pct(0.99),
        max: lat[lat.len() - 1],
        stale,
    }
}

fn peak_threads(run: &Run, phase: Phase) -> usize {
    let (a, b) = phase_range(run, phase);
    run.threads
        .iter()
        .filter(|(t, _)| *t >= a && *t < b)
        .map(|(_, n)| *n)
        .max()
        .unwrap_or(0)
}

pub fn print_tables(runs: &[Run]) {
    for phase in Phase::ALL {
        println!("\nphase: {}", phase.name());
        println!(
            "  {:<12} {:<7} {:>5} {:>8} {:>9} {:>9} {:>9} {:>6} {:>8}",
            "run", "route", "reqs", "success", "p50 ms", "p99 ms", "max ms", "stale", "threads"
        );
        for run in runs {
            for ep in ["/dep", "/local"] {
                let s = stats(run, phase, ep);
                println!(
                    "  {:<12} {:<7} {:>5} {:>7.1}% {:>9.1} {:>9.1} {:>9.1} {:>6} {:>8}",
                    run.mode.name(),
                    ep,
                    s.requests,
                    s.success,
                    s.p50,
                    s.p99,
                    s.max,
                    s.stale,
                    peak_threads(run, phase)
                );
            }
        }
    }
    for run in runs {
        if !run.transitions.is_empty() {
            println!("\n{} breaker transitions:", run.mode.name());
            for (t, tr) in &run.transitions {
                println!("  t={t:5.2}s  {tr}");
            }
        }
        if !run.findings.is_empty() {
            println!("\n{} watchdog reports:", run.mode.name());
            for (t, f) in run.findings.iter().take(10) {
                println!("  t={t:5.2}s  {f}");
            }
        }
        if let Some(h) = &run.health_in_outage {
            println!(
                "\n{} run: GET /health in the middle of the outage:",
                run.mode.name()
            );
            for line in h.lines() {
                println!("  {line}");
            }
        }
    }
}

/// Success rate (%) per 0.5 s bucket.
fn success_series(run: &Run, endpoint: &str) -> Vec<(f64, f64)> {
    let total = run.phase.as_secs_f64() * 4.0;
    let width = 0.5;
    let mut out = Vec::new();
    let mut t = 0.0;
    while t < total {
        let in_bucket: Vec<_> = run
            .samples
            .iter()
            .filter(|s| s.endpoint == endpoint && s.at >= t && s.at < t + width)
            .collect();
        if !in_bucket.is_empty() {
            let ok = in_bucket.iter().filter(|s| s.ok).count();
            out.push((t + width / 2.0, ok as f64 * 100.0 / in_bucket.len() as f64));
        }
        t += width;
    }
    out
}

/// Median latency (ms) per 0.5 s bucket.
fn latency_series(run: &Run, endpoint: &str) -> Vec<(f64, f64)> {
    let total = run.phase.as_secs_f64() * 4.0;
    let width = 0.5;
    let mut out = Vec::new();
    let mut t = 0.0;
    while t < total {
        let mut lat: Vec<f64> = run
            .samples
            .iter()
            .filter(|s| s.endpoint == endpoint && s.at >= t && s.at < t + width)
            .map(|s| s.latency_ms)
            .collect();
        if !lat.is_empty() {
            lat.sort_by(f64::total_cmp);
            out.push((t + width / 2.0, lat[lat.len() / 2].max(0.1)));
        }
        t += width;
    }
    out
}

pub fn plot(runs: &[Run], path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let total = runs.first().map_or(40.0, |r| r.phase.as_secs_f64() * 4.0);
    let root = SVGBackend::new(path, (1000, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let areas = root.split_evenly((3, 1));
    let colors = [RED, BLUE];
    let dashed = [MAGENTA, CYAN];

    let mut chart = ChartBuilder::on(&areas[0])
        .caption("success rate (%) per 0.5 s", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d(0.0..total, 0.0..105.0)?;
    chart.configure_mesh().x_desc("seconds").draw()?;
    for (i, run) in runs.iter().enumerate() {
        for (ep, color) in [("/dep", colors[i]), ("/local", dashed[i])] {
            chart
                .draw_series(LineSeries::new(
                    success_series(run, ep),
                    color.stroke_width(2),
                ))?
                .label(format!("{} {ep}", run.mode.name()))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;

    let mut chart = ChartBuilder::on(&areas[1])
        .caption("/dep median latency (ms, log scale)", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..total, (0.1f64..10_000.0).log_scale())?;
    chart.configure_mesh().x_desc("seconds").draw()?;
    for (i, run) in runs.iter().enumerate() {
        let color = colors[i];
        chart
            .draw_series(LineSeries::new(
                latency_series(run, "/dep"),
                color.stroke_width(2),
            ))?
            .label(run.mode.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;

    let max_threads = runs
        .iter()
        .flat_map(|r| r.threads.iter().map(|t| t.1))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let mut chart = ChartBuilder::on(&areas[2])
        .caption(
            "front threads, and the protected breaker (0 closed, ½ half-open, 1 open; scaled)",
            ("sans-serif", 20),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..total, 0.0..max_threads * 1.1)?;
    chart.configure_mesh().x_desc("seconds").draw()?;
    for (i, run) in runs.iter().enumerate() {
        let color = colors[i];
        chart
            .draw_series(LineSeries::new(
                run.threads.iter().map(|(t, n)| (*t, *n as f64)),
                color.stroke_width(2),
            ))?
            .label(format!("{} threads", run.mode.name()))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        if run.mode == Mode::Protected {
            let scale = max_threads / 2.0;
            chart
                .draw_series(LineSeries::new(
                    run.breaker.iter().map(|(t, s)| (*t, *s as f64 * scale)),
                    GREEN.stroke_width(2),
                ))?
                .label("breaker state")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN));
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// The qualitative outcome: during the outage the protected run keeps the
/// independent endpoint up (≥ 99% success, bounded latency and threads),
/// while the unprotected run degrades.
pub struct Verdict {
    pub holds: bool,
    pub summary: String,
}

pub fn verdict(runs: &[Run]) -> Verdict {
    let find = |m: Mode| runs.iter().find(|r| r.mode == m);
    let (Some(u), Some(p)) = (find(Mode::Unprotected), find(Mode::Protected)) else {
        return Verdict {
            holds: false,
            summary: "missing a run".into(),
        };
    };
    let mut checks: Vec<(bool, String)> = Vec::new();
    for phase in [Phase::Slow, Phase::Failing] {
        let pl = stats(p, phase, "/local");
        checks.push((
            pl.success >= 99.0,
            format!(
                "protected /local success during {}: {:.1}% (≥ 99%)",
                phase.name(),
                pl.success
            ),
        ));
        checks.push((
            pl.p99 < 250.0,
            format!(
                "protected /local p99 during {}: {:.1} ms (< 250 ms)",
                phase.name(),
                pl.p99
            ),
        ));
        let pt = peak_threads(p, phase);
        checks.push((
            pt <= 64,
            format!(
                "protected front threads during {}: {pt} (≤ 64, the bulkhead)",
                phase.name()
            ),
        ));
        let (pd, ud) = (stats(p, phase, "/dep"), stats(u, phase, "/dep"));
        checks.push((
            pd.p99 < ud.p99,
            format!(
                "/dep p99 during {}: protected {:.0} ms < unprotected {:.0} ms",
                phase.name(),
                pd.p99,
                ud.p99
            ),
        ));
    }
    let (uf, pf) = (
        peak_threads(u, Phase::Failing),
        peak_threads(p, Phase::Failing),
    );
    checks.push((
        uf > pf,
        format!("front threads in the outage: unprotected {uf} > protected {pf}"),
    ));
    let (ud, pd) = (
        stats(u, Phase::Failing, "/dep"),
        stats(p, Phase::Failing, "/dep"),
    );
    checks.push((
        pd.success > ud.success,
        format!(
            "/dep success in the outage: protected {:.1}% ({} stale) > unprotected {:.1}%",
            pd.success, pd.stale, ud.success
        ),
    ));
    let holds = checks.iter().all(|c| c.0);
    let mut summary = String::from(if holds {
        "verdict: failwell held"
    } else {
        "verdict: NOT HELD"
    });
    for (ok, line) in checks {
        summary.push_str(&format!("\n  [{}] {line}", if ok { "ok" } else { "FAIL" }));
    }
    Verdict { holds, summary }
}
