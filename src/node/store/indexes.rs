//! The index stage: the transfer index (`t`: txid → where it sits on the best chain) and
//! the address history (`x`: address, height → the address's items in that block), kept for
//! the best chain up to a progress marker (`m/indexed`) that may lag the tip.
//!
//! Consensus needs neither; the API, the explorer and the wallet do, and they are most of
//! what a block writes (a 2,000-transfer block: 2,000 index and about 3,300 history records
//! of about 5,860). So:
//! - A node following the chain writes a block's records in the block's own connect batch,
//!   with the marker: its transfers are indexed the moment the block is connected.
//! - While sync connects blocks with more waiting behind them ([`Store::set_catching_up`]),
//!   a connect batch carries only what consensus needs and the marker stays behind. The
//!   stage catches up once sync is done ([`Store::index_step`]): a few blocks per batch,
//!   each batch moving the marker with its records.
//! - Disconnecting an indexed block removes its records and moves the marker back, in the
//!   disconnect's batch.
//!
//! So after a crash at any instant the records are exactly those of the best chain up to
//! the marker. Readers see the marker as of the last flush ([`Store::indexed_height`]);
//! a transfer in a block above it is not found yet, and the API says how far the index is.
use super::{encode, key, Store, StoreError, META};
use crate::core::primitives::codec;
use crate::core::primitives::{Address, Block, BlockHash, Txid};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::PoisonError;

pub(super) const TX: u8 = b't';
pub(super) const HISTORY: u8 = b'x';

/// The key of the index stage's progress marker.
pub(super) fn mark_key() -> Vec<u8> {
    key(META, &[b"indexed"])
}

/// The index stage's progress: the last best-chain block whose records are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexMark {
    /// Its height.
    pub height: u32,
    /// The block.
    pub hash: BlockHash,
}

/// Where a transfer sits on the best chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxLocation {
    /// The block.
    pub block: BlockHash,
    /// Its height.
    pub height: u32,
    /// Position among the block's transfers.
    pub position: u32,
}

/// One entry of an address's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HistoryItem {
    /// A transfer sent or received.
    Transfer {
        /// The transfer.
        txid: Txid,
        /// Its block.
        block: BlockHash,
    },
    /// A block reward received.
    Reward {
        /// The block.
        block: BlockHash,
    },
}

impl Store {
    /// Whether sync is connecting blocks with more waiting behind them: blocks connected
    /// meanwhile leave their index records to [`Store::index_step`].
    pub fn set_catching_up(&self, catching_up: bool) {
        self.catching_up.store(catching_up, Ordering::Relaxed);
    }

    /// Whether sync is catching up (see [`Store::set_catching_up`]).
    pub fn is_catching_up(&self) -> bool {
        self.catching_up.load(Ordering::Relaxed)
    }

    /// The height up to which transfers and histories are indexed, as of the last flush.
    pub fn indexed_height(&self) -> Result<u32, StoreError> {
        if self.is_closed() {
            return Err(StoreError::Closed);
        }
        self.durable_indexed
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .map(|mark| mark.height)
            .ok_or_else(|| StoreError::Inconsistent("no index marker recorded".into()))
    }

