//! Helpers for tests, benchmarks and the network simulation: a trivially easy test chain,
//! deterministic test keys, and a builder of valid (or deliberately broken) blocks on any
//! branch, over in-memory state. No I/O.
//!
//! Not for production use: the keys are public and the proof of work is a formality.
use crate::core::chain::{child_context, BlockIndex, BlockIndexEntry, ChainError};
use crate::core::consensus::genesis::genesis;
use crate::core::consensus::spec::AllocationFile;
use crate::core::consensus::target::Target;
use crate::core::consensus::ChainSpec;
use crate::core::miner::{build_template, NonceSearch, TemplateParams};
use crate::core::primitives::transfer::UnsignedTransfer;
use crate::core::primitives::{tagged_hash, Address, Amount, Block, BlockHash, Header, Transfer};
use crate::core::state::memory::MemoryState;
use secp256k1::{Keypair, SecretKey};
use std::collections::HashMap;

/// A chain spec whose proof of work takes a couple of hashes: for tests only.
pub const TEST_SPEC_TOML: &str = r#"
name = "Cairn Test"
id = "test"
chain_id = 4242
symbol = "TEST"
decimals = 8
address_prefix = "cairntest"

[genesis]
time = 1767225600
bits = "0x207fffff"
message = "test chain"
allocations = [
  { address = "ADDR0", amount = "1000000" },
  { address = "ADDR1", amount = "1000000" },
  { address = "ADDR2", amount = "1000000" },
  { address = "ADDR3", amount = "1000000" },
]

[consensus]
ideal_block_time_secs = 10
asert_half_life_secs = 3600
pow_limit_bits = "0x207fffff"
initial_subsidy = "50"
halving_interval = 1000
max_block_bytes = 2000000
max_block_transfers = 5000
max_future_drift_secs = 120

[network]
p2p_port = 27370
http_port = 27371
"#;

/// The deterministic test key number `i` (secret key bytes all `i + 1`).
pub fn test_keypair(i: u8) -> Keypair {
    let secret = SecretKey::from_secret_bytes([i.wrapping_add(1).max(1); 32])
        .expect("small repeated bytes are a valid secret key");
    Keypair::from_secret_key(&secret)
}

/// Key `i` of a family named by `tag`: `tagged_hash(tag, i)` as the secret, for benches and
/// tests that need thousands of distinct, reproducible senders.
pub fn derived_keypair(tag: &str, i: u64) -> Keypair {
    let secret = SecretKey::from_secret_bytes(tagged_hash(tag, &[&i.to_le_bytes()]))
        .expect("a hash is a valid secret key with overwhelming probability");
    Keypair::from_secret_key(&secret)
}

/// The address (x-only public key) of `keypair`.
pub fn address_of(keypair: &Keypair) -> Address {
    Address(keypair.x_only_public_key().0.to_byte_array())
}

/// The address of [`test_keypair`] `i`.
pub fn test_address(i: u8) -> Address {
    address_of(&test_keypair(i))
}

/// A transfer signed by test key 1 with `nonce` and `memo`, for no chain in particular:
/// for code that stores or encodes transfers without validating them.
pub fn sample_transfer(nonce: u64, memo: Vec<u8>) -> Transfer {
    UnsignedTransfer {
        chain_id: 1,
        to: Address([7; 32]),
        amount: Amount::from_units(5),
        fee: Amount::from_units(200),
        nonce,
        memo,
    }
    .sign(&test_keypair(1), &BlockHash::ZERO, &[0; 32])
}

/// The test spec, with test keys 0..4 funded with 1,000,000 coins each.
pub fn test_spec() -> ChainSpec {
    ChainSpec::from_toml(&with_test_addresses(TEST_SPEC_TOML)).expect("the test spec is valid")
}

/// `text` with `ADDR0` … `ADDR3` replaced by the addresses of test keys 0 … 3.
fn with_test_addresses(text: &str) -> String {
    let mut text = text.to_string();
    for i in 0..4u8 {
        let address = test_address(i)
            .to_bech32("cairntest")
            .expect("valid prefix");
        text = text.replace(&format!("ADDR{i}"), &address);
    }
    text
}

/// The test spec with genesis bits `bits` (the pow limit stays `0x207fffff`): for tests
/// where difficulty must be able to ease, such as `"0x1f7fffff"` (256 times harder than the
/// limit: about 512 hashes a block).
pub fn test_spec_with_genesis_bits(bits: &str) -> ChainSpec {
    let text = TEST_SPEC_TOML.replacen(
        "bits = \"0x207fffff\"\nmessage",
        &format!("bits = \"{bits}\"\nmessage"),
        1,
    );
    ChainSpec::from_toml(&with_test_addresses(&text))
        .expect("the test spec with other bits is valid")
}

/// The test spec with `addresses` funded (1,000,000 coins each) instead of test keys 0..4:
/// the genesis of benchmarks that need many funded senders.
pub fn test_spec_funding(addresses: &[Address]) -> ChainSpec {
    let mut file = test_spec().file;
    file.genesis.allocations = addresses
        .iter()
        .map(|address| AllocationFile {
            address: address.to_bech32("cairntest").expect("valid prefix"),
            amount: "1000000".to_string(),
            note: None,
        })
        .collect();
    ChainSpec::from_file(file).expect("the funded test spec is valid")
}

