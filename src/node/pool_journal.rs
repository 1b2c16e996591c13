//! The mempool's write-ahead journal: `<data-dir>/mempool.journal`, which owns making each
//! accepted transfer survive kill -9 and power loss, on top of the snapshot `mempool.bin`
//! ([`super::pool_file`]).
//!
//! Accepting transfers is a group commit: [`PoolJournal::append`] queues each transfer's
//! record in memory, and one [`PoolJournal::commit`] writes every queued record with one
//! write and one `fdatasync`; only after it returns `Ok` are those transfers accepted.
//! [`PoolJournal::compact`] now and then saves the whole mempool as the snapshot and empties
//! the journal. At start, [`PoolJournal::open`] returns the snapshot's transfers followed by
//! the journal's; nothing in either is trusted (every transfer goes through the mempool's
//! full admission again, which also drops duplicates).
//!
//! ```text
//!   file   = HEADER record*          HEADER = b"CAIRNJ1\n"
//!   record = len u32 LE | crc32(payload) u32 LE | payload (len bytes, 1..=MAX_RECORD_BYTES)
//!   payload = codec::encode(&Transfer)
//! ```
//!
//! A crash mid-commit leaves a torn tail: at open, the file is cut back to the end of its
//! last whole record whose checksum matches and whose payload decodes, with a warning, never
//! an error. A file that does not start with the header (not a journal) is moved aside to
//! `mempool.journal.corrupt` and a new journal started, with a warning.
use super::pool_file::{self, io, FileIoError, PoolFileError};
use crate::core::mempool::journal_records::{
    decode_records, encode_record, RecordError, TailProblem,
};
use crate::core::primitives::Transfer;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The journal's file name in the data directory.
pub const JOURNAL_FILE: &str = "mempool.journal";

/// Where a file that is not a journal is moved to, in the data directory.
pub const JOURNAL_CORRUPT_FILE: &str = "mempool.journal.corrupt";

pub use crate::core::mempool::journal_records::{HEADER, MAX_RECORD_BYTES};

const HEADER_LEN: u64 = HEADER.len() as u64;
const LOG_TARGET: &str = "cairn::mempool";

