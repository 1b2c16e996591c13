//! The mempool on disk: its transfers, saved to `<data-dir>/mempool.bin` at shutdown and
//! every minute while it changes, and read back at start, so pending transfers survive a
//! restart (and, up to the last minute, a crash).
//!
//! The file is the codec encoding of `Vec<Transfer>`, written to a temporary file and
//! renamed over the old one, so a crash mid-write leaves the previous file whole. Nothing in
//! it is trusted: at start every transfer goes through the mempool's full admission again,
//! and a file that does not decode is set aside (renamed `mempool.bin.corrupt`), not fatal.
use crate::core::primitives::{codec, Transfer};
use std::path::{Path, PathBuf};

/// The file's name in the data directory.
pub const MEMPOOL_FILE: &str = "mempool.bin";

/// A failure to read or write the mempool file.
#[derive(Debug, thiserror::Error)]
pub enum PoolFileError {
    /// The file system refused.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
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
        Err(source) => {
            return Err(PoolFileError::Io {
                action: "read",
                path,
                source,
            })
        }
    };
    codec::decode(&bytes).or_else(|problem| {
        let moved_to = path.with_extension("bin.corrupt");
        std::fs::rename(&path, &moved_to).map_err(|source| PoolFileError::Io {
            action: "move aside",
            path: path.clone(),
            source,
        })?;
        Err(PoolFileError::Corrupt {
            path,
            problem,
            moved_to,
        })
    })
}

/// Saves `transfers` to `data_dir`, replacing the previous file atomically.
pub fn save(data_dir: &Path, transfers: &[Transfer]) -> Result<(), PoolFileError> {
    let path = data_dir.join(MEMPOOL_FILE);
    let temporary = data_dir.join(format!("{MEMPOOL_FILE}.tmp"));
    let bytes = codec::encode(transfers).map_err(|e| PoolFileError::Io {
        action: "encode",
        path: path.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    std::fs::write(&temporary, bytes).map_err(|source| PoolFileError::Io {
        action: "write",
        path: temporary.clone(),
        source,
    })?;
    std::fs::rename(&temporary, &path).map_err(|source| PoolFileError::Io {
        action: "replace",
        path,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::primitives::transfer::UnsignedTransfer;
    use crate::core::primitives::{Address, Amount, BlockHash};
    use crate::core::testkit::test_keypair;

    fn transfer(nonce: u64) -> Transfer {
        UnsignedTransfer {
            chain_id: 1,
            to: Address([7; 32]),
            amount: Amount::from_units(5),
            fee: Amount::from_units(200),
            nonce,
            memo: b"saved".to_vec(),
        }
        .sign(&test_keypair(1), &BlockHash::ZERO, &[0; 32])
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
