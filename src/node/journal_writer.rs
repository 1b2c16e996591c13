//! The mempool journal's writer thread: group commit off the driver's thread.
//!
//! The driver admits a transfer and queues its record with a ticket (what to do once it is
//! durable: answer the client, relay it), and hands what it queued to this thread once per
//! turn of its loop. The thread takes whatever records have queued up while its last sync
//! ran, writes them with one write and one `fdatasync`
//! ([`PoolJournal::commit`]), then hands the tickets to the `on_commit` callback with the
//! outcome. So the driver never waits for the disk, and the more submissions arrive during a
//! sync, the more the next one carries.
//!
//! ```text
//!   driver ── Append([(transfer, ticket)]) ┐      ┌── commit (1 write + 1 fdatasync)
//!   driver ── Compact(pool), Barrier ────┼─► queue ┤
//!   driver ── Stop ──────────────────────┘        └── on_commit(Ok | Err, tickets)
//! ```
//! Commands are carried out in order: a compaction comes after every record queued before it
//! is committed, so no transfer is ever in neither the snapshot nor the journal.
use crate::core::primitives::Transfer;
use crate::node::pool_journal::PoolJournal;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;

/// Most batches in one commit (the queue is drained up to this many at a time).
const MAX_BATCHES: usize = 256;

/// Records with their tickets, handed over together (one wake-up of the thread each).
type Batch<T> = Vec<(Transfer, Option<T>)>;

enum Command<T> {
    Append(Batch<T>),
    Compact(Vec<Transfer>),
    Barrier(Sender<()>),
    Stop,
}

/// What `on_commit` is told: the tickets of one group, and whether their records are
/// durable (`Err` carries the reason they are not).
pub type Committed<T> = (Result<(), String>, Vec<T>);

/// The handle to the writer thread.
pub struct JournalWriter<T: Send + 'static> {
    commands: Sender<Command<T>>,
    thread: Option<JoinHandle<()>>,
    /// Appended since the last [`JournalWriter::send`].
    batch: Batch<T>,
}

impl<T: Send + 'static> JournalWriter<T> {
    /// Starts the thread over `journal`; `on_commit` runs on it after each commit.
    pub fn spawn(
        journal: PoolJournal,
        on_commit: impl FnMut(Committed<T>) + Send + 'static,
    ) -> std::io::Result<JournalWriter<T>> {
        let (commands, queue) = channel();
        let thread = super::threads::spawn("mempool-journal", move || {
            write_loop(journal, queue, on_commit)
        })?;
        Ok(JournalWriter {
            commands,
            thread: Some(thread),
            batch: Vec::new(),
        })
    }

    /// Queues `transfer`'s record; `ticket` (if any) goes to `on_commit` once it is committed
    /// or has failed. The record waits here until [`JournalWriter::send`] (or a compaction,
    /// a barrier, the stop), so that a burst of admissions wakes the thread once.
    pub fn append(&mut self, transfer: Transfer, ticket: Option<T>) {
        self.batch.push((transfer, ticket));
    }

    /// Hands the records appended since the last call to the thread.
    pub fn send(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        if self.commands.send(Command::Append(batch)).is_err() {
            tracing::error!(target: "cairn::mempool", "the mempool journal's writer has stopped");
        }
    }

    /// Replaces snapshot and journal with `transfers`, after every record queued so far.
    pub fn compact(&mut self, transfers: Vec<Transfer>) {
        self.send();
        let _ = self.commands.send(Command::Compact(transfers));
    }

    /// Waits until every record queued so far is committed (or has failed) and its tickets
    /// handled.
    pub fn barrier(&mut self) {
        self.send();
        let (done, wait) = channel();
        if self.commands.send(Command::Barrier(done)).is_ok() {
            let _ = wait.recv();
        }
    }

    /// Commits what is queued, answers every ticket, and stops the thread (once; later calls
    /// do nothing).
    pub fn stop(&mut self) {
        self.send();
        let _ = self.commands.send(Command::Stop);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!(target: "cairn::mempool", "the mempool journal's writer panicked");
            }
        }
    }
}

impl<T: Send + 'static> Drop for JournalWriter<T> {
    fn drop(&mut self) {
        self.stop();
    }
}

fn write_loop<T>(
    mut journal: PoolJournal,
    queue: Receiver<Command<T>>,
    mut on_commit: impl FnMut(Committed<T>),
) {
    let mut next = queue.recv().ok();
    while let Some(first) = next.take() {
        let mut tickets = Vec::new();
        let mut after_commit = None;
        let mut command = Some(first);
        let mut taken = 0;
        while let Some(current) = command.take() {
            match current {
                Command::Append(batch) => {
                    for (transfer, ticket) in batch {
                        journal.append(&transfer);
                        tickets.extend(ticket);
                    }
                    taken += 1;
                }
                other => {
                    after_commit = Some(other);
                    break;
                }
            }
            if taken < MAX_BATCHES {
                command = queue.try_recv().ok();
            }
        }
        if journal.has_uncommitted() || !tickets.is_empty() {
            let outcome = journal.commit().map(|_| ()).map_err(|e| {
                tracing::error!(target: "cairn::mempool", "cannot write the mempool journal: {e}");
                e.to_string()
            });
            on_commit((outcome, tickets));
        }
        match after_commit {
            Some(Command::Stop) => return,
            Some(Command::Compact(transfers)) => {
                if let Err(e) = journal.compact(&transfers) {
                    tracing::error!(target: "cairn::mempool", "cannot compact the mempool journal: {e}");
                }
            }
            Some(Command::Barrier(done)) => {
                let _ = done.send(());
            }
            _ => {}
        }
        next = queue.recv().ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testkit::sample_transfer;
    use std::sync::{Arc, Mutex};

    fn transfers(n: u64) -> Vec<Transfer> {
        (0..n)
            .map(|nonce| sample_transfer(nonce, Vec::new()))
            .collect()
    }

    /// Every ticket comes back once its record is durable, in order, across compactions;
    /// after the stop, the journal and snapshot hold every transfer.
    #[test]
    fn tickets_come_back_committed_and_nothing_is_lost_around_compactions() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (journal, restored) = PoolJournal::open(dir.path()).expect("open");
        assert!(restored.is_empty());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let mut writer =
            JournalWriter::spawn(journal, move |(outcome, tickets): Committed<u64>| {
                assert!(outcome.is_ok());
                record.lock().unwrap().extend(tickets);
            })
            .expect("spawn");
        let all = transfers(50);
        for (i, transfer) in all.iter().enumerate() {
            writer.append(transfer.clone(), Some(i as u64));
            if i % 7 == 0 {
                writer.send();
            }
            if i == 20 {
                writer.compact(all[..=20].to_vec());
            }
        }
        writer.stop();
        assert_eq!(*seen.lock().unwrap(), (0..50).collect::<Vec<u64>>());
        let (_, restored) = PoolJournal::open(dir.path()).expect("reopen");
        let restored: std::collections::BTreeSet<_> = restored.iter().map(Transfer::txid).collect();
        assert!(all.iter().all(|t| restored.contains(&t.txid())));
    }
}
