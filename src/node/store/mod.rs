//! Everything persistent, on sled; the only code that names sled.
//!
//! One sled tree holds every record under a one-byte prefix, so that connecting or
//! disconnecting a block is one atomic `apply_batch`: after a crash at any instant the store
//! reopens at the last complete batch, with chain, state and indexes agreeing.
//!
//! ```text
//!   prefix  key                          value
//!   b       block hash                   Block
//!   i       block hash                   BlockIndexEntry
//!   h       height (u32 BE)              block hash on the best chain
//!   t       txid                         TxLocation (best chain up to m/indexed)
//!   x       address, height BE           [(position, HistoryItem)] (best chain up to m/indexed)
//!   g       tree page top hash           the page's SmtNodes (content addressed, never rewritten)
//!   m       name                         metadata: tip, genesis, schema, indexed, snapshot,
//!                                        old_through
//!   p       peer id bytes                BanRecord (bans survive restarts)
//! ```
//!
//! Accounts have no table of their own: the state tree's leaves are the accounts, and an
//! account is read by walking the tree from the tip's state root, a few cached page reads.
//! A table would cost one record per touched account per block, the largest share of the
//! writes after the tree itself (docs/BENCHMARKS.md, "Where sync spends its time").
//!
//! Undo data needs no record either: the tree is content addressed, so the state before a
//! block is the tree under its parent's state root, still stored. Disconnecting a block
//! removes its index records and moves the tip back; no account is rewritten.
//!
//! The transfer index and the address history may lag the tip while sync catches up, behind
//! a marker of their own moved in the same batches as their records (`indexes`).
//!
//! Reopening reads the metadata and the tip: its cost does not grow with the chain.
//!
//! # Invariants
//! - `m/tip` names a block whose entry is in `i` and whose height maps to it in `h`.
//! - Every page of the tree rooted at the tip's state root is in `g`.
//! - The state trees of every block in `h` are in `g` (pages are never deleted), except,
//!   in a store bootstrapped by snapshot, those of the blocks below `m/snapshot`, the block
//!   whose state was fetched: those blocks have an entry in `i` and a height in `h`, and a
//!   body in `b` only up to `m/old_through` (fetched in the background after the snapshot;
//!   the transfer index and address history start at the snapshot's block).
//! - `m/indexed` names a block of `h` at or below the tip; `t` and `x` hold the records of
//!   exactly the blocks of `h` up to it.
use crate::core::chain::manager::{ChainStore, OldBlocks};
use crate::core::chain::{BlockIndex, BlockIndexEntry, BlockStatus, ChainError};
use crate::core::consensus::asert::AsertParams;
use crate::core::primitives::codec::{self, CodecError};
use crate::core::primitives::{Address, Block, BlockHash, Hash256};
use crate::core::state::{
    account_at, all_accounts as tree_accounts, prove, Account, AccountProof, BlockStateChange,
    SmtNode, SmtPage, StateStoreError, StateView, EMPTY_ROOT,
};
use crate::core::storage::{StorageFailure, StorageKind};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, PoisonError, RwLock};

mod indexes;

use indexes::{add_block_indexes, mark_key, remove_block_indexes};
pub use indexes::{HistoryItem, IndexMark, TxLocation};

const BLOCK: u8 = b'b';
const INDEX: u8 = b'i';
const HEIGHT: u8 = b'h';
const PAGE: u8 = b'g';
const META: u8 = b'm';
const BAN: u8 = b'p';

/// The store's layout version; a store of another version is refused. Version 2 stores the
/// state tree in pages and has no account or undo table; version 3 keeps each block's ASERT
/// schedule clock in its index entry (the genesis-anchored difficulty rule) and its chain work
/// as 32 bytes rather than a hex string.
const SCHEMA_VERSION: u32 = 3;

