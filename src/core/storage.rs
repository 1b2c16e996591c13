//! What the logic knows of a storage failure: its kind, so a caller can act on it (retry
//! once the disk is fixed, wait for a reopen, or repair the store), and the store's own
//! words for people. The stores (sled in the node, memory in the simulation) produce these;
//! core never does I/O itself.
use std::fmt;

/// A storage failure under the chain or state logic (never a verdict on a block).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct StorageFailure {
    /// What kind of failure.
    pub kind: StorageKind,
    /// The store's description.
    pub detail: String,
}

/// The kinds of [`StorageFailure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    /// Reading or writing failed (the disk, the file system); may succeed later.
    Io,
    /// The store is closed after an earlier failure until it reopens.
    Closed,
    /// What is stored contradicts itself or does not decode: the store needs repair.
    Corrupt,
}

impl fmt::Display for StorageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StorageKind::Io => "I/O failure",
            StorageKind::Closed => "store closed",
            StorageKind::Corrupt => "store damaged",
        })
    }
}

impl StorageFailure {
    /// A failure of kind `kind`.
    pub fn new(kind: StorageKind, detail: impl Into<String>) -> StorageFailure {
        StorageFailure {
            kind,
            detail: detail.into(),
        }
    }

    /// Reading or writing failed.
    pub fn io(detail: impl Into<String>) -> StorageFailure {
        StorageFailure::new(StorageKind::Io, detail)
    }

    /// The store contradicts itself.
    pub fn corrupt(detail: impl Into<String>) -> StorageFailure {
        StorageFailure::new(StorageKind::Corrupt, detail)
    }
}
