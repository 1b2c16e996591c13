//! Free space on the data directory's file system, and the reserve the node keeps there.
//!
//! A store that runs out of space mid-write fails for good (sled remembers its first I/O
//! error), so the node stops writing blocks while free space is under a reserve, before the
//! disk is full, as Bitcoin Core does with its 50 MB minimum. The reserve leaves room for
//! what is already on its way: the batch being written, the mempool journal, the logs.
//!
//! Should the disk fill all the same (another program, or `--min-free-disk 0`), the store
//! cannot even be reopened to serve what is durable: sled needs a little space to open. The
//! [`EmergencyBallast`], a file of a few MiB kept in the data directory, is deleted at that
//! moment to make that room, and written again before the node resumes writing (the
//! "emergency ballast" of CockroachDB).
use std::io::Write;
use std::path::{Path, PathBuf};

/// The default reserve: writing blocks stops below this much free space.
pub const DEFAULT_RESERVE_BYTES: u64 = 64 * 1024 * 1024;

/// What a check of the data directory's file system found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskSpace {
    /// Bytes free for an unprivileged writer.
    pub available: u64,
    /// The reserve the node keeps.
    pub reserve: u64,
}

impl DiskSpace {
    /// Less than the reserve is free.
    pub fn is_low(&self) -> bool {
        self.available < self.reserve
    }
}

/// Checks the free space where the node keeps its data.
#[derive(Clone, Debug)]
pub struct DiskGuard {
    dir: PathBuf,
    reserve: u64,
}

impl DiskGuard {
    /// A guard of `dir`'s file system keeping `reserve` bytes free (0: write until a write
    /// fails).
    pub fn new(dir: &Path, reserve: u64) -> DiskGuard {
        DiskGuard {
            dir: dir.to_path_buf(),
            reserve,
        }
    }

    /// Free space now, against the reserve. A file system that cannot be asked counts as
    /// having enough: the writes themselves then report what is wrong.
    pub fn check(&self) -> DiskSpace {
        let available = available_bytes(&self.dir).unwrap_or_else(|e| {
            tracing::debug!("cannot read the free space of {}: {e}", self.dir.display());
            u64::MAX
        });
        DiskSpace {
            available,
            reserve: self.reserve,
        }
    }
}

/// The ballast's file name in the data directory.
pub const BALLAST_FILE: &str = "emergency.ballast";
/// The ballast's size.
pub const BALLAST_BYTES: u64 = 8 * 1024 * 1024;

/// Space held in reserve for the store to reopen after the disk filled up.
#[derive(Debug)]
pub struct EmergencyBallast {
    path: PathBuf,
    bytes: u64,
}

impl EmergencyBallast {
    /// The ballast of `data_dir` (not yet written: see [`EmergencyBallast::ensure`]).
    pub fn new(data_dir: &Path) -> EmergencyBallast {
        EmergencyBallast {
            path: data_dir.join(BALLAST_FILE),
            bytes: BALLAST_BYTES,
        }
    }

    /// Its size in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether the file is there in full.
    pub fn is_present(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| m.len() == self.bytes)
    }

    /// Writes the file (real blocks, not a sparse file) unless it is already there.
    pub fn ensure(&self) -> std::io::Result<()> {
        if self.is_present() {
            return Ok(());
        }
        let written = (|| {
            let mut file = std::fs::File::create(&self.path)?;
            let chunk = vec![0u8; 64 * 1024];
            let mut left = self.bytes;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                file.write_all(&chunk[..n])?;
                left -= n as u64;
            }
            file.sync_all()
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&self.path);
        }
        written
    }

    /// Deletes the file, freeing its space; returns whether there was one.
    pub fn release(&self) -> bool {
        std::fs::remove_file(&self.path).is_ok()
    }
}

/// Bytes an unprivileged process may still write on `path`'s file system.
pub fn available_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("path holds a NUL byte"))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` is written by the call
    // before it is read (only when the call succeeds).
    let stat = unsafe {
        if libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        stat.assume_init()
    };
    // Both are u64 on Linux, narrower elsewhere.
    #[allow(clippy::useless_conversion)]
    let (blocks, block_size) = (u64::from(stat.f_bavail), u64::from(stat.f_frsize));
    Ok(blocks.saturating_mul(block_size))
}

/// `1536` → `1.5 KiB`: sizes for people.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_temp_directory_has_free_space_and_a_huge_reserve_is_low() {
        let dir = std::env::temp_dir();
        assert!(available_bytes(&dir).expect("statvfs") > 0);
        assert!(!DiskGuard::new(&dir, 0).check().is_low());
        assert!(DiskGuard::new(&dir, u64::MAX).check().is_low());
    }

    #[test]
    fn the_ballast_takes_real_space_and_gives_it_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ballast = EmergencyBallast::new(dir.path());
        assert!(!ballast.is_present());
        ballast.ensure().expect("written");
        assert!(ballast.is_present());
        let len = std::fs::metadata(dir.path().join(BALLAST_FILE))
            .unwrap()
            .len();
        assert_eq!(len, BALLAST_BYTES);
        ballast.ensure().expect("already there");
        assert!(ballast.release());
        assert!(!ballast.is_present());
        assert!(!ballast.release());
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(64 * 1024 * 1024), "64.0 MiB");
    }
}
