//! The genesis block of a chain spec, and its hash that names the chain. No I/O.
//!
//! Genesis has no parent, no transfers and no reward; its `tx_root` commits to every
//! consensus parameter of the spec and its message
//! (`merkle_root([tagged_hash("cairn/genesis", consensus_bytes)])`, see [`consensus_bytes`])
//! and its state root to the allocations. So two specs that differ in any rule have
//! different genesis hashes: a data directory, a transfer or a peer of one chain can never be
//! mistaken for another's. Genesis is built, never validated, and needs no proof of work.
use super::apply::apply_genesis;
use super::spec::ChainSpec;
use super::validation::BLOCK_VERSION;
use crate::core::primitives::merkle::merkle_root;
use crate::core::primitives::{tagged_hash, Address, Amount, Block, BlockHash, Header};
use crate::core::state::memory::MemoryState;
use crate::core::state::BlockStateChange;

/// The genesis block and the state it creates.
pub fn genesis(spec: &ChainSpec) -> (Block, BlockStateChange) {
    let change = apply_genesis(&MemoryState::default(), &spec.allocations)
        .expect("an empty in-memory state cannot fail");
    let leaf = tagged_hash("cairn/genesis", &[&consensus_bytes(spec)]);
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

/// The explicit byte layout of everything consensus depends on besides the allocations
/// (which the state root commits to). All integers little-endian:
///
/// ```text
/// chain_id u32 | decimals u8 | prefix_len u8 | address_prefix | ideal_block_time u32 |
/// half_life u32 | pow_limit_bits u32 | initial_subsidy u64 (base units) |
/// halving_interval u32 | max_block_bytes u32 | max_block_transfers u32 |
/// max_future_drift u32 | message (the rest)
/// ```
pub fn consensus_bytes(spec: &ChainSpec) -> Vec<u8> {
    let c = &spec.file.consensus;
    let prefix = spec.hrp().as_bytes();
    let message = spec.file.genesis.message.as_bytes();
    let mut out = Vec::with_capacity(48 + prefix.len() + message.len());
    out.extend_from_slice(&spec.chain_id().to_le_bytes());
    out.push(spec.file.decimals);
    // bech32 prefixes are at most 83 characters, so the length fits a byte.
    out.push(u8::try_from(prefix.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(prefix);
    for value in [
        c.ideal_block_time_secs,
        c.asert_half_life_secs,
        spec.pow_limit.to_compact().to_consensus(),
    ] {
        out.extend_from_slice(&value.to_le_bytes());
    }
    out.extend_from_slice(&spec.initial_subsidy.as_units().to_le_bytes());
    for value in [
        c.halving_interval,
        c.max_block_bytes,
        c.max_block_transfers,
        c.max_future_drift_secs,
    ] {
        out.extend_from_slice(&value.to_le_bytes());
    }
    out.extend_from_slice(message);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every consensus field changes the genesis hash; names and network defaults do not.
    #[test]
    fn genesis_hash_commits_to_every_consensus_field() {
        let base = crate::core::consensus::spec::DEV_SPEC_TOML;
        let dev = genesis_hash(&ChainSpec::from_toml(base).unwrap());
        let consensus_edits = [
            ("chain_id = 1337", "chain_id = 1338"),
            ("decimals = 8", "decimals = 9"),
            ("ideal_block_time_secs = 10", "ideal_block_time_secs = 11"),
            ("asert_half_life_secs = 300", "asert_half_life_secs = 301"),
            (
                "pow_limit_bits = \"0x207fffff\"",
                "pow_limit_bits = \"0x207ffffe\"",
            ),
            ("initial_subsidy = \"50\"", "initial_subsidy = \"51\""),
            ("halving_interval = 210000", "halving_interval = 210001"),
            ("max_block_bytes = 2000000", "max_block_bytes = 2000001"),
            ("max_block_transfers = 5000", "max_block_transfers = 5001"),
            ("max_future_drift_secs = 120", "max_future_drift_secs = 121"),
            (
                "message = \"Cairn dev chain\"",
                "message = \"Cairn dev chain!\"",
            ),
            ("time = 1767225600", "time = 1767225601"),
            ("bits = \"0x1e020000\"", "bits = \"0x1e020001\""),
            (
                "amount = \"1000000\", note = \"dev account 0\"",
                "amount = \"1000001\"",
            ),
        ];
        for (from, to) in consensus_edits {
            assert!(base.contains(from), "dev spec has {from}");
            let edited = ChainSpec::from_toml(&base.replacen(from, to, 1)).unwrap();
            assert_ne!(
                genesis_hash(&edited),
                dev,
                "{from} -> {to} must change genesis"
            );
        }
        for (from, to) in [
            ("name = \"Cairn Dev\"", "name = \"Other\""),
            ("p2p_port = 7370", "p2p_port = 7380"),
        ] {
            let edited = ChainSpec::from_toml(&base.replacen(from, to, 1)).unwrap();
            assert_eq!(genesis_hash(&edited), dev, "{from} is not consensus");
        }
    }

    /// The dev chain's identity, pinned: a change here is a new chain and must be deliberate.
    #[test]
    fn dev_genesis_hash_is_pinned() {
        assert_eq!(
            genesis_hash(&ChainSpec::dev()).to_hex(),
            "213eac8b1ce2c3985c756030d4b962c9d917916c13e7b445f7260f5ed2ca67d8"
        );
    }
}