    /// The index marker as written (durable or not).
    pub(super) fn written_index_mark(&self) -> Option<IndexMark> {
        *self
            .written_indexed
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn set_written_index_mark(&self, mark: Option<IndexMark>) {
        *self
            .written_indexed
            .write()
            .unwrap_or_else(PoisonError::into_inner) = mark;
    }

    /// Makes the written marker the one readers see (after a flush).
    pub(super) fn publish_index_mark(&self) {
        let written = self.written_index_mark();
        *self
            .durable_indexed
            .write()
            .unwrap_or_else(PoisonError::into_inner) = written;
    }

    /// The stored marker; a store written before the marker existed indexed every block
    /// in its connect batch, so its marker is its tip.
    pub(super) fn stored_index_mark(&self) -> Result<IndexMark, StoreError> {
        if let Some(mark) = self.get::<IndexMark>(&mark_key())? {
            return Ok(mark);
        }
        let tip = self.stored_tip_entry()?;
        Ok(IndexMark {
            height: tip.height(),
            hash: tip.hash(),
        })
    }

    /// Whether `block`, about to be connected, gets its index records in its connect batch:
    /// the marker is at its parent and sync is not catching up.
    pub(super) fn indexes_with_connect(&self, block: &Block) -> bool {
        !self.is_catching_up()
            && self
                .written_index_mark()
                .is_some_and(|mark| mark.hash == block.header.prev_hash)
    }

    /// Blocks on the best chain (as written) not indexed yet (none without a marker: the
    /// store is not initialised, and there is nothing to index from).
    pub fn index_lag(&self) -> u32 {
        let Some(mark) = self.written_index_mark() else {
            return 0;
        };
        let tip = self
            .written_tip
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or(0, |tip| tip.height());
        tip.saturating_sub(mark.height)
    }

    /// Indexes up to `max_blocks` best-chain blocks above the marker in one batch with the
    /// marker's move, and flushes it for readers. Returns how many it indexed.
    pub fn index_step(&self, max_blocks: u32) -> Result<u32, StoreError> {
        let Some(mut mark) = self.written_index_mark() else {
            return Ok(0);
        };
        let mut batch = sled::Batch::default();
        let mut done = 0;
        while done < max_blocks && self.index_lag() > done {
            let height = mark.height + 1;
            let hash = self.written_hash_at_height(height)?.ok_or_else(|| {
                StoreError::Inconsistent(format!("no best-chain block at height {height}"))
            })?;
            let block = self
                .block(&hash)?
                .ok_or_else(|| StoreError::Inconsistent(format!("block {hash} is not stored")))?;
            if block.header.prev_hash != mark.hash {
                return Err(StoreError::Inconsistent(format!(
                    "the index marker {} at height {} is not on the best chain",
                    mark.hash, mark.height
                )));
            }
            add_block_indexes(&mut batch, &block, height, hash);
            mark = IndexMark { height, hash };
            done += 1;
        }
        if done == 0 {
            return Ok(0);
        }
        batch.insert(mark_key(), encode(&mark));
        self.tree()?.apply_batch(batch)?;
        self.set_written_index_mark(Some(mark));
        self.flush()?;
        Ok(done)
    }

    /// Where transfer `txid` sits on the best chain, up to the durable index marker (a
    /// transfer in a block above it is not found yet).
    pub fn tx_location(&self, txid: &Txid) -> Result<Option<TxLocation>, StoreError> {
        let durable = self.indexed_height()?;
        Ok(self
            .get::<TxLocation>(&key(TX, &[txid.as_bytes()]))?
            .filter(|location| location.height <= durable))
    }

    /// Up to `limit` history items of `address`, newest first, below height `before` (all if
    /// `None`).
    pub fn address_history(
        &self,
        address: &Address,
        before: Option<u32>,
        limit: usize,
    ) -> Result<Vec<(u32, HistoryItem)>, StoreError> {
        Ok(self
            .address_history_page(address, before.map(|height| (height, 0)), limit)?
            .into_iter()
            .map(|(height, _, item)| (height, item))
            .collect())
    }

    /// Up to `limit` history items of `address`, newest first, each with its height and
    /// position (0 for the block reward, 1 + the transfer's index for a transfer), strictly
    /// below the place `below` (height, position) if given: the cursor of paged history.
    pub fn address_history_page(
        &self,
        address: &Address,
        below: Option<(u32, u32)>,
        limit: usize,
    ) -> Result<Vec<(u32, u32, HistoryItem)>, StoreError> {
        let start = key(HISTORY, &[address.as_bytes()]);
        // Nothing above the durable index marker; the record of `below`'s height is read
        // too: part of it may be below the cursor.
        let durable = self.indexed_height()?;
        let below = match below {
            Some((height, position)) if height <= durable => Some((height, position)),
            _ => durable.checked_add(1).map(|after| (after, 0)),
        };
        let end = match below.and_then(|(height, _)| height.checked_add(1)) {
            Some(after) => history_key(address, after),
            None => {
                let mut end = start.clone();
                end.extend_from_slice(&[0xff; 5]);
                end
            }
        };
        let mut out = Vec::new();
        for row in self.tree()?.range(start..end).rev() {
            let (k, v) = row?;
            let height = k
                .get(33..37)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_be_bytes)
                .ok_or_else(|| StoreError::Inconsistent("short history key".into()))?;
            let items: Vec<(u32, HistoryItem)> =
                codec::decode(&v).map_err(|problem| StoreError::Corrupt {
                    key: hex::encode(&k),
                    problem,
                })?;
            for (position, item) in items.into_iter().rev() {
                if below.is_some_and(|cursor| (height, position) >= cursor) {
                    continue;
                }
                if out.len() == limit {
                    return Ok(out);
                }
                out.push((height, position, item));
            }
        }
        Ok(out)
    }
}

/// Writes the index and history records of `block` at `height` (not the marker).
pub(super) fn add_block_indexes(
    batch: &mut sled::Batch,
    block: &Block,
    height: u32,
    hash: BlockHash,
) {
    let txids: Vec<Txid> = block.transfers.iter().map(|t| t.txid()).collect();
    for (position, txid) in txids.iter().enumerate() {
        let location = TxLocation {
            block: hash,
            height,
            position: position as u32,
        };
        batch.insert(key(TX, &[txid.as_bytes()]), encode(&location));
    }
    for (address, items) in block_history(block, &txids, height, hash) {
        batch.insert(history_key(&address, height), encode(&items));
    }
}

/// Removes the index and history records of `block` at `height` (not the marker).
pub(super) fn remove_block_indexes(
    batch: &mut sled::Batch,
    block: &Block,
    height: u32,
    hash: BlockHash,
) {
    let txids: Vec<Txid> = block.transfers.iter().map(|t| t.txid()).collect();
    for txid in &txids {
        batch.remove(key(TX, &[txid.as_bytes()]));
    }
    for address in block_history(block, &txids, height, hash).into_keys() {
        batch.remove(history_key(&address, height));
    }
}

/// The history record of `address` for the block at `height`.
fn history_key(address: &Address, height: u32) -> Vec<u8> {
    key(HISTORY, &[address.as_bytes(), &height.to_be_bytes()])
}

/// What block `hash` at `height` adds to each address's history: one record per address
/// and block (not per transfer), each item at its position (0 for the reward, 1 + the
/// transfer's index for a transfer), in position order.
fn block_history(
    block: &Block,
    txids: &[Txid],
    height: u32,
    hash: BlockHash,
) -> BTreeMap<Address, Vec<(u32, HistoryItem)>> {
    let mut history: BTreeMap<Address, Vec<(u32, HistoryItem)>> = BTreeMap::new();
    if height > 0 {
        history
            .entry(block.reward_address)
            .or_default()
            .push((0, HistoryItem::Reward { block: hash }));
    }
    for (index, (transfer, txid)) in block.transfers.iter().zip(txids).enumerate() {
        let position = index as u32 + 1;
        let item = HistoryItem::Transfer {
            txid: *txid,
            block: hash,
        };
        history
            .entry(transfer.from)
            .or_default()
            .push((position, item));
        if transfer.to != transfer.from {
            history
                .entry(transfer.to)
                .or_default()
                .push((position, item));
        }
    }
    history
}
