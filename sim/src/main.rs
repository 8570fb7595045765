//! The cascading-failure demonstration (the main job).
//!
//! On loopback it starts a dependency whose latency and failures follow a
//! scripted timeline (healthy, slow, failing and hanging, recovered), driven
//! by failwell's chaos injection; a front service with an endpoint that
//! calls the dependency (`/dep`) and one that does not (`/local`); and a load
//! generator at a fixed rate with client-side timeouts. It runs the timeline
//! twice — unprotected (no timeouts, a thread per request) and protected by
//! failwell — and reports what each did.
//!
//! `failwell-sim [--quick] [--out DIR]`: `--quick` runs the timeline in
//! about 16 s and checks the qualitative outcome (exit status 1 if it does
//! not hold); the default run takes about 80 s.

mod front;
mod load;
mod report;
mod timeline;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use timeline::Timeline;

/// Which front service a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No timeouts, no limits, a thread per request.
    Unprotected,
    /// failwell around every call.
    Protected,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Unprotected => "unprotected",
            Mode::Protected => "protected",
        }
    }
}

fn main() -> ExitCode {
    let mut quick = false;
    let mut out = PathBuf::from("sim-output");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--out" => match args.next() {
                Some(d) => out = PathBuf::from(d),
                None => {
                    eprintln!("--out needs a directory");
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                println!("usage: failwell-sim [--quick] [--out DIR]");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?}; try --help");
                return ExitCode::from(2);
            }
        }
    }
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("cannot create {}: {e}", out.display());
        return ExitCode::from(2);
    }
    let phase = if quick {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(10)
    };
    let rate = 80.0; // requests per second, half to each endpoint
    println!(
        "failwell cascading-failure demo: 4 phases of {phase:?} (healthy, slow, failing+hanging, recovered), {rate} req/s, run twice"
    );
    let mut runs = Vec::new();
    for mode in [Mode::Unprotected, Mode::Protected] {
        println!("\n== {} run ==", mode.name());
        let timeline = Timeline::new(phase);
        match front::run(mode, timeline, rate, &out) {
            Ok(run) => runs.push(run),
            Err(e) => {
                eprintln!("the {} run failed: {e}", mode.name());
                return ExitCode::FAILURE;
            }
        }
    }
    report::print_tables(&runs);
    let svg = out.join("failwell-sim.svg");
    match report::plot(&runs, &svg) {
        Ok(()) => println!("\nplot: {}", svg.display()),
        Err(e) => eprintln!("plot failed: {e}"),
    }
    let verdict = report::verdict(&runs);
    println!("\n{}", verdict.summary);
    if quick && !verdict.holds {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