/// A banned peer, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanRecord {
    /// End of the ban, ms since the Unix epoch.
    pub until_ms: u64,
    /// Why the peer was banned.
    pub reason: String,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (disk full, I/O error, corruption it detected).
    #[error("database error: {0}")]
    Sled(sled::Error),
    /// A stored record does not decode.
    #[error("stored record under {key} is corrupt: {problem}")]
    Corrupt {
        /// Which record.
        key: String,
        /// The decoder's complaint.
        problem: CodecError,
    },
    /// A record that must exist does not.
    #[error("the store is inconsistent: {0}")]
    Inconsistent(String),
    /// The data directory belongs to another chain.
    #[error("data directory holds chain {found}, but the chain spec's genesis is {expected}: use another --data-dir")]
    WrongChain {
        /// Genesis of the stored chain.
        found: BlockHash,
        /// Genesis of the spec.
        expected: BlockHash,
    },
    /// Another process holds the store (another node on the same data directory).
    #[error("the store in {0} is in use by another process")]
    Locked(PathBuf),
    /// The store failed earlier and is closed until [`Store::reopen`] succeeds: what sled
    /// held in memory beyond the last flush is not served.
    #[error(
        "the store is closed after a write failure; it reopens when the disk can be written again"
    )]
    Closed,
    /// The store was written by an incompatible version.
    #[error("store schema version {found} is not supported (expected {expected})")]
    Schema {
        /// Found.
        found: u32,
        /// Expected.
        expected: u32,
    },
}

impl StoreError {
    /// Whether the stored bytes are damaged (as sled or this store's decoding found), as
    /// opposed to the disk failing or the store being in use.
    pub fn is_corrupt(&self) -> bool {
        matches!(
            self,
            StoreError::Corrupt { .. }
                | StoreError::Inconsistent(_)
                | StoreError::Sled(sled::Error::Corruption { .. })
        )
    }
}

/// The logic's view of a store error: its kind decides what the caller does next.
impl From<StoreError> for StorageFailure {
    fn from(e: StoreError) -> Self {
        let kind = if matches!(e, StoreError::Closed) {
            StorageKind::Closed
        } else if e.is_corrupt()
            || matches!(e, StoreError::WrongChain { .. } | StoreError::Schema { .. })
        {
            StorageKind::Corrupt
        } else {
            StorageKind::Io
        };
        StorageFailure::new(kind, e.to_string())
    }
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        // Not `#[from]`: the message carries the detail; a source link would repeat it.
        StoreError::Sled(e)
    }
}

fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + parts.iter().map(|p| p.len()).sum::<usize>());
    out.push(prefix);
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    codec::encode(value).expect("stored values are far below the codec limit")
}

/// Tree nodes kept in memory in cached pages, about 110 bytes each.
const PAGE_CACHE_NODES: u64 = 512 * 1024;

/// Weighs a cached page by its number of nodes.
#[derive(Clone)]
struct PageWeight;

impl quick_cache::Weighter<Hash256, Arc<SmtPage>> for PageWeight {
    fn weight(&self, _: &Hash256, page: &Arc<SmtPage>) -> u64 {
        page.len().max(1) as u64
    }
}

type PageCache = quick_cache::sync::Cache<Hash256, Arc<SmtPage>, PageWeight>;

/// The open sled database and its one tree.
#[derive(Clone)]
struct Handles {
    db: sled::Db,
    tree: sled::Tree,
}

