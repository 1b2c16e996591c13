//! Shared helpers of the process-level tests: a temp directory that shows the logs of its
//! nodes when a test fails, the test chain spec, a guard around every child process, running
//! the `cairn` CLI with a deadline, starting and stopping nodes, polling the HTTP API, and a
//! seeded random number generator.
//!
//! Processes are started and reaped by `cairn::node::harness` (shared with the load tools in
//! `loadtest/`): every one through [`ProcessGuard`], whose `Drop` kills and reaps it, so a
//! failing (panicking) test leaves nothing running.
#![allow(clippy::disallowed_methods)]
// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

use cairn::core::consensus::spec::DEV_SPEC_TOML;
use cairn::core::consensus::ChainSpec;
use cairn::core::primitives::transfer::UnsignedTransfer;
use cairn::core::primitives::Amount;
use cairn::core::testkit::solve;
use cairn::node::chain::open_chain;
use cairn::node::harness::{self, NodeCommand};
use serde_json::Value;
use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The `cairn` binary under test.
pub const CAIRN: &str = env!("CARGO_BIN_EXE_cairn");
/// How long a node may take to open its store and answer on the API.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a node may take to exit after SIGTERM or SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a one-shot CLI command may run.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between two polls.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Lines of a log shown when a test fails.
const LOG_TAIL_LINES: usize = 40;

/// A `cairn` command with a predictable environment (see [`harness::cairn_command`]).
fn cairn_command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    harness::cairn_command(Path::new(CAIRN), args)
}

/// Polls `check` until it returns `Ok`, or panics after `timeout` naming `what` and the last
/// `Err` (what was seen instead).
pub fn poll<T>(
    what: impl fmt::Display,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) => assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; last seen: {last}"
            ),
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

pub use cairn::node::harness::tail;

/// A child process that is killed and reaped when dropped, even while a test panics (a
/// [`harness::ChildProcess`] whose failures fail the test).
pub struct ProcessGuard(harness::ChildProcess);

impl ProcessGuard {
    /// Starts `command`.
    pub fn spawn(command: Command) -> ProcessGuard {
        ProcessGuard(harness::ChildProcess::spawn(command).unwrap_or_else(|e| panic!("{e}")))
    }

    /// Its process id.
    pub fn pid(&self) -> libc::pid_t {
        self.0.pid()
    }

