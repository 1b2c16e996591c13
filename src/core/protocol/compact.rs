//! Compact blocks, after BIP152: a block announced as its header, its reward fields and a
//! 6-byte short id per transfer, rebuilt by the receiver from the transfers it already
//! holds; only the ones it lacks travel again. No I/O.
//!
//! ```text
//!   keys     = first 16 bytes of tagged_hash("cairn/short-ids", block hash)   (k0, k1 LE)
//!   short id = low 48 bits of SipHash-2-4(k0, k1; txid), little-endian
//! ```
//!
//! The keys come from the block's hash, which no one knows before the block is mined, so
//! no one can make transfers whose short ids collide with a block's before it exists. A
//! collision (about one block in 50,000 against a 2,000-transfer pool of 2,000-transfer
//! blocks) only costs the receiver a round trip: an id that matches two held transfers, or
//! appears twice in the block, is asked for; a wrong match shows as a merkle root that does
//! not match the header, and the receiver then fetches the whole block.
use crate::core::primitives::codec;
use crate::core::primitives::hash::tagged_hash;
use crate::core::primitives::{Address, Amount, Block, BlockHash, Header, Transfer, Txid};
use serde::{Deserialize, Serialize};
use siphasher::sip::SipHasher24;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hasher;

/// Bytes of a short id.
pub const SHORT_ID_BYTES: usize = 6;

/// A transfer's id within one compact block (see the module documentation).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShortId(pub [u8; SHORT_ID_BYTES]);

impl fmt::Debug for ShortId {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ShortId({})", hex::encode(self.0))
    }
}

/// The SipHash keys of one block's short ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShortIdKeys {
    k0: u64,
    k1: u64,
}

impl ShortIdKeys {
    /// The keys of the block with this hash.
    pub fn for_block(hash: &BlockHash) -> ShortIdKeys {
        let digest = tagged_hash("cairn/short-ids", &[&hash.0]);
        let word = |at: usize| u64::from_le_bytes(digest[at..at + 8].try_into().expect("8 bytes"));
        ShortIdKeys {
            k0: word(0),
            k1: word(8),
        }
    }

    /// The short id of `txid` under these keys.
    pub fn short_id(&self, txid: &Txid) -> ShortId {
        let mut hasher = SipHasher24::new_with_keys(self.k0, self.k1);
        hasher.write(&txid.0);
        let bytes = hasher.finish().to_le_bytes();
        ShortId(bytes[..SHORT_ID_BYTES].try_into().expect("6 of 8 bytes"))
    }
}

/// A block as its header, reward fields and one short id per transfer, in block order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactBlock {
    /// The header (first, so that a message's id can be read from its prefix).
    pub header: Header,
    /// See [`Block::reward_address`].
    pub reward_address: Address,
    /// See [`Block::reward`].
    pub reward: Amount,
    /// See [`Block::extra_nonce`].
    pub extra_nonce: u64,
    /// The transfers' short ids, in block order.
    pub short_ids: Vec<ShortId>,
}

impl CompactBlock {
    /// The compact form of `block`.
    pub fn of(block: &Block) -> CompactBlock {
        let keys = ShortIdKeys::for_block(&block.hash());
        CompactBlock {
            header: block.header,
            reward_address: block.reward_address,
            reward: block.reward,
            extra_nonce: block.extra_nonce,
            short_ids: block
                .transfers
                .iter()
                .map(|t| keys.short_id(&t.txid()))
                .collect(),
        }
    }

    /// The block's hash.
    pub fn hash(&self) -> BlockHash {
        self.header.hash()
    }
}

/// A block as gossip carries it: whole, or compact (what nodes send; a node also takes a
/// whole block, e.g. from a peer set to relay whole blocks).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockAnnouncement {
    /// The whole block.
    Full(Block),
    /// Header, reward fields and short ids.
    Compact(CompactBlock),
}

impl BlockAnnouncement {
    /// The announced block's header.
    pub fn header(&self) -> &Header {
        match self {
            BlockAnnouncement::Full(block) => &block.header,
            BlockAnnouncement::Compact(compact) => &compact.header,
        }
    }

    /// The announced block's hash.
    pub fn hash(&self) -> BlockHash {
        self.header().hash()
    }

    /// The header of the announcement encoded in `bytes`, read from their prefix (the
    /// variant tag, then the header, in both forms) without decoding the rest.
    pub fn header_of(bytes: &[u8]) -> Option<Header> {
        codec::decode_prefix::<(u32, Header)>(bytes)
            .ok()
            .map(|(_, header)| header)
    }
}

