//! Real `cairn node` processes for the load tools, on `cairn::node::harness` (the tests'
//! harness too): starting one (free ports on 127.0.0.1, mDNS off, its output to a log file,
//! killed by the kernel if the tool dies), waiting for its API, checking it is still
//! running, JSON GETs to it, and the polling loop of the tools' waits; also nearest-rank
//! percentiles, which both subjects print.
//!
//! What differs between the subjects (log filter, startup timeout, HTTP client, answer size
//! limit, a check run on every poll such as the API subject's Ctrl-C) is a [`Launcher`], one
//! `static` per subject; subject-specific calls on a node live in the subject's file, in an
//! `impl NodeProcess` block of its own.

use anyhow::{bail, ensure, Context, Result};
use cairn::node::harness::{tail, wait_for_api, ChildProcess, NodeCommand};
use serde_json::Value;
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use cairn::node::harness::read_api_addr;

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

static CAIRN: OnceLock<PathBuf> = OnceLock::new();

/// Sets the `cairn` binary the tools start (once, before any node starts).
pub fn set_cairn_binary(path: PathBuf) {
    let _ = CAIRN.set(path);
}

/// The `cairn` binary the tools start.
pub fn cairn_binary() -> &'static Path {
    CAIRN.get().expect("main sets the cairn binary first")
}

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
    child: ChildProcess,
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
        let agent = (self.agent)();
        let api = wait_for_api(
            &mut node.child,
            data_dir,
            log,
            self.startup_timeout,
            |addr| {
                (self.on_poll)().map_err(|e| e.to_string())?;
                self.get_json(&agent, &format!("http://{addr}/api/v1/tip"))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            },
        );
        match api {
            Ok(addr) => {
                node.api = addr;
                Ok(node)
            }
            Err(why) if name.is_empty() => bail!("{why}"),
            Err(why) => bail!("{name}: {why}"),
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
        // The kernel kills the node if the tool dies without cleaning up (the tools start
        // their nodes on the main thread, which lives as long as they do).
        let child = NodeCommand::new(cairn_binary(), data_dir, spec, log)
            .log_filter(self.log_filter)
            .args(extra)
            .die_with_parent()
            .spawn()
            .with_context(|| format!("cannot start {}", cairn_binary().display()))?;
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
        self.child.pid().unsigned_abs()
    }

    /// An error with the end of its log if the node has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_status()? {
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