/// The node's database.
///
/// Readers (the HTTP API, the explorer) see the chain only up to the last tip made durable
/// by [`Store::flush`]: [`Store::tip`], [`Store::hash_at_height`], [`Store::tx_location`],
/// [`Store::account`] and the history answer for that tip, so nothing is reported that a
/// crash could take back. The chain manager writes and reads through [`ChainStore`], which
/// sees everything written.
///
/// sled's first write or flush failure is final for the open database (it remembers the
/// error), and what it holds in memory may be ahead of the disk. [`Store::reopen`] drops the
/// database and opens it again from what is on disk.
#[derive(Clone)]
pub struct Store {
    dir: Arc<PathBuf>,
    handles: Arc<RwLock<Option<Handles>>>,
    /// The tip as of the last successful flush: what readers see.
    durable_tip: Arc<RwLock<Option<BlockIndexEntry>>>,
    /// Tree pages recently read or written, by top hash. Every state update walks the top of
    /// the tree and every account read walks a path of pages; sled answers each read in
    /// microseconds plus decoding and hashing the page, the cache in nanoseconds. Pages are
    /// content-addressed and never rewritten, so a cached page is never stale, whatever
    /// reorgs happen.
    page_cache: Arc<PageCache>,
    /// The tip as written (durable or not), kept beside `m/tip`: the chain manager and the
    /// mempool read accounts at its state root ([`StateView`]), and a flush makes it the
    /// durable tip.
    written_tip: Arc<RwLock<Option<BlockIndexEntry>>>,
    /// The index stage's marker as written, and as of the last flush (what readers see).
    written_indexed: Arc<RwLock<Option<IndexMark>>>,
    durable_indexed: Arc<RwLock<Option<IndexMark>>>,
    /// Sync is connecting blocks with more behind them: indexes wait.
    catching_up: Arc<AtomicBool>,
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let store = Store {
            dir: Arc::new(dir.to_path_buf()),
            handles: Arc::new(RwLock::new(Some(open_handles(dir)?))),
            durable_tip: Arc::new(RwLock::new(None)),
            page_cache: Arc::new(PageCache::with_weighter(
                16 * 1024,
                PAGE_CACHE_NODES,
                PageWeight,
            )),
            written_tip: Arc::new(RwLock::new(None)),
            written_indexed: Arc::new(RwLock::new(None)),
            durable_indexed: Arc::new(RwLock::new(None)),
            catching_up: Arc::new(AtomicBool::new(false)),
        };
        store.adopt_stored_tip();
        Ok(store)
    }

    /// Takes the stored tip as both the written and the durable one (just opened: what is
    /// stored is on disk). A store of another schema or chain has no usable tip; `init` says
    /// why.
    fn adopt_stored_tip(&self) {
        let tip = self.stored_tip_entry().ok();
        *self
            .written_tip
            .write()
            .unwrap_or_else(PoisonError::into_inner) = tip.clone();
        *self
            .durable_tip
            .write()
            .unwrap_or_else(PoisonError::into_inner) = tip;
        self.set_written_index_mark(self.stored_index_mark().ok());
        self.publish_index_mark();
    }

    /// Closes the database after a failed write, so that nothing it held only in memory is
    /// served; reads answer [`StoreError::Closed`] until [`Store::reopen`].
    pub fn close_after_failure(&self) {
        let handles = self
            .handles
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(handles);
    }

    /// Whether the store is closed after a failure.
    pub fn is_closed(&self) -> bool {
        self.handles
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }

    /// Drops the open database (if any) and opens it again from what is on disk: after a
    /// write failure, the way back to a store that writes. Returns the tip on disk.
    pub fn reopen(&self) -> Result<BlockIndexEntry, StoreError> {
        self.close_after_failure();
        // A reader may still hold the old database for a moment; sled's file lock is free
        // once every handle is dropped.
        let mut attempts = 0;
        let handles = loop {
            match open_handles(&self.dir) {
                Ok(handles) => break handles,
                Err(StoreError::Locked(_)) if attempts < 100 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        };
        *self.handles.write().unwrap_or_else(PoisonError::into_inner) = Some(handles);
        // Pages written but lost must not be found in the cache.
        self.page_cache.clear();
        self.adopt_stored_tip();
        self.stored_tip_entry()
    }

    /// The open tree, or [`StoreError::Closed`].
    fn tree(&self) -> Result<sled::Tree, StoreError> {
        self.handles
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|h| h.tree.clone())
            .ok_or(StoreError::Closed)
    }

    fn set_written_tip(&self, tip: BlockIndexEntry) {
        *self
            .written_tip
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(tip);
    }

    /// The state root of the tip as written (the empty tree before genesis).
    fn tip_root(&self) -> Hash256 {
        self.written_tip
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or(EMPTY_ROOT, |tip| tip.header.state_root.0)
    }

    fn get<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        match self.tree()?.get(key)? {
            None => Ok(None),
            Some(bytes) => codec::decode(&bytes)
                .map(Some)
                .map_err(|problem| StoreError::Corrupt {
                    key: hex::encode(key),
                    problem,
                }),
        }
    }

    /// Writes genesis into an empty store, or checks that a used store holds the same
    /// chain. Returns the tip.
    pub fn init(
        &self,
        genesis: &Block,
        change: &BlockStateChange,
        asert: &AsertParams,
    ) -> Result<BlockIndexEntry, StoreError> {
        let genesis_hash = genesis.hash();
        if let Some(found) = self.get::<BlockHash>(&key(META, &[b"genesis"]))? {
            if found != genesis_hash {
                return Err(StoreError::WrongChain {
                    found,
                    expected: genesis_hash,
                });
            }
            let schema: u32 = self.get(&key(META, &[b"schema"]))?.unwrap_or(0);
            if schema != SCHEMA_VERSION {
                return Err(StoreError::Schema {
                    found: schema,
                    expected: SCHEMA_VERSION,
                });
            }
            return self.tip();
        }
        let entry = BlockIndexEntry::genesis(genesis.header, asert)
            .map_err(|e| StoreError::Inconsistent(format!("genesis bits are invalid: {e}")))?;
        let mut batch = sled::Batch::default();
        batch.insert(key(BLOCK, &[genesis_hash.as_bytes()]), encode(genesis));
        batch.insert(key(INDEX, &[genesis_hash.as_bytes()]), encode(&entry));
        self.connect_records(&mut batch, genesis, &entry, change, true);
        batch.insert(key(META, &[b"genesis"]), encode(&genesis_hash));
        batch.insert(key(META, &[b"schema"]), encode(&SCHEMA_VERSION));
        self.tree()?.apply_batch(batch)?;
        self.set_written_tip(entry.clone());
        self.set_written_index_mark(Some(IndexMark {
            height: 0,
            hash: genesis_hash,
        }));
        self.flush()?;
        Ok(entry)
    }

    /// The best chain's tip as of the last flush (what a crash cannot take back).
    pub fn tip(&self) -> Result<BlockIndexEntry, StoreError> {
        if self.is_closed() {
            return Err(StoreError::Closed);
        }
        match &*self
            .durable_tip
            .read()
            .unwrap_or_else(PoisonError::into_inner)
        {
            Some(tip) => Ok(tip.clone()),
            None => Err(StoreError::Inconsistent("no tip recorded".into())),
        }
    }

    /// The height readers see: the durable tip's.
    fn durable_height(&self) -> Result<u32, StoreError> {
        Ok(self.tip()?.height())
    }

    /// The best chain's tip as written, durable or not.
    fn stored_tip_entry(&self) -> Result<BlockIndexEntry, StoreError> {
        let hash: BlockHash = self
            .get(&key(META, &[b"tip"]))?
            .ok_or_else(|| StoreError::Inconsistent("no tip recorded".into()))?;
        self.get(&key(INDEX, &[hash.as_bytes()]))?
            .ok_or_else(|| StoreError::Inconsistent(format!("tip {hash} has no index entry")))
    }

    /// The genesis hash of the stored chain.
    pub fn genesis_hash(&self) -> Result<BlockHash, StoreError> {
        self.get(&key(META, &[b"genesis"]))?
            .ok_or_else(|| StoreError::Inconsistent("no genesis recorded".into()))
    }

    /// The block `hash`, if stored (on any branch).
    pub fn block(&self, hash: &BlockHash) -> Result<Option<Block>, StoreError> {
        self.get(&key(BLOCK, &[hash.as_bytes()]))
    }

    /// The index entry of `hash`, if stored.
    pub fn index_entry(&self, hash: &BlockHash) -> Result<Option<BlockIndexEntry>, StoreError> {
        self.get(&key(INDEX, &[hash.as_bytes()]))
    }

    /// The hash of the best chain's block at `height`, up to the durable tip.
    pub fn hash_at_height(&self, height: u32) -> Result<Option<BlockHash>, StoreError> {
        if height > self.durable_height()? {
            return Ok(None);
        }
        self.written_hash_at_height(height)
    }

    /// The hash of the best chain's block at `height` as written, durable or not.
    fn written_hash_at_height(&self, height: u32) -> Result<Option<BlockHash>, StoreError> {
        self.get(&key(HEIGHT, &[&height.to_be_bytes()]))
    }

    /// Whether `hash` is on the best chain.
    pub fn is_on_best_chain(&self, entry: &BlockIndexEntry) -> Result<bool, StoreError> {
        Ok(self.hash_at_height(entry.height())? == Some(entry.hash()))
    }

    /// The account at `address` at the durable tip.
    pub fn account(&self, address: &Address) -> Result<Option<Account>, StoreError> {
        let root = self.tip()?.header.state_root.0;
        account_at(self, root, address).map_err(tree_error)
    }

    /// The proof of the account at `address` (or of its absence) under the state root `root`
    /// (a stored block's).
    pub fn account_proof(
        &self,
        root: Hash256,
        address: &Address,
    ) -> Result<AccountProof, StoreError> {
        prove(self, root, address).map_err(tree_error)
    }

    /// Stores a block and its index entry (not connected: a side branch, or a block about to
    /// be connected).
    pub fn put_block(&self, block: &Block, entry: &BlockIndexEntry) -> Result<(), StoreError> {
        let hash = block.hash();
        let mut batch = sled::Batch::default();
        batch.insert(key(BLOCK, &[hash.as_bytes()]), encode(block));
        batch.insert(key(INDEX, &[hash.as_bytes()]), encode(entry));
        self.tree()?.apply_batch(batch)?;
        Ok(())
    }

    /// Records that `hash` broke a consensus rule.
    pub fn mark_invalid(&self, hash: &BlockHash, reason: &str) -> Result<(), StoreError> {
        if let Some(mut entry) = self.index_entry(hash)? {
            entry.status = BlockStatus::Invalid {
                reason: reason.to_string(),
            };
            self.tree()?
                .insert(key(INDEX, &[hash.as_bytes()]), encode(&entry))?;
        }
        Ok(())
    }

    /// The records that connect `block`: its new state pages, its height, the tip, and with
    /// `with_indexes` its index and history records and the index marker.
    fn connect_records(
        &self,
        batch: &mut sled::Batch,
        block: &Block,
        entry: &BlockIndexEntry,
        change: &BlockStateChange,
        with_indexes: bool,
    ) {
        let hash = block.hash();
        let height = entry.height();
        insert_pages(batch, &change.new_pages);
        batch.insert(key(HEIGHT, &[&height.to_be_bytes()]), encode(&hash));
        if with_indexes {
            add_block_indexes(batch, block, height, hash);
            batch.insert(mark_key(), encode(&IndexMark { height, hash }));
        }
        batch.insert(key(META, &[b"tip"]), encode(&hash));
    }

    /// Connects `block` (already stored, child of the tip) with its state change: one atomic
    /// batch.
    pub fn connect(
        &self,
        block: &Block,
        entry: &BlockIndexEntry,
        change: &BlockStateChange,
    ) -> Result<(), StoreError> {
        let with_indexes = self.indexes_with_connect(block);
        let mut batch = sled::Batch::default();
        self.connect_records(&mut batch, block, entry, change, with_indexes);
        self.tree()?.apply_batch(batch)?;
        self.set_written_tip(entry.clone());
        if with_indexes {
            self.set_written_index_mark(Some(IndexMark {
                height: entry.height(),
                hash: block.hash(),
            }));
        }
        for (top, page) in &change.new_pages {
            self.page_cache.insert(*top, page.clone());
        }
        Ok(())
    }

    /// Stores state-tree pages fetched for a snapshot (checked against their hashes by the
    /// caller): one batch, not flushed (a crash loses some, which the fetch asks again).
    pub fn put_state_pages(&self, pages: &[(Hash256, Arc<SmtPage>)]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        insert_pages(&mut batch, pages);
        self.tree()?.apply_batch(batch)?;
        for (top, page) in pages {
            self.page_cache.insert(*top, page.clone());
        }
        Ok(())
    }

    /// Moves the tip from genesis to the last of `entries` (the best chain from genesis's
    /// child on) without their bodies, its state tree already stored: one atomic batch of
    /// their index entries and heights, the tip, the snapshot's base (`m/snapshot`) and the
    /// index marker (the transfer index and address history start at the base), then a flush.
    pub fn adopt_snapshot(&self, entries: &[BlockIndexEntry]) -> Result<(), StoreError> {
        let Some(last) = entries.last() else {
            return Ok(());
        };
        let base = IndexMark {
            height: last.height(),
            hash: last.hash(),
        };
        let mut batch = sled::Batch::default();
        for entry in entries {
            let hash = entry.hash();
            batch.insert(key(INDEX, &[hash.as_bytes()]), encode(entry));
            batch.insert(key(HEIGHT, &[&entry.height().to_be_bytes()]), encode(&hash));
        }
        batch.insert(key(META, &[b"snapshot"]), encode(&base));
        batch.insert(mark_key(), encode(&base));
        batch.insert(key(META, &[b"tip"]), encode(&base.hash));
        self.tree()?.apply_batch(batch)?;
        self.set_written_tip(last.clone());
        self.set_written_index_mark(Some(base));
        self.flush()
    }

    /// For a store bootstrapped by snapshot: the snapshot's height and how far the blocks
    /// below it are stored again (`m/old_through`).
    pub fn old_blocks(&self) -> Result<Option<OldBlocks>, StoreError> {
        let Some(base) = self.snapshot_base()? else {
            return Ok(None);
        };
        let through = self.get(&key(META, &[b"old_through"]))?.unwrap_or(0);
        Ok(Some(OldBlocks {
            base: base.height,
            through,
        }))
    }

    /// Stores blocks below the snapshot, the next ones after `m/old_through` in height
    /// order, and moves the marker past them: one batch, not flushed (a crash loses some,
    /// which are fetched again).
    pub fn put_old_blocks(&self, blocks: &[Block]) -> Result<(), StoreError> {
        let Some(last) = blocks.last() else {
            return Ok(());
        };
        let mut batch = sled::Batch::default();
        for block in blocks {
            batch.insert(key(BLOCK, &[block.hash().as_bytes()]), encode(block));
        }
        batch.insert(key(META, &[b"old_through"]), encode(&last.header.height));
        self.tree()?.apply_batch(batch)?;
        Ok(())
    }

    /// The block whose state this store started from, if it was bootstrapped by snapshot:
    /// blocks at or below its height may have no body here.
    pub fn snapshot_base(&self) -> Result<Option<IndexMark>, StoreError> {
        self.get(&key(META, &[b"snapshot"]))
    }

    /// Disconnects the tip `block`, restoring the state before it: one atomic batch.
    pub fn disconnect(&self, block: &Block) -> Result<(), StoreError> {
        let hash = block.hash();
        let height = block.header.height;
        if self.written_hash_at_height(height)? != Some(hash) {
            return Err(StoreError::Inconsistent(format!(
                "block {hash} is not on the best chain: it cannot be disconnected"
            )));
        }
        let parent = self.index_entry(&block.header.prev_hash)?.ok_or_else(|| {
            StoreError::Inconsistent(format!("the parent of block {hash} has no index entry"))
        })?;
        // The tree is content addressed: the parent's state is still stored under its root,
        // so no account is rewritten.
        let mut batch = sled::Batch::default();
        batch.remove(key(HEIGHT, &[&height.to_be_bytes()]));
        let indexed = self
            .written_index_mark()
            .is_some_and(|mark| mark.hash == hash);
        let parent_mark = IndexMark {
            height: parent.height(),
            hash: block.header.prev_hash,
        };
        if indexed {
            remove_block_indexes(&mut batch, block, height, hash);
            batch.insert(mark_key(), encode(&parent_mark));
        }
        batch.insert(key(META, &[b"tip"]), encode(&block.header.prev_hash));
        self.tree()?.apply_batch(batch)?;
        if indexed {
            self.set_written_index_mark(Some(parent_mark));
        }
        self.set_written_tip(parent);
        Ok(())
    }

    /// Makes everything written so far durable; readers then see the tip written.
    pub fn flush(&self) -> Result<(), StoreError> {
        let db = self
            .handles
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|h| h.db.clone())
            .ok_or(StoreError::Closed)?;
        db.flush()?;
        let written = self
            .written_tip
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        *self
            .durable_tip
            .write()
            .unwrap_or_else(PoisonError::into_inner) = written;
        self.publish_index_mark();
        Ok(())
    }

    /// Writes and flushes a small record: whether the store writes again after a failure.
    pub fn check_writes(&self) -> Result<(), StoreError> {
        self.tree()?.insert(key(META, &[b"probe"]), encode(&0u8))?;
        self.flush()
    }

    /// Records a ban of the peer whose id is `peer` (bytes); durable at once.
    pub fn put_ban(&self, peer: &[u8], record: &BanRecord) -> Result<(), StoreError> {
        self.tree()?.insert(key(BAN, &[peer]), encode(record))?;
        self.flush()
    }

    /// Forgets the ban of `peer`.
    pub fn remove_ban(&self, peer: &[u8]) -> Result<(), StoreError> {
        self.tree()?.remove(key(BAN, &[peer]))?;
        self.flush()
    }

    /// Every stored ban: (peer id bytes, record).
    pub fn bans(&self) -> Result<Vec<(Vec<u8>, BanRecord)>, StoreError> {
        let mut out = Vec::new();
        for row in self.tree()?.scan_prefix([BAN]) {
            let (k, v) = row?;
            let record = codec::decode(&v).map_err(|problem| StoreError::Corrupt {
                key: hex::encode(&k),
                problem,
            })?;
            out.push((k[1..].to_vec(), record));
        }
        Ok(out)
    }

    /// Every account on the best chain, sorted by address (for full checks; reads the whole
    /// state tree).
    pub fn all_accounts(&self) -> Result<Vec<(Address, Account)>, StoreError> {
        let root = self.tip()?.header.state_root.0;
        tree_accounts(self, root).map_err(tree_error)
    }

    /// The tree page topped by node `top`, from the cache or decoded from sled.
    fn page(&self, top: &Hash256) -> Result<Option<Arc<SmtPage>>, StoreError> {
        if let Some(page) = self.page_cache.get(top) {
            return Ok(Some(page));
        }
        let Some(nodes) = self.get::<Vec<SmtNode>>(&key(PAGE, &[top]))? else {
            return Ok(None);
        };
        let page = Arc::new(SmtPage::from_nodes(nodes));
        if page.get(top).is_none() {
            return Err(StoreError::Inconsistent(format!(
                "state tree page {} does not hold its top node",
                hex::encode(top)
            )));
        }
        self.page_cache.insert(*top, page.clone());
        Ok(Some(page))
    }
}