/// Why transfers sent for a partial block do not fill it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FillError {
    /// Not one transfer per slot asked for.
    #[error("{got} transfers sent for {asked} missing slots")]
    WrongCount {
        /// Slots asked for.
        asked: usize,
        /// Transfers sent.
        got: usize,
    },
    /// A transfer whose short id is not the slot's.
    #[error("the transfer sent for slot {index} does not match the block's short id")]
    WrongTransfer {
        /// The slot (block position).
        index: u32,
    },
}

/// A compact block being rebuilt: each slot holds the transfer found for it, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartialBlock {
    compact: CompactBlock,
    keys: ShortIdKeys,
    slots: Vec<Option<Transfer>>,
}

impl PartialBlock {
    /// Rebuilds `compact` from `held` (txid, transfer) pairs, e.g. the mempool's. A slot
    /// gets the one held transfer with its short id; a short id that two held transfers
    /// share, or that the block lists twice, is left empty (to be asked for).
    pub fn rebuild<'a>(
        compact: CompactBlock,
        held: impl IntoIterator<Item = (&'a Txid, &'a Transfer)>,
    ) -> PartialBlock {
        let keys = ShortIdKeys::for_block(&compact.hash());
        let mut slots: Vec<Option<Transfer>> = vec![None; compact.short_ids.len()];
        if compact.short_ids.is_empty() {
            return PartialBlock {
                compact,
                keys,
                slots,
            };
        }
        // Slot of each short id; `None` for ids the block lists twice.
        let mut wanted: HashMap<ShortId, Option<usize>> =
            HashMap::with_capacity(compact.short_ids.len());
        for (index, id) in compact.short_ids.iter().enumerate() {
            wanted
                .entry(*id)
                .and_modify(|slot| *slot = None)
                .or_insert(Some(index));
        }
        // A held transfer per slot; a second one with the same id empties the slot for good.
        let mut ambiguous = vec![false; slots.len()];
        for (txid, transfer) in held {
            let Some(Some(index)) = wanted.get(&keys.short_id(txid)) else {
                continue;
            };
            if slots[*index].is_some() || ambiguous[*index] {
                slots[*index] = None;
                ambiguous[*index] = true;
            } else {
                slots[*index] = Some(transfer.clone());
            }
        }
        PartialBlock {
            compact,
            keys,
            slots,
        }
    }

    /// The block's header.
    pub fn header(&self) -> &Header {
        &self.compact.header
    }

    /// The block's hash.
    pub fn hash(&self) -> BlockHash {
        self.compact.hash()
    }

    /// The block's number of transfers.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the block has no transfers.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The slots still empty, ascending.
    pub fn missing(&self) -> Vec<u32> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.is_none())
            .map(|(index, _)| index as u32)
            .collect()
    }

    /// Whether every slot holds a transfer.
    pub fn is_complete(&self) -> bool {
        self.slots.iter().all(Option::is_some)
    }

    /// Puts `transfers` into the slots `indexes` (as asked for, in that order), after
    /// checking that each matches its slot's short id. Nothing changes on an error.
    pub fn fill(&mut self, indexes: &[u32], transfers: Vec<Transfer>) -> Result<(), FillError> {
        if indexes.len() != transfers.len() {
            return Err(FillError::WrongCount {
                asked: indexes.len(),
                got: transfers.len(),
            });
        }
        for (&index, transfer) in indexes.iter().zip(&transfers) {
            let expected = self.compact.short_ids.get(index as usize);
            if expected != Some(&self.keys.short_id(&transfer.txid())) {
                return Err(FillError::WrongTransfer { index });
            }
        }
        for (&index, transfer) in indexes.iter().zip(transfers) {
            self.slots[index as usize] = Some(transfer);
        }
        Ok(())
    }

    /// The block, if every slot is filled. Its merkle root is not checked here: a short-id
    /// collision can put the wrong transfer in a slot.
    pub fn into_block(self) -> Option<Block> {
        if !self.is_complete() {
            return None;
        }
        let CompactBlock {
            header,
            reward_address,
            reward,
            extra_nonce,
            ..
        } = self.compact;
        Some(Block {
            header,
            reward_address,
            reward,
            extra_nonce,
            transfers: self
                .slots
                .into_iter()
                .map(|slot| slot.expect("complete"))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testkit::{sample_transfer, test_address, TestChain};

    /// A block of `n` distinct transfers (not valid on any chain: only its shape matters)
    /// whose header commits to them.
    fn block_with(n: usize) -> Block {
        let mut chain = TestChain::new();
        let genesis = chain.genesis_hash;
        let mut block = chain.extend(&genesis, 1, test_address(0)).remove(0);
        block.transfers = (0..n as u64)
            .map(|i| sample_transfer(i, Vec::new()))
            .collect();
        block.header.tx_root = block.compute_tx_root();
        block
    }

    fn held(transfers: &[Transfer]) -> Vec<(Txid, Transfer)> {
        transfers.iter().map(|t| (t.txid(), t.clone())).collect()
    }

    fn rebuild(compact: CompactBlock, held: &[(Txid, Transfer)]) -> PartialBlock {
        PartialBlock::rebuild(compact, held.iter().map(|(id, t)| (id, t)))
    }

    #[test]
    fn a_block_rebuilds_from_held_transfers_in_any_order() {
        let block = block_with(50);
        let mut pool = held(&block.transfers);
        pool.reverse();
        let partial = rebuild(CompactBlock::of(&block), &pool);
        assert!(partial.missing().is_empty());
        let rebuilt = partial.into_block().expect("complete");
        assert_eq!(rebuilt, block);
        assert_eq!(rebuilt.compute_tx_root(), block.header.tx_root);
    }

    #[test]
    fn missing_transfers_are_named_and_filled_only_by_matching_ones() {
        let block = block_with(30);
        let pool = held(&block.transfers[..20]);
        let mut partial = rebuild(CompactBlock::of(&block), &pool);
        let missing = partial.missing();
        assert_eq!(missing, (20..30).collect::<Vec<u32>>());
        let sent: Vec<Transfer> = block.transfers[20..].to_vec();

        // Too few, or one in the wrong slot: refused, nothing changes.
        assert_eq!(
            partial.fill(&missing, sent[1..].to_vec()),
            Err(FillError::WrongCount { asked: 10, got: 9 })
        );
        let mut swapped = sent.clone();
        swapped.swap(0, 1);
        assert_eq!(
            partial.fill(&missing, swapped),
            Err(FillError::WrongTransfer { index: 20 })
        );
        assert_eq!(partial.missing(), missing);

        partial.fill(&missing, sent).expect("matching transfers");
        assert_eq!(partial.into_block().expect("complete"), block);
    }

    #[test]
    fn ambiguous_short_ids_are_left_to_ask_for() {
        let block = block_with(4);
        let mut compact = CompactBlock::of(&block);
        // The block lists one id twice: neither slot is taken from the pool.
        compact.short_ids[3] = compact.short_ids[1];
        let partial = rebuild(compact, &held(&block.transfers));
        assert_eq!(partial.missing(), vec![1, 3]);

        // Two held transfers with the slot's short id: the slot stays empty, however many
        // more come.
        let compact = CompactBlock::of(&block);
        let twin = block.transfers[2].clone();
        let twin_id = block.transfers[2].txid();
        let pool = vec![
            (twin_id, twin.clone()),
            (twin_id, twin.clone()),
            (twin_id, twin),
            (block.transfers[0].txid(), block.transfers[0].clone()),
        ];
        let partial = rebuild(compact, &pool);
        assert_eq!(partial.missing(), vec![1, 2, 3]);
        assert!(partial.into_block().is_none());
    }

    #[test]
    fn short_ids_depend_on_the_block() {
        let txid = Txid([7; 32]);
        let a = ShortIdKeys::for_block(&BlockHash([1; 32]));
        let b = ShortIdKeys::for_block(&BlockHash([2; 32]));
        assert_eq!(a.short_id(&txid), a.short_id(&txid));
        assert_ne!(a.short_id(&txid), b.short_id(&txid));
        assert_ne!(a.short_id(&txid), a.short_id(&Txid([8; 32])));
    }

    #[test]
    fn a_compact_block_is_a_small_fraction_of_the_block_and_keeps_the_header_prefix() {
        let block = block_with(200);
        let compact = CompactBlock::of(&block);
        let full_bytes = codec::encode(&BlockAnnouncement::Full(block.clone())).unwrap();
        let compact_bytes = codec::encode(&BlockAnnouncement::Compact(compact.clone())).unwrap();
        assert!(
            compact_bytes.len() * 10 < full_bytes.len(),
            "{} of {} bytes",
            compact_bytes.len(),
            full_bytes.len()
        );
        // Tag (u32), header, reward address, reward, extra nonce, count, 6 bytes per transfer.
        assert_eq!(compact_bytes.len(), 4 + 116 + 32 + 8 + 8 + 8 + 6 * 200);
        for bytes in [&full_bytes, &compact_bytes] {
            assert_eq!(BlockAnnouncement::header_of(bytes), Some(block.header));
        }
        assert_eq!(
            codec::decode::<BlockAnnouncement>(&compact_bytes).unwrap(),
            BlockAnnouncement::Compact(compact)
        );
    }
}