/// Finds a nonce for `header` meeting its own bits (fast for easy test targets).
pub fn solve(header: &mut Header) {
    let target = Target::from_compact(header.bits).expect("test bits are valid");
    let search = NonceSearch::new(header, &target);
    let mut start = 0u32;
    loop {
        let end = start.saturating_add(1 << 16);
        if let Some(nonce) = search.search(start, end).found {
            header.nonce = nonce;
            return;
        }
        assert!(end < u32::MAX, "no nonce found: target too hard for a test");
        start = end;
    }
}

/// An in-memory block tree with the state after every block, for building branches.
#[derive(Clone, Debug)]
pub struct TestChain {
    /// The chain's spec.
    pub spec: ChainSpec,
    /// Its genesis hash.
    pub genesis_hash: BlockHash,
    entries: HashMap<BlockHash, BlockIndexEntry>,
    states: HashMap<BlockHash, MemoryState>,
    blocks: HashMap<BlockHash, Block>,
}

impl TestChain {
    /// A chain on [`test_spec`].
    pub fn new() -> TestChain {
        TestChain::with_spec(test_spec())
    }

    /// A chain on `spec`.
    pub fn with_spec(spec: ChainSpec) -> TestChain {
        let (block, change) = genesis(&spec);
        let hash = block.hash();
        let mut state = MemoryState::default();
        state.apply_change(&change);
        let entry = BlockIndexEntry::genesis(block.header, &spec.asert_params())
            .expect("valid genesis bits");
        TestChain {
            spec,
            genesis_hash: hash,
            entries: HashMap::from([(hash, entry)]),
            states: HashMap::from([(hash, state)]),
            blocks: HashMap::from([(hash, block)]),
        }
    }

    /// A signed transfer on this chain.
    pub fn transfer(
        &self,
        from: &Keypair,
        to: Address,
        amount: u64,
        fee: u64,
        nonce: u64,
    ) -> Transfer {
        UnsignedTransfer {
            chain_id: self.spec.chain_id(),
            to,
            amount: Amount::from_units(amount),
            fee: Amount::from_units(fee),
            nonce,
            memo: Vec::new(),
        }
        .sign(from, &self.genesis_hash, &[7u8; 32])
    }

    /// The state after block `hash`.
    pub fn state_at(&self, hash: &BlockHash) -> &MemoryState {
        &self.states[hash]
    }

    /// The stored block `hash`.
    pub fn block(&self, hash: &BlockHash) -> &Block {
        &self.blocks[hash]
    }

    /// The index entry of `hash`.
    pub fn entry_of(&self, hash: &BlockHash) -> &BlockIndexEntry {
        &self.entries[hash]
    }

    /// An unsolved valid child of `parent` (time: parent time plus the ideal block time).
    pub fn template(
        &self,
        parent: &BlockHash,
        transfers: Vec<Transfer>,
        reward_to: Address,
    ) -> Block {
        let entry = &self.entries[parent];
        let context = child_context(self, entry, &self.spec).expect("in-memory index");
        let ideal = self.spec.file.consensus.ideal_block_time_secs;
        build_template(
            &self.states[parent],
            TemplateParams {
                spec: &self.spec,
                genesis_hash: &self.genesis_hash,
                parent: entry,
                context,
                now: u64::from(entry.header.time + ideal),
                reward_address: reward_to,
                extra_nonce: 0,
                transfers,
            },
        )
        .expect("test transfers are valid")
        .block
    }

    /// Mines a valid child of `parent` and adds it to the chain.
    pub fn mine(
        &mut self,
        parent: &BlockHash,
        transfers: Vec<Transfer>,
        reward_to: Address,
    ) -> Block {
        let mut block = self.template(parent, transfers, reward_to);
        solve(&mut block.header);
        self.add(block.clone());
        block
    }

    /// Mines `count` empty blocks on `parent`, paying `reward_to`; returns them in order.
    pub fn extend(&mut self, parent: &BlockHash, count: usize, reward_to: Address) -> Vec<Block> {
        let mut tip = *parent;
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let block = self.mine(&tip, Vec::new(), reward_to);
            tip = block.hash();
            out.push(block);
        }
        out
    }

    /// Adds a valid block whose parent is in the chain (recomputing its state).
    pub fn add(&mut self, block: Block) {
        let parent = block.header.prev_hash;
        let mut state = self.states[&parent].clone();
        let change = crate::core::consensus::validation::check_state(
            &state,
            self.entries[&parent].header.state_root,
            &block,
            &self.spec,
            &self.genesis_hash,
        )
        .expect("TestChain::add takes valid blocks");
        state.apply_change(&change);
        let entry = self.entries[&parent]
            .child(block.header, &self.spec.asert_params())
            .expect("valid bits");
        let hash = block.hash();
        self.entries.insert(hash, entry);
        self.states.insert(hash, state);
        self.blocks.insert(hash, block);
    }
}

impl Default for TestChain {
    fn default() -> Self {
        TestChain::new()
    }
}

impl BlockIndex for TestChain {
    fn entry(&self, hash: &BlockHash) -> Result<Option<BlockIndexEntry>, ChainError> {
        Ok(self.entries.get(hash).cloned())
    }
}