/// Adds the records of state-tree pages (their nodes, under their top's hash) to `batch`.
fn insert_pages(batch: &mut sled::Batch, pages: &[(Hash256, Arc<SmtPage>)]) {
    for (top, page) in pages {
        let nodes: Vec<&SmtNode> = page.nodes().collect();
        batch.insert(key(PAGE, &[top]), encode(&nodes));
    }
}

/// Opens sled in `dir` with the node's settings.
fn open_handles(dir: &Path) -> Result<Handles, StoreError> {
    remove_unfinished_snapshots(dir)?;
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(256 * 1024 * 1024)
        .flush_every_ms(Some(200))
        .open()?;
    let tree = db.open_tree("chain")?;
    Ok(Handles { db, tree })
}

/// Deletes the snapshot files sled left half written (`snap.<lsn>.generating`, as a write
/// that ran out of disk space leaves them): sled 0.34 takes such a file for the newest
/// snapshot and refuses to open, reporting corruption (spacejam/sled#1527), though a
/// finished snapshot is only ever renamed from it, and the log holds everything after the
/// previous one. Done only while no process holds the store's lock: a store whose lock is
/// held is [`StoreError::Locked`] (sled itself reports that only as text).
fn remove_unfinished_snapshots(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::io::AsRawFd;
    let Ok(db_file) = std::fs::File::open(dir.join("db")) else {
        return Ok(());
    };
    // SAFETY: flock on a file descriptor this function owns; no memory is involved.
    if unsafe { libc::flock(db_file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(StoreError::Locked(dir.to_path_buf()));
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => tracing::warn!(
                    "removed the unfinished store snapshot {} (left by a failed write)",
                    entry.path().display()
                ),
                Err(e) => tracing::warn!("cannot remove {}: {e}", entry.path().display()),
            }
        }
    }
    // Closing `db_file` releases the lock before sled takes it.
    Ok(())
}

