//! JSON shapes of the HTTP API: what clients see, kept apart from the internal types so that
//! either can change without silently changing the other.
use crate::core::chain::BlockIndexEntry;
use crate::core::consensus::ChainSpec;
use crate::core::primitives::{Block, Transfer};
use serde::{Deserialize, Serialize};

/// `GET /api/v1/tip`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TipView {
    /// Chain name from the spec.
    pub chain: String,
    /// Genesis hash: the chain's identity.
    pub genesis_hash: String,
    /// Height of the tip.
    pub height: u32,
    /// Hash of the tip.
    pub hash: String,
    /// State root after the tip.
    pub state_root: String,
    /// Cumulative work, 0x-prefixed hex.
    pub chain_work: String,
    /// The tip's timestamp.
    pub time: u32,
    /// The tip's compact target.
    pub bits: String,
}

/// A transfer as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferView {
    /// Its id.
    pub txid: String,
    /// Sender address (bech32m).
    pub from: String,
    /// Recipient address (bech32m).
    pub to: String,
    /// Amount in base units.
    pub amount: u64,
    /// Fee in base units.
    pub fee: u64,
    /// Sender nonce.
    pub nonce: u64,
    /// Memo as UTF-8 (lossy); `memo_hex` holds the exact bytes.
    pub memo: String,
    /// Memo bytes as hex.
    pub memo_hex: String,
}

/// `GET /api/v1/blocks/{height or hash}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockView {
    /// Block hash.
    pub hash: String,
    /// Height.
    pub height: u32,
    /// Header version.
    pub version: u32,
    /// Parent hash.
    pub prev_hash: String,
    /// Merkle root of reward leaf and transfers.
    pub tx_root: String,
    /// State root after the block.
    pub state_root: String,
    /// Timestamp.
    pub time: u32,
    /// Compact target.
    pub bits: String,
    /// Nonce.
    pub nonce: u32,
    /// Cumulative work up to this block.
    pub chain_work: String,
    /// Whether the block is on the best chain.
    pub best_chain: bool,
    /// Blocks on top of it, itself included (0 if not on the best chain).
    pub confirmations: u32,
    /// The next block on the best chain, if any.
    pub next_hash: Option<String>,
    /// Who was paid.
    pub reward_address: String,
    /// Subsidy plus fees, base units.
    pub reward: u64,
    /// Extra nonce.
    pub extra_nonce: u64,
    /// Encoded size in bytes.
    pub size: usize,
    /// The transfers.
    pub transfers: Vec<TransferView>,
}

fn address(spec: &ChainSpec, address: &crate::core::primitives::Address) -> String {
    address
        .to_bech32(spec.hrp())
        .unwrap_or_else(|_| address.to_string_hex())
}

impl TransferView {
    /// The view of `transfer`.
    pub fn new(spec: &ChainSpec, transfer: &Transfer) -> TransferView {
        TransferView {
            txid: transfer.txid().to_hex(),
            from: address(spec, &transfer.from),
            to: address(spec, &transfer.to),
            amount: transfer.amount.as_units(),
            fee: transfer.fee.as_units(),
            nonce: transfer.nonce,
            memo: String::from_utf8_lossy(&transfer.memo).into_owned(),
            memo_hex: hex::encode(&transfer.memo),
        }
    }
}

impl TipView {
    /// The view of the tip `entry`.
    pub fn new(spec: &ChainSpec, genesis_hash: String, entry: &BlockIndexEntry) -> TipView {
        TipView {
            chain: spec.file.name.clone(),
            genesis_hash,
            height: entry.height(),
            hash: entry.hash().to_hex(),
            state_root: entry.header.state_root.to_hex(),
            chain_work: entry.chain_work.to_string(),
            time: entry.header.time,
            bits: entry.header.bits.to_string(),
        }
    }
}

impl BlockView {
    /// The view of `block`, with its index entry and place in the best chain.
    pub fn new(
        spec: &ChainSpec,
        block: &Block,
        entry: &BlockIndexEntry,
        tip_height: u32,
        best_chain: bool,
        next_hash: Option<String>,
    ) -> BlockView {
        let header = &block.header;
        BlockView {
            hash: block.hash().to_hex(),
            height: header.height,
            version: header.version,
            prev_hash: header.prev_hash.to_hex(),
            tx_root: header.tx_root.to_hex(),
            state_root: header.state_root.to_hex(),
            time: header.time,
            bits: header.bits.to_string(),
            nonce: header.nonce,
            chain_work: entry.chain_work.to_string(),
            best_chain,
            confirmations: if best_chain {
                tip_height.saturating_sub(header.height) + 1
            } else {
                0
            },
            next_hash,
            reward_address: address(spec, &block.reward_address),
            reward: block.reward.as_units(),
            extra_nonce: block.extra_nonce,
            size: block.encoded_size(),
            transfers: block
                .transfers
                .iter()
                .map(|t| TransferView::new(spec, t))
                .collect(),
        }
    }
}

/// `GET /api/v1/peers`: this node on the network, its peers and its bans.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeersView {
    /// This node's libp2p peer id.
    pub peer_id: String,
    /// Where it listens (with `/p2p/<peer id>`), for other nodes' `--bootnode`.
    pub listen_addresses: Vec<String>,
    /// Connected peers.
    pub peers: Vec<PeerView>,
    /// Banned peers.
    pub bans: Vec<BanView>,
}

/// One connected peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerView {
    /// Its peer id.
    pub peer_id: String,
    /// The address of the connection.
    pub address: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// What it says it runs (identify's agent version), once known.
    pub agent: Option<String>,
    /// Its best height, from its last status.
    pub height: Option<u32>,
    /// Its best tip, from its last status.
    pub tip: Option<String>,
    /// Its misbehaviour score (a ban at 100).
    pub score: u32,
    /// Our requests it has not answered yet.
    pub requests_in_flight: usize,
}

/// One ban.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanView {
    /// The banned peer id.
    pub peer_id: String,
    /// End of the ban, Unix seconds.
    pub until: u64,
    /// Why.
    pub reason: String,
}
