//! Whether the node may write blocks, and what it tells the operator when it may not.
//!
//! ```text
//!   Writable ── free space < reserve ──► LowDisk ── free space ≥ reserve ──► Writable
//!      │                                                                       ▲
//!      └── a write or flush fails ──► Failed ── store reopened from disk, ─────┘
//!                                              space free, a test write flushed
//! ```
//! While not writable the node takes in no block and mines none (the logic's
//! [`pause_blocks`](crate::core::protocol::machine::Protocol::pause_blocks)), refuses
//! transfers with `503`, and serves reads of what is durable.
use crate::core::views::HealthView;
use crate::node::disk::human_bytes;

/// The store's state, as the driver tracks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreHealth {
    /// Writes go through.
    Writable,
    /// Free space fell under the reserve; nothing failed.
    LowDisk {
        /// Bytes free when last checked.
        available: u64,
        /// Since when (Unix seconds).
        since: u64,
    },
    /// A write or flush failed: the store was closed and reopened from disk.
    Failed {
        /// What failed.
        error: String,
        /// Since when (Unix seconds).
        since: u64,
    },
}

impl StoreHealth {
    /// Whether blocks may be written.
    pub fn is_writable(&self) -> bool {
        matches!(self, StoreHealth::Writable)
    }

    /// What is wrong, for people, given the reserve in bytes.
    pub fn problem(&self, reserve: u64) -> Option<String> {
        match self {
            StoreHealth::Writable => None,
            StoreHealth::LowDisk { available, .. } => Some(format!(
                "low disk space: {} free, under the reserve of {} (--min-free-disk); blocks and \
                 transfers wait until space is freed",
                human_bytes(*available),
                human_bytes(reserve)
            )),
            StoreHealth::Failed { error, .. } => Some(format!(
                "the store cannot write ({error}); blocks and transfers wait until a write \
                 succeeds again"
            )),
        }
    }

    /// The view `GET /api/v1/health` serves.
    pub fn view(&self, height: u32, available: u64, reserve: u64) -> HealthView {
        let since = match self {
            StoreHealth::Writable => None,
            StoreHealth::LowDisk { since, .. } | StoreHealth::Failed { since, .. } => Some(*since),
        };
        HealthView {
            status: if self.is_writable() { "ok" } else { "degraded" }.into(),
            writable: self.is_writable(),
            problem: self.problem(reserve),
            since,
            height,
            disk_available_bytes: available,
            disk_reserve_bytes: reserve,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_says_degraded_and_why() {
        let ok = StoreHealth::Writable.view(7, 1 << 30, 64 << 20);
        assert_eq!(
            (ok.status.as_str(), ok.writable, ok.problem),
            ("ok", true, None)
        );
        let low = StoreHealth::LowDisk {
            available: 1 << 20,
            since: 5,
        }
        .view(7, 1 << 20, 64 << 20);
        assert_eq!(
            (low.status.as_str(), low.writable, low.since),
            ("degraded", false, Some(5))
        );
        let problem = low.problem.expect("a problem");
        assert!(
            problem.contains("1.0 MiB free") && problem.contains("64.0 MiB"),
            "{problem}"
        );
        let failed = StoreHealth::Failed {
            error: "No space left on device".into(),
            since: 9,
        };
        assert!(failed
            .problem(0)
            .expect("a problem")
            .contains("No space left"));
    }
}