/// A failed tree read as a store error (the tree reads through [`StateView`]).
fn tree_error(e: StateStoreError) -> StoreError {
    StoreError::Inconsistent(e.to_string())
}

impl StateView for Store {
    /// The account at the tip as written (the chain manager's and the mempool's view).
    fn account(&self, address: &Address) -> Result<Option<Account>, StateStoreError> {
        account_at(self, self.tip_root(), address)
    }

    fn smt_page(&self, top: &Hash256) -> Result<Option<Arc<SmtPage>>, StateStoreError> {
        self.page(top).map_err(StateStoreError::from)
    }
}

impl BlockIndex for Store {
    fn entry(&self, hash: &BlockHash) -> Result<Option<BlockIndexEntry>, ChainError> {
        self.index_entry(hash).map_err(ChainError::from)
    }
}

impl From<StoreError> for ChainError {
    fn from(e: StoreError) -> Self {
        ChainError::Store(e.into())
    }
}

impl ChainStore for Store {
    fn stored_tip(&self) -> Result<BlockIndexEntry, ChainError> {
        Ok(self.stored_tip_entry()?)
    }

    fn stored_genesis(&self) -> Result<BlockHash, ChainError> {
        Ok(self.genesis_hash()?)
    }

    fn load_block(&self, hash: &BlockHash) -> Result<Option<Block>, ChainError> {
        Ok(self.block(hash)?)
    }

