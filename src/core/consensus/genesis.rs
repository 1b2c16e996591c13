//! The genesis block of a chain spec, and its hash that names the chain. No I/O.
//!
//! Genesis has no parent, no transfers and no reward; its `tx_root` commits to the spec's
//! message (`merkle_root([tagged_hash("cairn/genesis", message)])`) and its state root to
//! the allocations. It is built, never validated, and needs no proof of work.
use super::spec::ChainSpec;
use super::validation::BLOCK_VERSION;
use crate::core::primitives::merkle::merkle_root;
use crate::core::primitives::{tagged_hash, Address, Amount, Block, BlockHash, Header};
use crate::core::state::memory::MemoryState;
use crate::core::state::{apply_genesis, BlockStateChange};

/// The genesis block and the state it creates.
pub fn genesis(spec: &ChainSpec) -> (Block, BlockStateChange) {
    let change = apply_genesis(&MemoryState::default(), &spec.allocations)
        .expect("an empty in-memory state cannot fail");
    let leaf = tagged_hash("cairn/genesis", &[spec.file.genesis.message.as_bytes()]);
    let header = Header {
        version: BLOCK_VERSION,
        height: 0,
        prev_hash: BlockHash::ZERO,
        tx_root: merkle_root(&[leaf]),
        state_root: change.state_root,
        time: spec.file.genesis.time,
        bits: spec.genesis_bits,
        nonce: 0,
    };
    let block = Block {
        header,
        reward_address: Address::default(),
        reward: Amount::ZERO,
        extra_nonce: 0,
        transfers: Vec::new(),
    };
    (block, change)
}

/// The hash of the spec's genesis block: the chain's identity.
pub fn genesis_hash(spec: &ChainSpec) -> BlockHash {
    genesis(spec).0.hash()
}
