//! Whether the node may write blocks, what it does next about its store, and what it tells
//! the operator when it may not write. Decisions only: the driver reads the disk, reopens
//! the store and writes the ballast as [`StoreHealth::next_step`] says.
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
use crate::core::storage::StorageFailure;
use crate::core::views::HealthView;
use crate::node::disk::{human_bytes, DiskSpace};

/// Free space below which a failed store is not even tried (a write would fail again).
const RETRY_MIN_FREE: u64 = 1024 * 1024;

/// The store's state, as the driver tracks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreHealth {
    /// Writes go through.
    Writable,
    /// Free space fell under the reserve; nothing failed.
    LowDisk {
        /// Since when (Unix seconds).
        since: u64,
    },
    /// A write or flush failed: the store was closed and reopened from disk.
    Failed {
        /// What failed.
        error: StorageFailure,
        /// Since when (Unix seconds).
        since: u64,
    },
}

/// What the driver does next about its store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthStep {
    /// Nothing.
    Stay,
    /// Stop writing blocks: free space is under the reserve.
    PauseLowDisk,
    /// Write blocks again.
    Resume,
    /// Reopen the closed store from disk.
    Reopen,
    /// Write the ballast back, then flush a test record: resume if it goes through.
    ProbeWrites,
}

/// What a failed store's next try needs to know.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// The store is closed (its reopen failed so far).
    pub store_closed: bool,
    /// Enough time passed since the last try.
    pub due: bool,
    /// Bytes the emergency ballast needs written back (0 if it is in place).
    pub ballast_spent: u64,
}

impl StoreHealth {
    /// Whether blocks may be written.
    pub fn is_writable(&self) -> bool {
        matches!(self, StoreHealth::Writable)
    }

    /// What to do with free space at `space` (`retry` matters only once the store failed).
    pub fn next_step(&self, space: DiskSpace, retry: Retry) -> HealthStep {
        match self {
            StoreHealth::Writable if space.is_low() => HealthStep::PauseLowDisk,
            StoreHealth::LowDisk { .. } if !space.is_low() => HealthStep::Resume,
            StoreHealth::Writable | StoreHealth::LowDisk { .. } => HealthStep::Stay,
            StoreHealth::Failed { .. } if !retry.due => HealthStep::Stay,
            StoreHealth::Failed { .. } if retry.store_closed => HealthStep::Reopen,
            StoreHealth::Failed { .. } => {
                // Room for the reserve, and for the ballast again if it was spent.
                let needed = space.reserve.max(RETRY_MIN_FREE) + retry.ballast_spent;
                if space.available >= needed {
                    HealthStep::ProbeWrites
                } else {
                    HealthStep::Stay
                }
            }
        }
    }

    /// What is wrong, for people, with free space at `space`.
    pub fn problem(&self, space: DiskSpace) -> Option<String> {
        match self {
            StoreHealth::Writable => None,
            StoreHealth::LowDisk { .. } => Some(format!(
                "low disk space: {} free, under the reserve of {} (--min-free-disk); blocks and \
                 transfers wait until space is freed",
                human_bytes(space.available),
                human_bytes(space.reserve)
            )),
            StoreHealth::Failed { error, .. } => Some(format!(
                "the store cannot write ({error}); blocks and transfers wait until a write \
                 succeeds again"
            )),
        }
    }

    /// The view `GET /api/v1/health` serves.
    pub fn view(&self, height: u32, space: DiskSpace) -> HealthView {
        let since = match self {
            StoreHealth::Writable => None,
            StoreHealth::LowDisk { since } | StoreHealth::Failed { since, .. } => Some(*since),
        };
        HealthView {
            status: if self.is_writable() { "ok" } else { "degraded" }.into(),
            writable: self.is_writable(),
            problem: self.problem(space),
            since,
            height,
            disk_available_bytes: space.available,
            disk_reserve_bytes: space.reserve,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn space(available: u64, reserve: u64) -> DiskSpace {
        DiskSpace { available, reserve }
    }

    #[test]
    fn the_view_says_degraded_and_why() {
        let ok = StoreHealth::Writable.view(7, space(1 << 30, 64 * MIB));
        assert_eq!(
            (ok.status.as_str(), ok.writable, ok.problem),
            ("ok", true, None)
        );
        let low = StoreHealth::LowDisk { since: 5 }.view(7, space(MIB, 64 * MIB));
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
            error: StorageFailure::io("No space left on device"),
            since: 9,
        };
        assert!(failed
            .problem(space(0, 0))
            .expect("a problem")
            .contains("No space left"));
    }

    #[test]
    fn the_reserve_pauses_and_resumes_and_a_failed_store_is_retried_only_with_room() {
        let idle = Retry {
            store_closed: false,
            due: true,
            ballast_spent: 0,
        };
        let low = space(8 * MIB, 16 * MIB);
        let enough = space(32 * MIB, 16 * MIB);
        assert_eq!(
            StoreHealth::Writable.next_step(low, idle),
            HealthStep::PauseLowDisk
        );
        assert_eq!(
            StoreHealth::Writable.next_step(enough, idle),
            HealthStep::Stay
        );
        let paused = StoreHealth::LowDisk { since: 1 };
        assert_eq!(paused.next_step(low, idle), HealthStep::Stay);
        assert_eq!(paused.next_step(enough, idle), HealthStep::Resume);

        let failed = StoreHealth::Failed {
            error: StorageFailure::io("full"),
            since: 1,
        };
        let not_due = Retry { due: false, ..idle };
        assert_eq!(failed.next_step(enough, not_due), HealthStep::Stay);
        let closed = Retry {
            store_closed: true,
            ..idle
        };
        assert_eq!(failed.next_step(space(0, 0), closed), HealthStep::Reopen);
        assert_eq!(failed.next_step(enough, idle), HealthStep::ProbeWrites);
        // Under the reserve, or without room to write the spent ballast back: wait.
        assert_eq!(failed.next_step(low, idle), HealthStep::Stay);
        let ballast_spent = Retry {
            ballast_spent: 20 * MIB,
            ..idle
        };
        assert_eq!(failed.next_step(enough, ballast_spent), HealthStep::Stay);
        // With no reserve, at least a little room.
        assert_eq!(failed.next_step(space(MIB / 2, 0), idle), HealthStep::Stay);
        assert_eq!(
            failed.next_step(space(2 * MIB, 0), idle),
            HealthStep::ProbeWrites
        );
    }
}