/// A failure of the journal or its snapshot.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file system refused.
    #[error(transparent)]
    Io(#[from] FileIoError),
    /// Reading or writing the snapshot `mempool.bin` failed.
    #[error(transparent)]
    Snapshot(#[from] PoolFileError),
    /// A transfer cannot be a record.
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// The open journal: the file, its committed length, and the records queued for the next
/// commit. Dropping it discards the queued records (they were never committed).
#[derive(Debug)]
pub struct PoolJournal {
    data_dir: PathBuf,
    path: PathBuf,
    file: File,
    /// The file's length up to its last committed record; the next commit writes here.
    committed_len: u64,
    /// The file may hold bytes past `committed_len` (a failed write that could not be cut
    /// back, or a compaction whose truncation failed): cut them before the next write.
    dirty_tail: bool,
    /// Encoded records awaiting commit.
    queued: Vec<u8>,
    queued_records: usize,
    /// Why a transfer appended since the last commit could not be made a record: the next
    /// commit fails with it (and so refuses its whole group).
    unrecordable: Option<JournalError>,
}

impl PoolJournal {
    /// Opens (creating) the journal in `data_dir` and returns it with every transfer it
    /// holds, in append order: first those of the snapshot `mempool.bin`
    /// ([`pool_file::load`]), then the journal's records.
    ///
    /// A torn or corrupt tail (a crash mid-commit) is cut off at the last whole record, with
    /// a warning saying how many bytes were dropped; a corrupt snapshot or a file that is not
    /// a journal is moved aside, with a warning. Only I/O failures are errors.
    pub fn open(data_dir: &Path) -> Result<(PoolJournal, Vec<Transfer>), JournalError> {
        let mut transfers = match pool_file::load(data_dir) {
            Ok(transfers) => transfers,
            Err(e @ PoolFileError::Corrupt { .. }) => {
                tracing::warn!(target: LOG_TARGET, "{e}; starting from the journal alone");
                Vec::new()
            }
            Err(e) => return Err(e.into()),
        };
        let path = data_dir.join(JOURNAL_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io("open", &path))?;
        let len = file.metadata().map_err(io("read", &path))?.len();
        // At most the header's 8 bytes: a shorter file may be a torn header.
        let mut head = vec![0; len.min(HEADER_LEN) as usize];
        file.read_exact(&mut head).map_err(io("read", &path))?;
        let committed_len = if head == HEADER {
            let replay = replay(&file, len).map_err(io("read", &path))?;
            if let Some(problem) = replay.problem {
                let dropped = len - replay.valid_len;
                tracing::warn!(
                    target: LOG_TARGET,
                    "{}: cut a torn or corrupt tail of {dropped} bytes at byte {} ({problem}); \
                     kept {} records",
                    path.display(),
                    replay.valid_len,
                    replay.transfers.len()
                );
                file.set_len(replay.valid_len)
                    .and_then(|()| file.sync_data())
                    .map_err(io("cut the torn tail of", &path))?;
            }
            transfers.extend(replay.transfers);
            replay.valid_len
        } else {
            if !HEADER.starts_with(&head) {
                // Not a journal (a torn header is only ever a prefix of it, from a crash
                // while creating the file): keep it for whoever wants to look.
                drop(file);
                let moved_to = data_dir.join(JOURNAL_CORRUPT_FILE);
                std::fs::rename(&path, &moved_to).map_err(io("move aside", &path))?;
                tracing::warn!(
                    target: LOG_TARGET,
                    "{} is not a mempool journal; moved aside to {} and starting a new one",
                    path.display(),
                    moved_to.display()
                );
                file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&path)
                    .map_err(io("create", &path))?;
            }
            start(&mut file, data_dir).map_err(io("create", &path))?;
            HEADER_LEN
        };
        let journal = PoolJournal {
            data_dir: data_dir.to_path_buf(),
            path,
            file,
            committed_len,
            dirty_tail: false,
            queued: Vec::new(),
            queued_records: 0,
            unrecordable: None,
        };
        Ok((journal, transfers))
    }

    /// Queues `transfer`'s record for the next [`commit`](Self::commit); no I/O.
    ///
    /// A transfer that cannot be a record (its encoding is over [`MAX_RECORD_BYTES`]; no
    /// valid transfer's is) makes the next commit fail, refusing its whole group, rather
    /// than have it reported durable.
    pub fn append(&mut self, transfer: &Transfer) {
        match encode_record(transfer, &mut self.queued) {
            Ok(()) => self.queued_records += 1,
            Err(e) => {
                self.unrecordable.get_or_insert(e.into());
            }
        }
    }

    /// True if appended records await [`commit`](Self::commit).
    pub fn has_uncommitted(&self) -> bool {
        self.queued_records > 0 || self.unrecordable.is_some()
    }

    /// Writes every queued record with one write and one `sync_data`: the group commit
    /// point. Returns how many records were made durable; after `Ok` they survive power loss.
    ///
    /// On error the queued records are dropped and the caller must treat their transfers as
    /// not accepted (also when one of them could not be made a record, see
    /// [`append`](Self::append)); the file is cut back to its last committed length (or, if
    /// even that fails, before the next write), so it stays a valid journal. After a failed
    /// `fdatasync` some of those records may still reach the disk and come back at the next
    /// start: they are valid signed transfers and go through admission like any other.
    pub fn commit(&mut self) -> Result<usize, JournalError> {
        if let Some(error) = self.unrecordable.take() {
            self.queued.clear();
            self.queued_records = 0;
            return Err(error);
        }
        if self.queued.is_empty() {
            return Ok(0);
        }
        let records = self.queued_records;
        let written = self.write_queued();
        let bytes = self.queued.len() as u64;
        self.queued.clear();
        self.queued_records = 0;
        match written {
            Ok(()) => {
                self.committed_len += bytes;
                Ok(records)
            }
            Err(source) => {
                self.dirty_tail = true;
                self.cut_dirty_tail();
                Err(io("commit to", &self.path)(source).into())
            }
        }
    }

    /// Bytes in the journal file up to its last committed record, header included (so
    /// [`HEADER`]'s length when it holds no records).
    pub fn len_bytes(&self) -> u64 {
        self.committed_len
    }

    /// Replaces snapshot and journal with `transfers`: saves them as the snapshot
    /// `mempool.bin` durably ([`pool_file::save`]), then empties the journal and syncs it.
    /// A crash at any point leaves snapshot and journal holding at least every committed
    /// transfer that is in `transfers` (perhaps twice: admission drops duplicates). Queued
    /// records stay queued for the next commit.
    ///
    /// If saving the snapshot fails, nothing changed. If emptying the journal fails after
    /// the snapshot was saved, the error is returned and the next commit empties it first.
    pub fn compact(&mut self, transfers: &[Transfer]) -> Result<(), JournalError> {
        pool_file::save(&self.data_dir, transfers)?;
        // From here on the snapshot holds everything: the journal's records are redundant.
        self.committed_len = HEADER_LEN;
        self.dirty_tail = true;
        self.truncate_to_committed()
            .map_err(io("empty", &self.path))?;
        self.dirty_tail = false;
        Ok(())
    }

    /// Writes the queued records at the committed length and syncs them.
    fn write_queued(&mut self) -> std::io::Result<()> {
        if self.dirty_tail {
            self.truncate_to_committed()?;
            self.dirty_tail = false;
        }
        self.file.seek(SeekFrom::Start(self.committed_len))?;
        self.file.write_all(&self.queued)?;
        self.file.sync_data()
    }

    /// Cuts the file back to the committed length after a failed write, or leaves that to
    /// the next write if this fails too.
    fn cut_dirty_tail(&mut self) {
        match self.truncate_to_committed() {
            Ok(()) => self.dirty_tail = false,
            Err(e) => tracing::error!(
                target: LOG_TARGET,
                "cannot cut {} back to {} bytes after a failed commit: {e}; will retry",
                self.path.display(),
                self.committed_len
            ),
        }
    }

    fn truncate_to_committed(&mut self) -> std::io::Result<()> {
        self.file.set_len(self.committed_len)?;
        self.file.sync_data()
    }
}

/// What replaying a journal's records found.
struct Replay {
    transfers: Vec<Transfer>,
    /// The end of the last whole record (at least the header's length).
    valid_len: u64,
    /// Why replay stopped before the end of the file, if it did.
    problem: Option<TailProblem>,
}

/// Reads the records of `file` (`len` bytes, positioned just after the header) up to the
/// first one that is not whole ([`decode_records`]). Errors are I/O failures only.
fn replay(mut file: &File, len: u64) -> std::io::Result<Replay> {
    let mut bytes = Vec::with_capacity(len.saturating_sub(HEADER_LEN) as usize);
    file.read_to_end(&mut bytes)?;
    let records = decode_records(&bytes);
    Ok(Replay {
        transfers: records.transfers,
        valid_len: HEADER_LEN + records.valid_len as u64,
        problem: records.problem,
    })
}

/// Makes `file` a journal with no records, durably (the directory too, as the file may be
/// new).
fn start(file: &mut File, data_dir: &Path) -> std::io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(HEADER)?;
    file.sync_all()?;
    pool_file::sync_directory(data_dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::mempool::journal_records::PREFIX_LEN;
    use crate::core::primitives::codec;
    use crate::core::testkit::sample_transfer;

    fn transfer(nonce: u64) -> Transfer {
        sample_transfer(nonce, b"journaled".to_vec())
    }

    fn transfers(nonces: std::ops::Range<u64>) -> Vec<Transfer> {
        nonces.map(transfer).collect()
    }

    /// Opens the journal in `dir`, appends and commits `transfers`, and drops it.
    fn commit_all(dir: &Path, transfers: &[Transfer]) {
        let (mut journal, _) = PoolJournal::open(dir).unwrap();
        for transfer in transfers {
            journal.append(transfer);
        }
        assert_eq!(journal.commit().unwrap(), transfers.len());
    }

    fn reopen(dir: &Path) -> Vec<Transfer> {
        PoolJournal::open(dir).unwrap().1
    }

    fn journal_path(dir: &Path) -> PathBuf {
        dir.join(JOURNAL_FILE)
    }

    fn file_len(dir: &Path) -> u64 {
        std::fs::metadata(journal_path(dir)).unwrap().len()
    }

    /// The length of one record of `transfer`.
    fn record_len(transfer: &Transfer) -> u64 {
        (PREFIX_LEN + codec::encode(transfer).unwrap().len()) as u64
    }

    fn append_bytes(dir: &Path, bytes: &[u8]) {
        let mut file = OpenOptions::new()
            .append(true)
            .open(journal_path(dir))
            .unwrap();
        file.write_all(bytes).unwrap();
    }

    /// After a damaged tail was cut, the journal takes new records after the kept ones.
    fn assert_usable_after_cut(dir: &Path, kept: &[Transfer]) {
        let (mut journal, replayed) = PoolJournal::open(dir).unwrap();
        assert_eq!(replayed, kept);
        let expected_len = HEADER_LEN + kept.iter().map(record_len).sum::<u64>();
        assert_eq!(journal.len_bytes(), expected_len);
        assert_eq!(file_len(dir), expected_len);
        let new = transfer(100);
        journal.append(&new);
        assert_eq!(journal.commit().unwrap(), 1);
        drop(journal);
        let mut expected = kept.to_vec();
        expected.push(new);
        assert_eq!(reopen(dir), expected);
    }

    #[test]
    fn records_round_trip_across_reopens_in_append_order() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, replayed) = PoolJournal::open(dir.path()).unwrap();
        assert!(replayed.is_empty());
        assert_eq!(journal.len_bytes(), HEADER_LEN);
        assert!(!journal.has_uncommitted());
        assert_eq!(journal.commit().unwrap(), 0);

        let first = transfers(0..3);
        for transfer in &first {
            journal.append(transfer);
        }
        assert!(journal.has_uncommitted());
        assert_eq!(journal.commit().unwrap(), 3);
        assert!(!journal.has_uncommitted());
        assert_eq!(journal.len_bytes(), file_len(dir.path()));
        drop(journal);
        assert_eq!(reopen(dir.path()), first);

        let second = transfers(3..5);
        commit_all(dir.path(), &second);
        let all: Vec<Transfer> = first.into_iter().chain(second).collect();
        assert_eq!(reopen(dir.path()), all);
        assert!(std::fs::read(journal_path(dir.path()))
            .unwrap()
            .starts_with(HEADER));
    }

    #[test]
    fn the_snapshots_transfers_come_before_the_journals() {
        let dir = tempfile::tempdir().unwrap();
        pool_file::save(dir.path(), &transfers(0..2)).unwrap();
        commit_all(dir.path(), &transfers(2..4));
        assert_eq!(reopen(dir.path()), transfers(0..4));
    }

    #[test]
    fn a_tail_torn_mid_record_is_cut_at_the_last_whole_record() {
        let dir = tempfile::tempdir().unwrap();
        let written = transfers(0..3);
        commit_all(dir.path(), &written);
        // Every cut inside the last record, from its first byte to its last but one.
        let whole = file_len(dir.path());
        let last = record_len(&written[2]);
        for cut in [1, 4, 8, 9, last - 1] {
            let file = OpenOptions::new()
                .write(true)
                .open(journal_path(dir.path()))
                .unwrap();
            file.set_len(whole - last + cut).unwrap();
            drop(file);
            assert_eq!(reopen(dir.path()), &written[..2], "cut after {cut} bytes");
            assert_eq!(file_len(dir.path()), whole - last);
            // Put the whole record back for the next cut.
            commit_all(dir.path(), &written[2..]);
        }
        let file = OpenOptions::new()
            .write(true)
            .open(journal_path(dir.path()))
            .unwrap();
        file.set_len(whole - 3).unwrap();
        drop(file);
        assert_usable_after_cut(dir.path(), &written[..2]);
    }

    #[test]
    fn garbage_after_the_last_record_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let written = transfers(0..2);
        commit_all(dir.path(), &written);
        // A plausible length whose payload does not match its checksum, then zeros as a
        // file system may leave after power loss.
        let mut garbage = 20u32.to_le_bytes().to_vec();
        garbage.extend_from_slice(b"\x01\x02\x03\x04this is not a record");
        append_bytes(dir.path(), &garbage);
        assert_usable_after_cut(dir.path(), &written);

        append_bytes(dir.path(), &[0; 4096]);
        assert_eq!(reopen(dir.path()).len(), 3);
        assert_eq!(
            file_len(dir.path()),
            HEADER_LEN + 2 * record_len(&written[0]) + record_len(&transfer(100))
        );
    }

    #[test]
    fn a_flipped_byte_in_a_payload_cuts_replay_at_that_record() {
        let dir = tempfile::tempdir().unwrap();
        let written = transfers(0..4);
        commit_all(dir.path(), &written);
        let mut bytes = std::fs::read(journal_path(dir.path())).unwrap();
        // The middle of the second record's payload.
        let second = HEADER_LEN + record_len(&written[0]);
        let at = (second + PREFIX_LEN as u64 + 20) as usize;
        bytes[at] ^= 0x40;
        std::fs::write(journal_path(dir.path()), &bytes).unwrap();
        assert_usable_after_cut(dir.path(), &written[..1]);
    }

    #[test]
    fn an_oversized_length_is_a_torn_tail_not_an_allocation() {
        let dir = tempfile::tempdir().unwrap();
        let written = transfers(0..2);
        commit_all(dir.path(), &written);
        for length in [u32::MAX, MAX_RECORD_BYTES as u32 + 1] {
            let mut record = length.to_le_bytes().to_vec();
            record.extend_from_slice(&crc32fast::hash(b"").to_le_bytes());
            record.extend_from_slice(&[0xab; 64]);
            append_bytes(dir.path(), &record);
            assert_eq!(reopen(dir.path()), written);
            assert_eq!(
                file_len(dir.path()),
                HEADER_LEN + 2 * record_len(&written[0])
            );
        }
        assert_usable_after_cut(dir.path(), &written);
    }

    #[test]
    fn uncommitted_records_are_not_in_the_file_after_drop() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = PoolJournal::open(dir.path()).unwrap();
        journal.append(&transfer(0));
        journal.commit().unwrap();
        let committed = journal.len_bytes();
        journal.append(&transfer(1));
        journal.append(&transfer(2));
        assert!(journal.has_uncommitted());
        assert_eq!(file_len(dir.path()), committed);
        drop(journal);
        assert_eq!(file_len(dir.path()), committed);
        assert_eq!(reopen(dir.path()), vec![transfer(0)]);
    }

    #[test]
    fn compaction_leaves_exactly_the_given_transfers_and_an_empty_journal() {
        let dir = tempfile::tempdir().unwrap();
        pool_file::save(dir.path(), &transfers(0..2)).unwrap();
        let (mut journal, replayed) = PoolJournal::open(dir.path()).unwrap();
        assert_eq!(replayed, transfers(0..2));
        for transfer in &transfers(2..5) {
            journal.append(transfer);
        }
        journal.commit().unwrap();
        // Queued but not committed: compaction leaves it queued.
        journal.append(&transfer(9));

        let kept = vec![transfer(1), transfer(3), transfer(7)];
        journal.compact(&kept).unwrap();
        assert_eq!(journal.len_bytes(), HEADER_LEN);
        assert_eq!(file_len(dir.path()), HEADER_LEN);
        assert_eq!(pool_file::load(dir.path()).unwrap(), kept);
        assert!(!dir.path().join("mempool.bin.tmp").exists());
        assert!(journal.has_uncommitted());
        drop(journal);
        assert_eq!(reopen(dir.path()), kept);

        // The queued record, committed after compaction, follows the snapshot's.
        let (mut journal, _) = PoolJournal::open(dir.path()).unwrap();
        journal.append(&transfer(9));
        journal.commit().unwrap();
        journal.compact(&kept).unwrap();
        journal.append(&transfer(8));
        assert_eq!(journal.commit().unwrap(), 1);
        drop(journal);
        let mut expected = kept.clone();
        expected.push(transfer(8));
        assert_eq!(reopen(dir.path()), expected);
    }

    #[test]
    fn a_file_that_is_not_a_journal_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(journal_path(dir.path()), b"something else entirely").unwrap();
        let (mut journal, replayed) = PoolJournal::open(dir.path()).unwrap();
        assert!(replayed.is_empty());
        assert_eq!(
            std::fs::read(dir.path().join(JOURNAL_CORRUPT_FILE)).unwrap(),
            b"something else entirely"
        );
        journal.append(&transfer(0));
        journal.commit().unwrap();
        drop(journal);
        assert_eq!(reopen(dir.path()), vec![transfer(0)]);
    }

    #[test]
    fn a_torn_header_starts_a_new_journal_in_place() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(journal_path(dir.path()), &HEADER[..3]).unwrap();
        let (journal, replayed) = PoolJournal::open(dir.path()).unwrap();
        assert!(replayed.is_empty());
        assert_eq!(journal.len_bytes(), HEADER_LEN);
        assert_eq!(std::fs::read(journal_path(dir.path())).unwrap(), HEADER);
        assert!(!dir.path().join(JOURNAL_CORRUPT_FILE).exists());
    }

    #[test]
    fn a_corrupt_snapshot_is_moved_aside_and_the_journal_still_replays() {
        let dir = tempfile::tempdir().unwrap();
        commit_all(dir.path(), &transfers(0..2));
        std::fs::write(dir.path().join(pool_file::MEMPOOL_FILE), b"\xff\xffjunk").unwrap();
        assert_eq!(reopen(dir.path()), transfers(0..2));
        assert!(dir.path().join("mempool.bin.corrupt").exists());
    }

    #[test]
    fn an_oversized_transfer_fails_its_groups_commit_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = PoolJournal::open(dir.path()).unwrap();
        journal.append(&transfer(0));
        journal.append(&sample_transfer(1, vec![b'x'; MAX_RECORD_BYTES]));
        journal.append(&transfer(2));
        assert!(journal.has_uncommitted());
        let error = journal.commit().unwrap_err();
        assert!(
            matches!(error, JournalError::Record(RecordError::TooLarge { .. })),
            "{error}"
        );
        assert!(!journal.has_uncommitted());
        assert_eq!(journal.len_bytes(), HEADER_LEN);
        assert_eq!(file_len(dir.path()), HEADER_LEN);
        // The next group commits as usual.
        journal.append(&transfer(3));
        assert_eq!(journal.commit().unwrap(), 1);
        drop(journal);
        assert_eq!(reopen(dir.path()), vec![transfer(3)]);
    }
}
