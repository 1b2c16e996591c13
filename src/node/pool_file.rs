//! The mempool's snapshot on disk: its transfers, saved to `<data-dir>/mempool.bin` and read
//! back at start. It is the base of the mempool journal ([`super::pool_journal`]): what makes
//! each accepted transfer survive a crash is the journal's record of it; the snapshot only
//! lets the journal be emptied now and then (compaction) instead of growing for ever.
//!
//! The file is the codec encoding of `Vec<Transfer>`, written to a temporary file that is
//! synced, renamed over the old one, and the directory synced, so a crash or power loss at
//! any point leaves either the previous file or the new one whole, and once [`save`] returns
//! the new one is on disk. Nothing in it is trusted: at start every transfer goes through the
//! mempool's full admission again, and a file that does not decode is set aside (renamed
//! `mempool.bin.corrupt`), not fatal.
use crate::core::primitives::{codec, Transfer};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file's name in the data directory.
pub const MEMPOOL_FILE: &str = "mempool.bin";

/// The file system refused something done to a file of the mempool's (this snapshot, the
/// journal).
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {path}: {source}")]
pub struct FileIoError {
    /// What was being done.
    pub action: &'static str,
    /// Which file.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

/// Wraps an I/O failure of `action` on `path`.
pub fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FileIoError {
    let path = path.to_path_buf();
    move |source| FileIoError {
        action,
        path,
        source,
    }
}

/// A failure to read or write the mempool file.
#[derive(Debug, thiserror::Error)]
pub enum PoolFileError {
    /// The file system refused.
    #[error(transparent)]
    Io(#[from] FileIoError),
    /// The file's bytes are not a list of transfers.
    #[error("{path} is corrupt ({problem}); moved aside to {moved_to}")]
    Corrupt {
        /// Which file.
        path: PathBuf,
        /// The decoder's complaint.
        problem: codec::CodecError,
        /// Where it now is.
        moved_to: PathBuf,
    },
}

/// The saved transfers in `data_dir` (none if there is no file).
pub fn load(data_dir: &Path) -> Result<Vec<Transfer>, PoolFileError> {
    let path = data_dir.join(MEMPOOL_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(io("read", &path)(source).into()),
    };
    codec::decode(&bytes).or_else(|problem| {
        let moved_to = path.with_extension("bin.corrupt");
        std::fs::rename(&path, &moved_to).map_err(io("move aside", &path))?;
        Err(PoolFileError::Corrupt {
            path,
            problem,
            moved_to,
        })
    })
}

/// Saves `transfers` to `data_dir`, replacing the previous file atomically and durably: when
/// this returns `Ok`, the new file survives power loss.
pub fn save(data_dir: &Path, transfers: &[Transfer]) -> Result<(), PoolFileError> {
    let path = data_dir.join(MEMPOOL_FILE);
    let temporary = data_dir.join(format!("{MEMPOOL_FILE}.tmp"));
    let bytes = codec::encode(transfers)
        .map_err(|e| io("encode", &path)(std::io::Error::other(e.to_string())))?;
    let mut file = std::fs::File::create(&temporary).map_err(io("create", &temporary))?;
    file.write_all(&bytes).map_err(io("write", &temporary))?;
    file.sync_all().map_err(io("sync", &temporary))?;
    drop(file);
    std::fs::rename(&temporary, &path).map_err(io("replace", &path))?;
    sync_directory(data_dir).map_err(io("sync", data_dir))?;
    Ok(())
}

/// Makes the creation, renaming and removal of files in `dir` durable (on Unix, by syncing
/// the directory itself; elsewhere there is no portable way and this does nothing).
pub(crate) fn sync_directory(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testkit::sample_transfer;

    fn transfer(nonce: u64) -> Transfer {
        sample_transfer(nonce, b"saved".to_vec())
    }

    #[test]
    fn round_trip_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_empty());
        let transfers = vec![transfer(0), transfer(1)];
        save(dir.path(), &transfers).unwrap();
        assert_eq!(load(dir.path()).unwrap(), transfers);
        save(dir.path(), &[]).unwrap();
        assert!(load(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn corrupt_file_is_moved_aside_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MEMPOOL_FILE), b"\xff\xffnot transfers").unwrap();
        let error = load(dir.path()).unwrap_err();
        assert!(matches!(error, PoolFileError::Corrupt { .. }), "{error}");
        assert!(dir.path().join("mempool.bin.corrupt").exists());
        // The next start finds no file and starts empty.
        assert!(load(dir.path()).unwrap().is_empty());
    }
}
