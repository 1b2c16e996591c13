//! Test nodes for the end-to-end tests and the load tools (feature `test-utils`): the one
//! place that knows how to start a node on free loopback ports with its output in a log file,
//! as a real `cairn node` process (find its API, signal it, kill and reap it when its owner
//! goes) or, from the very same arguments, in this process through [`crate::node::launch`]
//! ([`NodeCommand::launch`]). The tests (`tests/common`) and `cairn-loadtest` build their
//! helpers on it.
//!
//! # Invariants
//! - A [`ChildProcess`] is killed and reaped when dropped, also while its owner panics; with
//!   [`NodeCommand::die_with_parent`] the kernel kills it as well if the owner dies without
//!   running destructors.
//! - A node command never inherits `RUST_LOG` (its log filter is the command's own) and
//!   writes plain, uncoloured lines.
use crate::node::NodeHandle;
use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A child process, killed and reaped when dropped.
pub struct ChildProcess {
    child: Child,
    command_line: String,
}

impl ChildProcess {
    /// Starts `command`.
    pub fn spawn(mut command: Command) -> io::Result<ChildProcess> {
        let command_line = command_line(&command);
        let child = command
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start `{command_line}`: {e}")))?;
        Ok(ChildProcess {
            child,
            command_line,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> libc::pid_t {
        libc::pid_t::try_from(self.child.id()).expect("pids fit in pid_t")
    }

    /// The exit status, if it has exited.
    pub fn try_status(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// Waits up to `timeout` for it to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`).
    pub fn signal(&self, signal: libc::c_int) -> io::Result<()> {
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child, not
        // yet reaped (only `try_status` reaps, after which nobody signals it).
        match unsafe { libc::kill(self.pid(), signal) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }

    /// The command line it was started with.
    pub fn command_line(&self) -> &str {
        &self.command_line
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `program arg…` as one line, for messages.
pub fn command_line(command: &Command) -> String {
    let program = Path::new(command.get_program())
        .file_name()
        .unwrap_or(command.get_program())
        .to_string_lossy()
        .into_owned();
    let mut line = program;
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// A `cairn` command (any subcommand) with a predictable environment: plain logs, no
/// inherited `RUST_LOG`, error messages without anyhow backtraces, no standard input.
pub fn cairn_command<I, S>(binary: &Path, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(binary);
    command
        .args(args)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .env("RUST_LIB_BACKTRACE", "0")
        .stdin(Stdio::null());
    command
}

/// How to start `cairn node` on a data directory: the API and P2P on free ports of
/// 127.0.0.1, mDNS off, output appended to a log file.
pub struct NodeCommand {
    binary: PathBuf,
    data_dir: PathBuf,
    spec: PathBuf,
    log: PathBuf,
    log_filter: Option<String>,
    extra: Vec<OsString>,
    open_files: Option<u64>,
    die_with_parent: bool,
}

impl NodeCommand {
    /// `binary node --data-dir data_dir --chain spec`, logging to `log`.
    pub fn new(binary: &Path, data_dir: &Path, spec: &Path, log: &Path) -> NodeCommand {
        NodeCommand {
            binary: binary.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            spec: spec.to_path_buf(),
            log: log.to_path_buf(),
            log_filter: None,
            extra: Vec::new(),
            open_files: None,
            die_with_parent: false,
        }
    }

    /// `--log filter`.
    pub fn log_filter(mut self, filter: &str) -> NodeCommand {
        self.log_filter = Some(filter.to_string());
        self
    }

    /// More arguments (e.g. `--mine`, `--bootnode …`).
    pub fn args<I, S>(mut self, args: I) -> NodeCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.extra
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Its open-file limit, soft and hard, as under `ulimit -n`.
    pub fn open_files(mut self, limit: u64) -> NodeCommand {
        self.open_files = Some(limit);
        self
    }

    /// Killed by the kernel if the thread that starts it dies (start it from a thread that
    /// lives as long as the node should: `PR_SET_PDEATHSIG` follows the forking thread).
    pub fn die_with_parent(mut self) -> NodeCommand {
        self.die_with_parent = true;
        self
    }

    /// The arguments after `cairn node`.
    fn node_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--data-dir".into(),
            self.data_dir.clone().into(),
            "--chain".into(),
            self.spec.clone().into(),
            "--http".into(),
            "127.0.0.1:0".into(),
            "--listen".into(),
            "/ip4/127.0.0.1/tcp/0".into(),
            "--no-mdns".into(),
        ];
        // Always explicit, so that the test's own RUST_LOG does not reach an in-process node
        // (a process never sees it: see `cairn_command`); `--log` among the extra arguments
        // comes later and wins.
        let filter = self.log_filter.as_deref().unwrap_or("info");
        args.extend(["--log".into(), filter.into()]);
        args.extend(self.extra.iter().cloned());
        args
    }

    /// Creates the data directory, deletes the address files a previous run left and opens
    /// the log for appending.
    fn prepare(&self) -> io::Result<File> {
        std::fs::create_dir_all(&self.data_dir)?;
        for stale in [
            crate::node::API_ADDR_FILE,
            crate::node::driver::P2P_ADDR_FILE,
        ] {
            match std::fs::remove_file(self.data_dir.join(stale)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot open {}: {e}", self.log.display()))
            })
    }

    /// Starts the same node in this process through [`crate::node::launch`], from the same
    /// arguments (parsed as `cairn node` parses them), logging to the same file in the same
    /// format; returns once its API serves. The binary is not used; an open-file limit or
    /// parent-death signal apply to processes only and are refused here.
    pub fn launch(self) -> anyhow::Result<NodeHandle> {
        if self.open_files.is_some() || self.die_with_parent {
            anyhow::bail!("open-file limits and parent-death signals apply to node processes");
        }
        let output = self.prepare()?;
        let command_line = crate::node::cli::parse_node_command_line(self.node_args())?;
        let log = crate::node::cli::log_dispatch(
            &command_line.log_filter,
            std::sync::Mutex::new(output),
            false,
        );
        tracing::dispatcher::with_default(&log, || crate::node::launch(command_line.config))
    }

    /// Deletes the address files a previous run left, then starts the node (without waiting
    /// for its API: see [`wait_for_api`]).
    pub fn spawn(self) -> io::Result<ChildProcess> {
        let output = self.prepare()?;
        let args = std::iter::once(OsString::from("node")).chain(self.node_args());
        let mut command = cairn_command(&self.binary, args);
        command.stdout(File::try_clone(&output)?).stderr(output);
        let open_files = self.open_files.map(|limit| libc::rlimit {
            rlim_cur: limit,
            rlim_max: limit,
        });
        let die_with_parent = self.die_with_parent;
        // SAFETY: the closure runs in the child between fork and exec and calls only
        // prctl(2) and setrlimit(2), which are async-signal-safe and touch no memory of the
        // parent.
        unsafe {
            command.pre_exec(move || {
                if die_with_parent && libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if let Some(limit) = &open_files {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, limit) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        ChildProcess::spawn(command)
    }
}

/// The API address a node wrote to `<data_dir>/api.addr`, once it has (a half-written file
/// does not parse and reads as not yet).
pub fn read_api_addr(data_dir: &Path) -> Option<SocketAddr> {
    std::fs::read_to_string(data_dir.join(crate::node::API_ADDR_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Waits until `node` (started on `data_dir`) has written its API address and `ready` says
/// the API answers there, polling every 20 ms for at most `timeout`. An error says why: the
/// node exited (with the end of `log`), or the time ran out (with `ready`'s last error).
pub fn wait_for_api(
    node: &mut ChildProcess,
    data_dir: &Path,
    log: &Path,
    timeout: Duration,
    mut ready: impl FnMut(SocketAddr) -> Result<(), String>,
) -> Result<SocketAddr, String> {
    let started = Instant::now();
    let mut last = String::from("no api.addr yet");
    loop {
        match node.try_status() {
            Ok(Some(status)) => {
                return Err(format!(
                    "the node exited with {status} before its API came up; log {}:\n{}",
                    log.display(),
                    tail(log, 30)
                ))
            }
            Ok(None) => {}
            Err(e) => return Err(format!("cannot wait for the node: {e}")),
        }
        if let Some(addr) = read_api_addr(data_dir) {
            match ready(addr) {
                Ok(()) => return Ok(addr),
                Err(e) => last = e,
            }
        }
        if started.elapsed() >= timeout {
            return Err(format!(
                "no API within {timeout:?} ({last}); log {}:\n{}",
                log.display(),
                tail(log, 30)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last `lines` lines of a file (a note if it cannot be read).
pub fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_child_is_killed_and_reaped() {
        let mut sleeper = Command::new("sleep");
        sleeper.arg("30");
        let child = ChildProcess::spawn(sleeper).expect("sleep starts");
        let pid = child.pid();
        assert_eq!(child.command_line(), "sleep 30");
        drop(child);
        // Reaped: the pid is no longer ours to signal.
        // SAFETY: kill with signal 0 only checks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(!alive, "the child {pid} still exists after drop");
    }

    #[test]
    fn a_node_command_asks_for_loopback_ports_and_its_log() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let log = dir.path().join("n.log");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join(crate::node::API_ADDR_FILE), "127.0.0.1:1").unwrap();
        // `true` stands in for the binary: it exits at once, whatever its arguments.
        let mut node = NodeCommand::new(Path::new("true"), &data, Path::new("spec.toml"), &log)
            .log_filter("warn")
            .args(["--mine"])
            .spawn()
            .expect("starts");
        assert!(node.command_line().starts_with("true node --data-dir "));
        assert!(node.command_line().ends_with(
            "--http 127.0.0.1:0 --listen /ip4/127.0.0.1/tcp/0 --no-mdns --log warn --mine"
        ));
        assert!(read_api_addr(&data).is_none(), "the stale address is gone");
        let waited = wait_for_api(&mut node, &data, &log, Duration::from_secs(5), |_| Ok(()));
        assert!(
            waited.unwrap_err().contains("exited"),
            "a node that exits is reported as such"
        );
    }
}
