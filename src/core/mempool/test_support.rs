//! Shared pieces of the mempool tests: a test chain with a movable tip, signed transfers
//! between test keys, and a check that a list of transfers applies under the consensus rules.
use super::{Mempool, MempoolConfig};
use crate::core::consensus::apply::{apply_block, ApplyContext};
use crate::core::consensus::BlockError;
use crate::core::primitives::transfer::UnsignedTransfer;
use crate::core::primitives::{Address, Amount, Block, BlockHash, Transfer};
use crate::core::state::memory::MemoryState;
use crate::core::state::BlockStateChange;
use crate::core::testkit::{test_address, test_keypair, TestChain};

/// Test key 4 is unfunded; it receives block rewards here.
pub const MINER: u8 = 4;

/// The default config (fee floor 1 unit per byte, 10 % bump).
pub fn config() -> MempoolConfig {
    MempoolConfig::default()
}

/// A test chain (keys 0..4 funded with 10^14 units) and a best tip.
pub struct Fixture {
    pub chain: TestChain,
    pub tip: BlockHash,
    pub config: MempoolConfig,
}

impl Fixture {
    pub fn new(config: MempoolConfig) -> Fixture {
        let chain = TestChain::new();
        let tip = chain.genesis_hash;
        Fixture { chain, tip, config }
    }

    /// An empty pool for this chain.
    pub fn pool(&self) -> Mempool {
        Mempool::new(
            self.config,
            self.chain.genesis_hash,
            self.chain.spec.chain_id(),
        )
    }

    /// The state at the tip.
    pub fn state(&self) -> &MemoryState {
        self.chain.state_at(&self.tip)
    }

    /// The address of test key `i`.
    pub fn addr(&self, i: u8) -> Address {
        test_address(i)
    }

    /// Test key `i`'s balance at the tip, in units.
    pub fn balance(&self, i: u8) -> u64 {
        let accounts = &self.state().accounts;
        accounts
            .get(&test_address(i))
            .map_or(0, |a| a.balance.as_units())
    }

    /// A transfer signed by test key `from` to test key `to`.
    pub fn send(&self, from: u8, to: u8, amount: u64, fee: u64, nonce: u64) -> Transfer {
        self.chain
            .transfer(&test_keypair(from), test_address(to), amount, fee, nonce)
    }

    /// [`Fixture::send`] with a memo and a chain id of one's choice.
    pub fn send_with(
        &self,
        from: u8,
        fee: u64,
        nonce: u64,
        memo: Vec<u8>,
        chain_id: u32,
    ) -> Transfer {
        UnsignedTransfer {
            chain_id,
            to: test_address(MINER),
            amount: Amount::from_units(10),
            fee: Amount::from_units(fee),
            nonce,
            memo,
        }
        .sign(&test_keypair(from), &self.chain.genesis_hash, &[7u8; 32])
    }

    /// Mines a block with `transfers` on `parent` (not moving the tip).
    pub fn mine_on(&mut self, parent: &BlockHash, transfers: Vec<Transfer>) -> Block {
        self.chain.mine(parent, transfers, test_address(MINER))
    }

    /// Mines a block with `transfers` on the tip and moves the tip to it.
    pub fn mine(&mut self, transfers: Vec<Transfer>) -> Block {
        let tip = self.tip;
        let block = self.mine_on(&tip, transfers);
        self.tip = block.hash();
        block
    }

    /// Applies `transfers` as a block on `parent` with the consensus rules.
    pub fn apply_on(
        &self,
        parent: &BlockHash,
        transfers: Vec<Transfer>,
    ) -> Result<BlockStateChange, BlockError> {
        let entry = self.chain.entry_of(parent);
        let subsidy = self.chain.spec.subsidy_at(entry.height() + 1);
        let fees = Amount::checked_sum(transfers.iter().map(|t| t.fee)).ok_or_else(|| {
            BlockError::Overflow {
                context: "fees".to_string(),
            }
        })?;
        let block = Block {
            header: entry.header,
            reward_address: test_address(MINER),
            reward: subsidy.checked_add(fees).unwrap_or(Amount::MAX),
            extra_nonce: 0,
            transfers,
        };
        let ctx = ApplyContext {
            genesis_hash: &self.chain.genesis_hash,
            chain_id: self.chain.spec.chain_id(),
            subsidy,
            check_signatures: true,
            signature_cache: None,
        };
        apply_block(
            self.chain.state_at(parent),
            entry.header.state_root,
            &block,
            &ctx,
        )
    }
}
