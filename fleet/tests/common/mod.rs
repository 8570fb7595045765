//! A real redis-server for the tests: started on a free loopback port,
//! killed, paused and restarted on demand, stopped when dropped.
//! `scripts/test.sh` installs the Debian package; a machine without
//! `redis-server` fails these tests with a message saying so.

#![allow(dead_code)] // each test binary uses its part

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    pub port: u16,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Redis {
    /// A new server on a free port, answering.
    pub fn start() -> Redis {
        Self::start_on(free_port())
    }

    /// A new server on `port`, answering.
    pub fn start_on(port: u16) -> Redis {
        let mut r = Redis { port, child: None };
        r.spawn();
        r
    }

    /// A free port, for a server started later.
    pub fn free_port() -> u16 {
        free_port()
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server runs (scripts/test.sh installs the Debian package redis-server)");
        self.child = Some(child);
        let t = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    /// Kills the server (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port (empty: no data, no scripts).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// SIGSTOP: the server holds its connections and answers nothing.
    pub fn pause(&self) {
        signal(self.pid(), "STOP");
    }

    /// SIGCONT.
    pub fn resume(&self) {
        signal(self.pid(), "CONT");
    }

    /// A plain command on a connection of its own.
    pub fn cmd(&self, args: &[&str]) -> redis::Value {
        let client = redis::Client::open(self.url()).unwrap();
        let mut c = client
            .get_connection_with_timeout(Duration::from_secs(2))
            .unwrap();
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut c).unwrap()
    }
}

fn signal(pid: i32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

impl Drop for Redis {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = Command::new("kill")
                .args(["-CONT", &self.pid().to_string()])
                .status();
        }
        self.kill();
    }
}

/// In an instance process: the Redis URL and the instant to stop, as
/// [`run_instances`] passed them; `None` in an ordinary test run.
pub fn instance_args() -> Option<(String, std::time::SystemTime)> {
    let url = std::env::var("FAILWELL_FLEET_URL").ok()?;
    let until: u64 = std::env::var("FAILWELL_FLEET_UNTIL_MS")
        .ok()?
        .parse()
        .ok()?;
    Some((url, std::time::UNIX_EPOCH + Duration::from_millis(until)))
}

/// Runs `n` copies of this test binary's `instance` test as processes
/// against `redis` until `secs` from now; the numbers each printed after
/// `RESULT`.
pub fn run_instances(redis: &Redis, n: usize, secs: f64) -> Vec<Vec<u64>> {
    run_instances_with(redis, &vec![Vec::new(); n], secs)
}

/// [`run_instances`], one process per entry of `envs`, each with those
/// environment variables added.
pub fn run_instances_with(redis: &Redis, envs: &[Vec<(&str, String)>], secs: f64) -> Vec<Vec<u64>> {
    run_instances_at(&redis.url(), envs, secs)
}

/// [`run_instances_with`] against the Redis at `url` (one another thread
/// may kill and restart meanwhile).
pub fn run_instances_at(url: &str, envs: &[Vec<(&str, String)>], secs: f64) -> Vec<Vec<u64>> {
    let until = std::time::SystemTime::now() + Duration::from_secs_f64(secs);
    let until_ms = until
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let children: Vec<_> = envs
        .iter()
        .map(|env| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "instance", "--nocapture", "--test-threads", "1"])
                .env("FAILWELL_FLEET_URL", url)
                .env("FAILWELL_FLEET_UNTIL_MS", until_ms.to_string())
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "an instance failed");
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            text.lines()
                .find_map(|l| l.split_once("RESULT ").map(|(_, r)| r.to_owned()))
                .unwrap_or_else(|| panic!("no RESULT in {text:?}"))
                .split(' ')
                .map(|n| n.parse().unwrap())
                .collect()
        })
        .collect()
}

/// The value of sample `name{instance="instance"}` in a Prometheus text.
pub fn sample(text: &str, name: &str, instance: &str) -> f64 {
    let prefix = format!("{name}{{instance=\"{instance}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
        .trim()
        .parse()
        .unwrap()
}
