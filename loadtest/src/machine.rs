//! What the load tools read about the machine and the processes on it: the load average, the
//! CPU model, CPU seconds of a process or a thread from `/proc`, and the knobs given in the
//! environment.
use anyhow::{anyhow, Result};

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` gives them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Prints the `== machine` header of a run: cores, CPU model, load average, the binary and
/// where the run keeps its files.
pub fn print_header(binary: &std::path::Path, temp_dir: &std::path::Path) {
    println!("== machine");
    println!(
        "cpus: {}   model: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model()
    );
    println!("load average at start: {}", load_average());
    println!("binary: {}", binary.display());
    println!("temp dir: {}", temp_dir.display());
}

/// The first CPU's model name.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_default()
}

/// The name and user + system CPU seconds in a `/proc/…/stat` file (of a process or a
/// thread), if it can be read.
pub fn stat_cpu(path: &str) -> Option<(String, f64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let name = text.split_once('(')?.1.rsplit_once(')')?.0.to_string();
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    // After the name: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    Some((name, ticks as f64 / per_sec as f64))
}

/// CPU seconds of process `pid` so far (all its threads; 0 once it is gone).
pub fn process_cpu(pid: u32) -> f64 {
    stat_cpu(&format!("/proc/{pid}/stat")).map_or(0.0, |(_, s)| s)
}

/// CPU seconds of this process so far (all its threads).
pub fn self_cpu() -> f64 {
    stat_cpu("/proc/self/stat").map_or(0.0, |(_, s)| s)
}

/// The number in environment variable `name`, or `default` if it is not set.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|_| anyhow!("{name}={text:?} is not a number")),
        Err(_) => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_read_from_proc() {
        let (name, secs) = stat_cpu("/proc/self/stat").expect("readable");
        assert!(!name.is_empty());
        assert!(secs >= 0.0);
        assert_eq!(process_cpu(u32::MAX), 0.0, "no such process");
    }

    #[test]
    fn knobs_parse_or_say_which_is_wrong() {
        assert_eq!(env_number("CAIRN_LOADTEST_UNSET_KNOB", 7u32).unwrap(), 7);
        std::env::set_var("CAIRN_LOADTEST_BAD_KNOB", "seven");
        let error = env_number("CAIRN_LOADTEST_BAD_KNOB", 7u32).unwrap_err();
        assert!(
            error.to_string().contains("CAIRN_LOADTEST_BAD_KNOB"),
            "{error}"
        );
    }
}
