//! A real `cairn node` process for the whole-process benchmarks (`net_bench`, `api_bench`),
//! included by each with `#[path = "support/node.rs"] mod node;`. It owns starting a node
//! (free ports on 127.0.0.1, mDNS off, its output to a log file, killed by the kernel if the
//! bench dies), waiting for its API, checking it is still running, JSON GETs to it, killing
//! and reaping it on drop, and the polling loop of the benches' waits; also the two chores
//! both benches share: which part the command line names, and nearest-rank percentiles.
//!
//! What differs between the benches (log filter, startup timeout, HTTP client, answer size
//! limit, a check run on every poll such as api_bench's Ctrl-C) is a [`Launcher`], one
//! `static` per bench; bench-specific calls on a node live in the bench, in an `impl
//! NodeProcess` block of its own.

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;
use std::ffi::OsStr;
use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The part of a bench named on its command line (cargo's own `--bench` style flags are
/// skipped): one of `parts`, or `all` when none is named.
pub fn chosen_part(parts: &[&str]) -> Result<String> {
    let which = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .unwrap_or_else(|| "all".to_string());
    ensure!(
        which == "all" || parts.contains(&which.as_str()),
        "unknown part {which:?}: use {} or nothing (all)",
        parts.join(", ")
    );
    Ok(which)
}

/// Nearest-rank percentile (`q` in 0..=1; 0 is the minimum, 1 the maximum).
pub fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The `cairn` binary, built by cargo for the bench.
pub const CAIRN: &str = env!("CARGO_BIN_EXE_cairn");

/// How a bench starts its nodes and talks to them.
pub struct Launcher {
    /// `--log` filter of every node.
    pub log_filter: &'static str,
    /// How long a node may take to answer on its API after starting.
    pub startup_timeout: Duration,
    /// The client of [`NodeProcess::get`] and of the startup check.
    pub agent: fn() -> ureq::Agent,
    /// Largest JSON answer [`Launcher::get_json`] reads.
    pub max_answer_bytes: u64,
    /// Called on every poll of a startup and of [`Launcher::wait_for`]; an error ends the
    /// wait with it.
    pub on_poll: fn() -> Result<()>,
}

/// A running `cairn node`, killed when dropped (and by the kernel if the bench dies).
pub struct NodeProcess {
    /// Its name in the bench's output; empty for a bench's only node.
    pub name: String,
    child: Child,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    /// Its HTTP API (port 0 until [`Launcher::start`] has seen it answer).
    pub api: SocketAddr,
    launcher: &'static Launcher,
}

impl Launcher {
    /// Starts a node logging to `<data_dir>.log` and waits for its API.
    pub fn start<S: AsRef<OsStr>>(
        &'static self,
        name: &str,
        data_dir: &Path,
        spec: &Path,
        extra: &[S],
    ) -> Result<NodeProcess> {
        self.start_with_log(name, data_dir, spec, extra, &data_dir.with_extension("log"))
    }

    /// Starts a node logging to `log` and waits for its API.
    pub fn start_with_log<S: AsRef<OsStr>>(
        &'static self,
        name: &str,
        data_dir: &Path,
        spec: &Path,
        extra: &[S],
        log: &Path,
    ) -> Result<NodeProcess> {
        let mut node = self.spawn(name, data_dir, spec, extra, log)?;
        let started = Instant::now();
        loop {
            node.check_alive()?;
            (self.on_poll)()?;
            if let Some(addr) = read_api_addr(data_dir) {
                if self
                    .get_json(&(self.agent)(), &format!("http://{addr}/api/v1/tip"))
                    .is_ok()
                {
                    node.api = addr;
                    return Ok(node);
                }
            }
            if started.elapsed() >= self.startup_timeout {
                let timeout = self.startup_timeout;
                if name.is_empty() {
                    bail!(
                        "no API within {timeout:?}; log {}:\n{}",
                        node.log.display(),
                        tail(&node.log, 30)
                    );
                }
                bail!("{name}: no API within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts a node logging to `log` without waiting for it: `--data-dir`, `--chain`, the
    /// API and P2P on free ports of 127.0.0.1, `--no-mdns`, the bench's `--log` filter, then
    /// `extra`.
    pub fn spawn<S: AsRef<OsStr>>(
        &'static self,
        name: &str,
        data_dir: &Path,
        spec: &Path,
        extra: &[S],
        log: &Path,
    ) -> Result<NodeProcess> {
        std::fs::create_dir_all(data_dir)?;
        for stale in ["api.addr", "p2p.addr"] {
            let _ = std::fs::remove_file(data_dir.join(stale));
        }
        let output =
            File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let mut command = Command::new(CAIRN);
        command
            .arg("node")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--chain")
            .arg(spec)
            .args([
                "--http",
                "127.0.0.1:0",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--no-mdns",
            ])
            .args(["--log", self.log_filter])
            .args(extra)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output);
        // SAFETY: prctl(2) is async-signal-safe and touches no memory of this process; it
        // makes the kernel kill the node if the bench dies without running destructors.
        // (The signal follows the thread that forks: the benches start nodes on the main
        // thread.)
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {CAIRN}"))?;
        Ok(NodeProcess {
            name: name.to_string(),
            child,
            data_dir: data_dir.to_path_buf(),
            log: log.to_path_buf(),
            api: SocketAddr::from(([127, 0, 0, 1], 0)),
            launcher: self,
        })
    }

    /// Polls `check` every 50 ms until it gives a value, for at most `timeout`.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut() -> Result<Option<T>>,
    ) -> Result<T> {
        let started = Instant::now();
        loop {
            (self.on_poll)()?;
            if let Some(value) = check()? {
                return Ok(value);
            }
            ensure!(started.elapsed() < timeout, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `GET url`, which must answer 200 with JSON of at most `max_answer_bytes`.
    pub fn get_json(&self, agent: &ureq::Agent, url: &str) -> Result<Value> {
        let mut response = agent
            .get(url)
            .call()
            .with_context(|| format!("GET {url}"))?;
        let status = response.status().as_u16();
        let body: Value = response
            .body_mut()
            .with_config()
            .limit(self.max_answer_bytes)
            .read_json()
            .with_context(|| format!("GET {url}: not JSON"))?;
        ensure!(status == 200, "GET {url} answered {status}: {body}");
        Ok(body)
    }
}

impl NodeProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error with the end of its log if the node has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let who = if self.name.is_empty() {
                "the node".to_string()
            } else {
                format!("node {}", self.name)
            };
            bail!(
                "{who} exited with {status}; log {}:\n{}",
                self.log.display(),
                tail(&self.log, 30)
            );
        }
        Ok(())
    }

    /// `GET <path>` on its API, as JSON.
    pub fn get(&self, path: &str) -> Result<Value> {
        self.launcher.get_json(
            &(self.launcher.agent)(),
            &format!("http://{}{path}", self.api),
        )
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The API address a node wrote to `<data_dir>/api.addr`, once it has.
pub fn read_api_addr(data_dir: &Path) -> Option<SocketAddr> {
    std::fs::read_to_string(data_dir.join("api.addr"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The last `lines` lines of a file (empty if it cannot be read).
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