    /// The exit status, if it has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.0
            .try_status()
            .unwrap_or_else(|e| panic!("cannot wait for `{}`: {e}", self.0.command_line()))
    }

    /// Waits up to `timeout` for it to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.0
            .wait_timeout(timeout)
            .unwrap_or_else(|e| panic!("cannot wait for `{}`: {e}", self.0.command_line()))
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`).
    pub fn signal(&self, signal: libc::c_int) {
        if let Err(e) = self.0.signal(signal) {
            panic!("kill({}, {signal}) failed: {e}", self.pid());
        }
    }

    /// The command line it was started with.
    pub fn command_line(&self) -> &str {
        self.0.command_line()
    }
}

/// What a finished `cairn` command did. `Display` shows everything, for assertion messages.
pub struct CliOutput {
    /// The command line.
    pub command_line: String,
    /// How it exited.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl fmt::Display for CliOutput {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "`{}` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command_line, self.status, self.stdout, self.stderr
        )
    }
}

impl CliOutput {
    /// Asserts it succeeded; returns its stdout.
    pub fn expect_ok(&self) -> &str {
        assert!(self.status.success(), "expected success:\n{self}");
        &self.stdout
    }

    /// Asserts it failed with a non-zero exit code and that stderr mentions every one of
    /// `needles`; returns its stderr.
    pub fn expect_failure(&self, needles: &[&str]) -> &str {
        assert!(
            matches!(self.status.code(), Some(code) if code != 0),
            "expected a non-zero exit code:\n{self}"
        );
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "expected stderr to mention {needle:?}:\n{self}"
            );
        }
        &self.stderr
    }
}

/// Runs `cairn args…` to completion (at most [`CLI_TIMEOUT`]) and captures its output.
pub fn cairn<I, S>(args: I) -> CliOutput
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_captured(cairn_command(args), CLI_TIMEOUT)
}

/// Runs `command` to completion (at most `timeout`, else it is killed and the test fails)
/// and captures its output.
pub fn run_captured(mut command: Command, timeout: Duration) -> CliOutput {
    let capture = || tempfile::tempfile().expect("cannot create a capture file");
    let (mut stdout, mut stderr) = (capture(), capture());
    command
        .stdout(stdout.try_clone().expect("cannot clone a file handle"))
        .stderr(stderr.try_clone().expect("cannot clone a file handle"));
    let mut process = ProcessGuard::spawn(command);
    let status = process.wait_timeout(timeout);
    let read = |file: &mut File| {
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_end(&mut bytes))
            .expect("cannot read a capture file");
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let (stdout, stderr) = (read(&mut stdout), read(&mut stderr));
    let Some(status) = status else {
        panic!(
            "`{}` did not finish within {timeout:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            process.command_line()
        );
    };
    CliOutput {
        command_line: process.command_line().to_string(),
        status,
        stdout,
        stderr,
    }
}

/// A path argument as `&str` (temp paths are UTF-8).
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// The tests' HTTP client: keep-alive, statuses returned rather than errors, 30 s at most a
/// call.
pub fn http_agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into()
    })
}

/// `GET url`: the status and the JSON body. Non-2xx statuses are returned, not errors.
pub fn http_get(url: &str) -> Result<(u16, Value), String> {
    let response = http_agent()
        .get(url)
        .call()
        .map_err(|e| format!("GET {url}: {e}"))?;
    json_answer("GET", url, response)
}

/// The status and JSON body of an answer to `method url`.
fn json_answer(
    method: &str,
    url: &str,
    mut response: ureq::http::Response<ureq::Body>,
) -> Result<(u16, Value), String> {
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_json::<Value>()
        .map_err(|e| format!("{method} {url}: answer {status} is not JSON: {e}"))?;
    Ok((status, body))
}

/// The integration-test chain spec written to a file.
pub struct TestSpec {
    /// The TOML file.
    pub path: PathBuf,
    /// The parsed spec.
    pub spec: ChainSpec,
    /// An address of this chain for `--miner-address` (the first allocation).
    pub miner_address: String,
}

impl TestSpec {
    /// The spec file as a command-line argument.
    pub fn arg(&self) -> &str {
        arg(&self.path)
    }
}

/// The network setup of a libp2p peer in a test's process (`cairn::node::net`) that dials
/// `target` on loopback: its key in `data_dir`, a free port, no mDNS.
pub fn test_peer_net_config(
    data_dir: &Path,
    genesis: cairn::core::primitives::BlockHash,
    spec: &TestSpec,
    target: &Node,
) -> cairn::node::net::NetConfig {
    let mut config = cairn::node::net::NetConfig::new(
        data_dir.to_path_buf(),
        genesis,
        spec.spec.max_block_bytes(),
    );
    config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("a valid address")];
    config.bootnodes = vec![target.p2p_addr().parse().expect("a valid address")];
    config.mdns = false;
    config
}

/// Replaces the single occurrence of `from` in `text`, asserting there is exactly one.
pub fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "the spec text should contain {from:?} exactly once"
    );
    let replaced = text.replacen(from, to, 1);
    assert_ne!(replaced, text, "replacing {from:?} changed nothing");
    replaced
}

/// The dev spec made fast: an easy genesis target (≈65k hashes a block), a 1 s block time
/// with a 60 s ASERT half-life, no mDNS, and its own name, id and chain id. Edits the parsed
/// spec (not its text), so changes to the dev spec's values cannot break it.
pub fn test_spec_toml() -> String {
    let mut file = ChainSpec::from_toml(DEV_SPEC_TOML)
        .expect("the dev spec is valid")
        .file;
    file.name = "Cairn Process Test".to_string();
    file.id = "proctest".to_string();
    file.chain_id = 7357;
    file.genesis.bits = "0x1f00ffff".to_string();
    file.consensus.ideal_block_time_secs = 1;
    file.consensus.asert_half_life_secs = 60;
    file.network.mdns = false;
    ChainSpec::from_file(file)
        .expect("the edited test spec is valid")
        .to_toml()
}

/// `cairn node` on `data_dir` and `spec`, with the API on a free loopback port.
pub fn node_args<'a>(data_dir: &'a Path, spec: &'a TestSpec) -> Vec<&'a str> {
    vec![
        "node",
        "--data-dir",
        arg(data_dir),
        "--chain",
        spec.arg(),
        "--http",
        "127.0.0.1:0",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--no-mdns",
    ]
}

/// The flags that make a test node mine: one thread, paying the spec's first account.
pub fn mining_args(spec: &TestSpec) -> [&str; 5] {
    [
        "--mine",
        "--threads",
        "1",
        "--miner-address",
        &spec.miner_address,
    ]
}

/// Writes [`test_spec_toml`] to `path`.
pub fn write_test_spec(path: &Path) -> TestSpec {
    let text = test_spec_toml();
    let spec = ChainSpec::from_toml(&text).expect("the test spec is valid");
    assert_eq!(spec.file.id, "proctest", "the replacements took effect");
    assert_eq!(spec.file.consensus.ideal_block_time_secs, 1);
    let (address, _) = spec
        .allocations
        .first()
        .expect("the dev spec funds accounts");
    let miner_address = address.to_bech32(spec.hrp()).expect("valid prefix");
    std::fs::write(path, &text).expect("cannot write the test spec");
    TestSpec {
        path: path.to_path_buf(),
        spec,
        miner_address,
    }
}

/// A test's temp directory. It records the log files of the processes started in it; if the
/// test panics, dropping it prints their tails and keeps the directory for inspection.
pub struct TestDir {
    dir: Option<tempfile::TempDir>,
    logs: Mutex<Vec<PathBuf>>,
    placement: Placement,
}

/// Where a test's nodes run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Each a `cairn node` process.
    Process,
    /// Each launched in the test's process (`node::launch`), from the same arguments, with
    /// its own log file.
    InProcess,
}

/// `CAIRN_TEST_NODES=process` (or `in-process`) overrides where a test's nodes run, to time
/// or debug a test both ways.
const PLACEMENT_VAR: &str = "CAIRN_TEST_NODES";

impl TestDir {
    /// A fresh directory named after the test.
    pub fn new(name: &str) -> TestDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("cairn-{name}-"))
            .tempdir()
            .expect("cannot create a temp dir");
        TestDir {
            dir: Some(dir),
            logs: Mutex::new(Vec::new()),
            placement: Placement::Process,
        }
    }

    /// The same directory, its nodes launched in this process unless `CAIRN_TEST_NODES`
    /// says `process`. For tests that never kill a node or limit its process: no binary
    /// between the test and the node, and `node::launch` tested as the tools use it.
    pub fn in_process(self) -> TestDir {
        self.nodes(Placement::InProcess)
    }

    /// The same directory, its nodes placed as `CAIRN_TEST_NODES` says (`process` or
    /// `in-process`), or by `default`: for tests that can run either way (where the
    /// default is the faster here, and CI runs the other too).
    pub fn nodes(mut self, default: Placement) -> TestDir {
        self.placement = match std::env::var(PLACEMENT_VAR).as_deref() {
            Ok("process") => Placement::Process,
            Ok("in-process") => Placement::InProcess,
            Err(_) => default,
            Ok(other) => panic!("{PLACEMENT_VAR}={other}: say `process` or `in-process`"),
        };
        self
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("present until dropped").path()
    }

    /// Writes the test spec into the directory.
    pub fn write_spec(&self) -> TestSpec {
        write_test_spec(&self.path().join("proctest.toml"))
    }

    /// A new log file `<name>.log` in the directory, shown if the test fails.
    pub fn new_log(&self, name: &str) -> PathBuf {
        let path = self.path().join(format!("{name}.log"));
        assert!(!path.exists(), "log {} is used twice", path.display());
        self.logs.lock().expect("not poisoned").push(path.clone());
        path
    }

    /// Starts a node on `data_dir` (mining with one thread if `mine`), logging to
    /// `<name>.log`, and waits for its API to answer.
    pub fn start_node(&self, name: &str, data_dir: &Path, spec: &TestSpec, mine: bool) -> Node {
        self.start_node_with(name, data_dir, spec, mine, &[])
    }

    /// Like [`TestDir::start_node`], with more command-line arguments (e.g. `--bootnode`).
    pub fn start_node_with(
        &self,
        name: &str,
        data_dir: &Path,
        spec: &TestSpec,
        mine: bool,
        extra: &[String],
    ) -> Node {
        let log = self.new_log(name);
        match self.placement {
            Placement::Process => Node::start(log, data_dir, spec, mine, extra, None),
            Placement::InProcess => Node::launch(log, data_dir, spec, mine, extra),
        }
    }

    /// Mines on `data_dir` until the tip is at least at `height`, then stops the node
    /// cleanly.
    pub fn mine_to(&self, name: &str, data_dir: &Path, spec: &TestSpec, height: u64) {
        let mut node = self.start_node(name, data_dir, spec, true);
        node.wait_for_height(height, Duration::from_secs(60));
        node.stop_cleanly();
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for log in self.logs.lock().map(|l| l.clone()).unwrap_or_default() {
            eprintln!(
                "===== last {LOG_TAIL_LINES} lines of {} =====\n{}",
                log.display(),
                tail(&log, LOG_TAIL_LINES)
            );
        }
        if let Some(dir) = self.dir.take() {
            eprintln!("===== test directory kept at {}", dir.keep().display());
        }
    }
}

/// A running node: a `cairn node` process, killed when dropped, or a node launched in this
/// process, stopped when dropped.
pub struct Node {
    running: Running,
    /// Its stdout and stderr.
    pub log: PathBuf,
    /// Where its API listens.
    pub api: SocketAddr,
    /// Its data directory.
    pub data_dir: PathBuf,
}

/// `CAIRN_TEST_NODE_LOG=debug` (any `--log` filter) makes test nodes log more.
const NODE_LOG_VAR: &str = "CAIRN_TEST_NODE_LOG";

/// `cairn node` on `data_dir` and `spec` (mining with one thread if `mine`, then `extra`),
/// logging to `log` (at `CAIRN_TEST_NODE_LOG` if set).
fn node_command(
    data_dir: &Path,
    spec: &TestSpec,
    log: &Path,
    mine: bool,
    extra: &[String],
) -> NodeCommand {
    let mut command = NodeCommand::new(Path::new(CAIRN), data_dir, &spec.path, log);
    if let Ok(filter) = std::env::var(NODE_LOG_VAR) {
        command = command.log_filter(&filter);
    }
    if mine {
        command = command.args(mining_args(spec));
    }
    command.args(extra)
}

/// How a [`Node`] runs.
enum Running {
    Process(ProcessGuard),
    InProcess(Box<cairn::node::NodeHandle>),
}

impl Node {
    /// Launches in this process the node `cairn node` would start with the same arguments
    /// (see [`Node::start`]), logging to `log`.
    fn launch(
        log: PathBuf,
        data_dir: &Path,
        spec: &TestSpec,
        mine: bool,
        extra: &[String],
    ) -> Node {
        let handle = node_command(data_dir, spec, &log, mine, extra)
            .launch()
            .unwrap_or_else(|e| panic!("the node did not launch: {e:#} (log {})", log.display()));
        Node {
            api: handle.api_addr(),
            running: Running::InProcess(Box::new(handle)),
            log,
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// The process, for what only a process can do.
    fn process(&mut self) -> &mut ProcessGuard {
        match &mut self.running {
            Running::Process(process) => process,
            Running::InProcess(_) => {
                panic!("a node launched in-process cannot be signalled: use a process node")
            }
        }
    }

    /// Starts `cairn node --http 127.0.0.1:0` on `data_dir` (with its open-file limit, soft
    /// and hard, set to `open_files` if given, as under `ulimit -n`), and waits until the
    /// address in `<data-dir>/api.addr` answers `GET /api/v1/tip`.
    fn start(
        log: PathBuf,
        data_dir: &Path,
        spec: &TestSpec,
        mine: bool,
        extra: &[String],
        open_files: Option<u64>,
    ) -> Node {
        let mut command = node_command(data_dir, spec, &log, mine, extra);
        if let Some(open_files) = open_files {
            command = command.open_files(open_files);
        }
        let mut process = command.spawn().unwrap_or_else(|e| panic!("{e}"));
        let api = harness::wait_for_api(&mut process, data_dir, &log, STARTUP_TIMEOUT, |api| {
            http_get(&format!("http://{api}/api/v1/tip")).map(|_| ())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        Node {
            running: Running::Process(ProcessGuard(process)),
            log,
            api,
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// The node's P2P address with its peer id (from `<data-dir>/p2p.addr`), for other
    /// nodes' `--bootnode`.
    pub fn p2p_addr(&self) -> String {
        let file = self.data_dir.join(cairn::node::driver::P2P_ADDR_FILE);
        poll(
            format!("the P2P address in {}", file.display()),
            STARTUP_TIMEOUT,
            || {
                let text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
                let text = text.trim().to_string();
                if text.contains("/p2p/") {
                    Ok(text)
                } else {
                    Err(format!("{text:?}"))
                }
            },
        )
    }

    /// The node's peer id.
    pub fn peer_id(&self) -> String {
        let addr = self.p2p_addr();
        addr.rsplit_once("/p2p/")
            .map(|(_, id)| id.to_string())
            .expect("the address ends in /p2p/<id>")
    }

    /// `GET /api/v1/peers`.
    pub fn peers(&self) -> Value {
        self.get("/api/v1/peers")
    }

    /// Whether `GET /api/v1/peers` lists `peer_id` as connected.
    pub fn lists_peer(&self, peer_id: &str) -> Result<bool, String> {
        let (_, view) = self.try_get("/api/v1/peers")?;
        Ok(view["peers"]
            .as_array()
            .is_some_and(|peers| peers.iter().any(|entry| entry["peer_id"] == peer_id)))
    }

    /// The API's base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.api)
    }

    /// `GET path` on the API: status and JSON body.
    pub fn try_get(&self, path: &str) -> Result<(u16, Value), String> {
        http_get(&format!("{}{path}", self.url()))
    }

    /// `GET path`, asserting the answer is `200 OK`.
    pub fn get(&self, path: &str) -> Value {
        match self.try_get(path) {
            Ok((200, body)) => body,
            Ok((status, body)) => panic!("GET {path} answered {status}: {body}"),
            Err(e) => panic!("{e}"),
        }
    }

    /// `GET /api/v1/tip`.
    pub fn tip(&self) -> Value {
        self.get("/api/v1/tip")
    }

    /// Waits until the tip stays put for half a second (after mining is turned off, a block
    /// already found may still arrive).
    pub fn wait_for_still_tip(&self) -> Value {
        let mut last = self.tip();
        poll("a tip that stays put", Duration::from_secs(30), || {
            std::thread::sleep(Duration::from_millis(500));
            let now = self.tip();
            if now["hash"] == last["hash"] {
                Ok(now)
            } else {
                last = now;
                Err("the tip moved".to_string())
            }
        })
    }

    /// `GET /api/v1/blocks/{id}`.
    pub fn block(&self, id: impl fmt::Display) -> Value {
        self.get(&format!("/api/v1/blocks/{id}"))
    }

    /// The tip the node found in its store at startup, from its log line
    /// "chain … tip at height {height} ({hash}) …" (written before it starts mining).
    pub fn startup_tip(&self) -> (u64, String) {
        let log = std::fs::read_to_string(&self.log).expect("cannot read the node log");
        let parsed = log.lines().find_map(|line| {
            let rest = line.split_once("tip at height ")?.1;
            let (height, rest) = rest.split_once(" (")?;
            let (hash, _) = rest.split_once(')')?;
            Some((height.parse().ok()?, hash.to_string()))
        });
        parsed.unwrap_or_else(|| panic!("no startup tip line in {}", self.log.display()))
    }

    /// Polls the tip until its height is at least `height`; returns that tip.
    pub fn wait_for_height(&mut self, height: u64, timeout: Duration) -> Value {
        let what = format!("height {height} (log {})", self.log.display());
        poll(&what, timeout, || {
            if let Some(status) = self.exit_status() {
                panic!("the node exited with {status} while waiting for height {height}");
            }
            let tip = self.tip();
            match tip["height"].as_u64() {
                Some(h) if h >= height => Ok(tip),
                _ => Err(format!("tip {tip}")),
            }
        })
    }

    /// How the node's process exited, if it has (an in-process node never exits by itself).
    fn exit_status(&mut self) -> Option<ExitStatus> {
        match &mut self.running {
            Running::Process(process) => process.try_status(),
            Running::InProcess(_) => None,
        }
    }

    /// Sends SIGTERM and waits for the exit (at most [`STOP_TIMEOUT`]).
    pub fn terminate(mut self) -> ExitStatus {
        self.process().signal(libc::SIGTERM);
        self.wait_for_exit("SIGTERM")
    }

    /// Stops the node (SIGTERM for a process, which must exit with status 0; `stop` for an
    /// in-process node, which must succeed) and asserts it logged "stopped cleanly".
    pub fn stop_cleanly(self) {
        let log = self.log.clone();
        match self.running {
            Running::InProcess(handle) => {
                if let Err(e) = handle.stop() {
                    panic!(
                        "the node did not stop cleanly: {e:#} (log {})",
                        log.display()
                    );
                }
            }
            Running::Process(_) => {
                let status = self.terminate();
                assert_eq!(
                    status.code(),
                    Some(0),
                    "the node should exit with status 0 on SIGTERM, got {status} (log {})",
                    log.display()
                );
            }
        }
        let text = std::fs::read_to_string(&log).expect("cannot read the node log");
        assert!(
            text.contains("stopped cleanly"),
            "the node did not log \"stopped cleanly\" (log {})",
            log.display()
        );
    }

    /// Freezes the node's process (SIGSTOP): its connections stay open, as the kernel still
    /// acknowledges them, but it answers nothing, like a peer behind a link that went dead.
    pub fn freeze(&mut self) {
        self.process().signal(libc::SIGSTOP);
    }

    /// Lets a frozen node run again (SIGCONT).
    pub fn thaw(&mut self) {
        self.process().signal(libc::SIGCONT);
    }

    /// Kills the node with SIGKILL and reaps it; asserts it had not exited by itself.
    pub fn kill9(mut self) {
        use std::os::unix::process::ExitStatusExt;
        self.process().signal(libc::SIGKILL);
        let status = self.wait_for_exit("SIGKILL");
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "the node had exited by itself ({status}) before SIGKILL (log {})",
            self.log.display()
        );
    }

    fn wait_for_exit(&mut self, after: &str) -> ExitStatus {
        let log = self.log.clone();
        self.process()
            .wait_timeout(STOP_TIMEOUT)
            .unwrap_or_else(|| {
                panic!(
                    "the node did not exit within {STOP_TIMEOUT:?} of {after} (log {})",
                    log.display()
                )
            })
    }
}

/// `cairn verify` on a stopped node's data dir: asserts it prints `ok:` and returns the
/// verified (height, tip hash).
pub fn verify(data_dir: &Path, spec: &TestSpec) -> (u64, String) {
    let output = cairn(["verify", "--data-dir", arg(data_dir), "--chain", spec.arg()]);
    let stdout = output.expect_ok();
    // "ok: {height} blocks from genesis to {hash} verified, {n} accounts match the replay"
    let parsed = stdout.strip_prefix("ok: ").and_then(|rest| {
        let mut words = rest.split_whitespace();
        let height = words.next()?.parse().ok()?;
        let hash = words.nth(4)?.to_string();
        Some((height, hash))
    });
    parsed.unwrap_or_else(|| panic!("unexpected `cairn verify` output:\n{output}"))
}

/// A xorshift64* generator: seeded, reproducible, no dependencies.
pub struct XorShift(u64);

impl XorShift {
    /// A generator seeded from `CAIRN_TEST_SEED` if set, else from the clock. Prints the
    /// seed so that a failure can be replayed.
    pub fn from_env_or_clock() -> XorShift {
        let seed = std::env::var("CAIRN_TEST_SEED")
            .ok()
            .map(|s| s.parse().expect("CAIRN_TEST_SEED is a u64"))
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        eprintln!("random seed: {seed} (replay with CAIRN_TEST_SEED={seed})");
        XorShift::new(seed)
    }

    /// A generator with this seed.
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `low..high`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        assert!(low < high);
        low + self.next_u64() % (high - low)
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// `--bootnode <addr>` for each of `nodes`.
pub fn bootnode_args(nodes: &[&Node]) -> Vec<String> {
    nodes
        .iter()
        .flat_map(|n| ["--bootnode".to_string(), n.p2p_addr()])
        .collect()
}

/// `POST url` with `body` as `content_type`: the status and the JSON body. Non-2xx statuses
/// are returned, not errors.
pub fn http_post(
    url: &str,
    body: &[u8],
    content_type: &str,
    token: Option<&str>,
) -> Result<(u16, Value), String> {
    let mut request = http_agent().post(url).header("Content-Type", content_type);
    if let Some(token) = token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let response = request
        .send(body)
        .map_err(|e| format!("POST {url} ({} bytes): {e}", body.len()))?;
    json_answer("POST", url, response)
}

/// The JSON body of `POST /api/v1/transactions` for `transfer` on `spec`'s chain.
pub fn transfer_json(spec: &ChainSpec, transfer: &cairn::core::primitives::Transfer) -> Value {
    let body = cairn::core::views::SubmitTransferRequest::from_transfer(transfer, spec.hrp())
        .expect("valid prefix");
    serde_json::to_value(body).expect("a JSON body")
}

/// A transfer from dev account `from` (its key from the published dev mnemonic) to `to`,
/// signed for `spec`'s chain.
pub fn dev_transfer(
    spec: &ChainSpec,
    from: u32,
    to: cairn::core::primitives::Address,
    amount: u64,
    fee: u64,
    nonce: u64,
) -> cairn::core::primitives::Transfer {
    dev_transfer_with_memo(spec, from, to, amount, fee, nonce, Vec::new())
}

/// Like [`dev_transfer`], carrying `memo`.
pub fn dev_transfer_with_memo(
    spec: &ChainSpec,
    from: u32,
    to: cairn::core::primitives::Address,
    amount: u64,
    fee: u64,
    nonce: u64,
    memo: Vec<u8>,
) -> cairn::core::primitives::Transfer {
    use cairn::core::consensus::genesis::genesis_hash;
    use cairn::core::primitives::transfer::UnsignedTransfer;
    use cairn::core::primitives::Amount;
    UnsignedTransfer {
        chain_id: spec.chain_id(),
        to,
        amount: Amount::from_units(amount),
        fee: Amount::from_units(fee),
        nonce,
        memo,
    }
    .sign(
        &cairn_wallet::keys::dev_keypair(from),
        &genesis_hash(spec),
        &[7; 32],
    )
}

impl Node {
    /// `POST path` with a JSON body: status and JSON answer.
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        http_post(
            &format!("{}{path}", self.url()),
            body.to_string().as_bytes(),
            "application/json",
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// An admin call with the node's cookie token, asserting `200 OK`.
    pub fn admin(&self, path: &str, body: &Value) -> Value {
        let token = std::fs::read_to_string(self.data_dir.join(".cookie")).expect("the cookie");
        let (status, answer) = http_post(
            &format!("{}{path}", self.url()),
            body.to_string().as_bytes(),
            "application/json",
            Some(token.trim()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(status, 200, "admin {path}: {answer}");
        answer
    }

    /// Submits `transfer`: status and JSON answer.
    pub fn submit(
        &self,
        spec: &ChainSpec,
        transfer: &cairn::core::primitives::Transfer,
    ) -> (u16, Value) {
        self.post("/api/v1/transactions", &transfer_json(spec, transfer))
    }

    /// The balance of `address` in base units.
    pub fn balance(&self, spec: &ChainSpec, address: &cairn::core::primitives::Address) -> u64 {
        let address = address.to_bech32(spec.hrp()).expect("valid prefix");
        self.get(&format!("/api/v1/accounts/{address}"))["balance"]
            .as_u64()
            .expect("a balance")
    }
}

impl TestDir {
    /// Like [`TestDir::start_node_with`], with the node's open-file limit (soft and hard)
    /// set to `open_files`, as under `ulimit -n`.
    pub fn start_node_with_open_files(
        &self,
        name: &str,
        data_dir: &Path,
        spec: &TestSpec,
        extra: &[String],
        open_files: u64,
    ) -> Node {
        Node::start(
            self.new_log(name),
            data_dir,
            spec,
            false,
            extra,
            Some(open_files),
        )
    }
}

/// Raises this test process's soft limit on open files to at least `needed` (within the hard
/// limit), for tests that hold many sockets.
pub fn raise_own_open_files(needed: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct we pass.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        assert!(
            limit.rlim_max >= needed,
            "this test needs {needed} open files; the hard limit is {}",
            limit.rlim_max
        );
        if limit.rlim_cur < needed {
            limit.rlim_cur = needed;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
}

/// `method path` on `api` with the `Host` header `host` (the tests' client sends the
/// address otherwise): the status, the `Content-Type` and the body as text.
pub fn http_raw(
    api: SocketAddr,
    method: &str,
    path: &str,
    host: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(u16, String, String), String> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(api).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if let Some(host) = host {
        head.push_str(&format!("Host: {host}\r\n"));
    }
    if let Some(content_type) = content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(body))
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::new();
    // The node may close the connection before it read a body it refuses.
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{method} {path}: no complete answer: {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{method} {path}: bad status line: {head:?}"))?;
    let content_type = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    let chunked = head.lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.eq_ignore_ascii_case("transfer-encoding") && value.contains("chunked")
        })
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, content_type, body))
}

/// The data of a chunked HTTP/1.1 body.
fn dechunk(mut rest: &str) -> String {
    let mut data = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        data.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    data
}

/// Socket-holding tasks (a connection flood, slow clients) on a thread of their own with a
/// tokio runtime, so the test's own thread stays free to poll the node. They stop by
/// themselves after `limit`; dropping the handle stops them at once and waits until their
/// sockets are closed.
pub struct SocketTasks {
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SocketTasks {
    /// Starts a thread named `name` on which `spawn` puts its tasks into a `JoinSet`.
    pub fn start(
        name: &str,
        limit: Duration,
        spawn: impl FnOnce(&mut tokio::task::JoinSet<()>) + Send + 'static,
    ) -> SocketTasks {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime for the socket tasks");
                runtime.block_on(async move {
                    let mut tasks = tokio::task::JoinSet::new();
                    spawn(&mut tasks);
                    tokio::select! {
                        _ = tokio::time::sleep(limit) => {}
                        _ = stopped.wait_for(|stop| *stop) => {}
                    }
                    // Aborting the tasks drops (closes) their sockets.
                    tasks.shutdown().await;
                });
            })
            .expect("cannot start the socket tasks' thread");
        SocketTasks {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for SocketTasks {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl TestDir {
    /// Starts node `name` (not mining) with `a` as its bootnode and waits until the two list
    /// each other as peers, within `timeout` of the start; `while_` says under what (for the
    /// failure message) and `context` adds what else it should show. Returns the node and
    /// how long joining took.
    pub fn join_node(
        &self,
        name: &str,
        spec: &TestSpec,
        a: &Node,
        timeout: Duration,
        while_: &str,
        context: impl Fn() -> String,
    ) -> (Node, Duration) {
        let started = Instant::now();
        let b = self.start_node_with(
            name,
            &self.path().join(name),
            spec,
            false,
            &bootnode_args(&[a]),
        );
        let (a_id, b_id) = (a.peer_id(), b.peer_id());
        poll(
            format!("{name} ({b_id}) and A ({a_id}) connected {while_}"),
            timeout.saturating_sub(started.elapsed()),
            || {
                let a_sees_b = a.lists_peer(&b_id)?;
                let b_sees_a = b.lists_peer(&a_id)?;
                if a_sees_b && b_sees_a {
                    Ok(())
                } else {
                    Err(format!(
                        "A lists {name}: {a_sees_b}, {name} lists A: {b_sees_a}{}",
                        context()
                    ))
                }
            },
        );
        let joined = started.elapsed();
        eprintln!("{name} connected to A {joined:.2?} after its start");
        (b, joined)
    }
}

/// Mines `blocks` blocks into the store in `data_dir`, one a second up to now (so the
/// difficulty stays at the genesis target), with a transfer between dev accounts in every
/// tenth block. Returns the tip hash.
pub fn premine(data_dir: &Path, spec: &TestSpec, blocks: u32) -> String {
    let mut chain = open_chain(&data_dir.join("chain"), spec.spec.clone()).expect("open the store");
    let (miner, _) = spec.spec.allocations[0];
    let start = unix_now() - u64::from(blocks) - 2;
    let key = cairn_wallet::keys::dev_keypair(1);
    let mut nonce = 0;
    for n in 1..=blocks {
        let mut transfers = Vec::new();
        if n % 10 == 0 {
            transfers.push(
                UnsignedTransfer {
                    chain_id: spec.spec.chain_id(),
                    to: spec.spec.allocations[2].0,
                    amount: Amount::from_units(1_000 + u64::from(n)),
                    fee: Amount::from_units(10),
                    nonce,
                    memo: b"premined".to_vec(),
                }
                .sign(&key, &chain.genesis_hash(), &[9; 32]),
            );
            nonce += 1;
        }
        let time = start + u64::from(n);
        let mut block =
            cairn::core::miner::template_on(&chain, miner, time, u64::from(n), transfers)
                .expect("template")
                .block;
        solve(&mut block.header);
        chain
            .submit_block(block, unix_now())
            .expect("a valid block");
    }
    let tip = chain.tip().hash().to_string();
    chain.store().flush().expect("flush");
    tip
}