    fn best_hash_at(&self, height: u32) -> Result<Option<BlockHash>, ChainError> {
        Ok(self.written_hash_at_height(height)?)
    }

    fn store_block(&mut self, block: &Block, entry: &BlockIndexEntry) -> Result<(), ChainError> {
        Ok(self.put_block(block, entry)?)
    }

    fn store_invalid(&mut self, hash: &BlockHash, reason: &str) -> Result<(), ChainError> {
        Ok(self.mark_invalid(hash, reason)?)
    }

    fn connect_block(
        &mut self,
        block: &Block,
        entry: &BlockIndexEntry,
        change: &BlockStateChange,
    ) -> Result<(), ChainError> {
        Ok(self.connect(block, entry, change)?)
    }

    fn disconnect_block(&mut self, block: &Block) -> Result<(), ChainError> {
        Ok(self.disconnect(block)?)
    }

    fn store_state_pages(&mut self, pages: &[(Hash256, Arc<SmtPage>)]) -> Result<(), ChainError> {
        Ok(self.put_state_pages(pages)?)
    }

    fn adopt_snapshot(&mut self, entries: &[BlockIndexEntry]) -> Result<(), ChainError> {
        Ok(Store::adopt_snapshot(self, entries)?)
    }

    fn old_blocks(&self) -> Result<Option<OldBlocks>, ChainError> {
        Ok(Store::old_blocks(self)?)
    }

    fn store_old_blocks(&mut self, blocks: &[Block]) -> Result<(), ChainError> {
        Ok(self.put_old_blocks(blocks)?)
    }

    fn set_catching_up(&mut self, catching_up: bool) {
        Store::set_catching_up(self, catching_up);
    }

    fn make_durable(&mut self) -> Result<(), ChainError> {
        Ok(self.flush()?)
    }
}
