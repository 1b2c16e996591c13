//! The JSON shapes of the HTTP API, shared by the node that serves them and the wallet that
//! reads them; no I/O.
//!
//! They are kept apart from the internal types so that either can change without silently
//! changing the other, and built from core types by the constructors here.
use crate::core::chain::BlockIndexEntry;
use crate::core::consensus::ChainSpec;
use crate::core::primitives::{AddressError, Block, Transfer};
use crate::core::state::proof::ProofView;
use serde::{Deserialize, Serialize};

/// Every error the API answers: `{"error": {"code": "...", "message": "..."}}`, with a
/// status that matches the code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorView {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The inside of an [`ErrorView`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable and machine-readable, e.g. `nonce_too_low` (docs/API.md lists them).
    pub code: String,
    /// For people.
    pub message: String,
}

impl ErrorView {
    /// An error with `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> ErrorView {
        ErrorView {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}

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

/// `address` in bech32m with the chain's prefix (hex if the prefix cannot encode it).
pub(crate) fn address(spec: &ChainSpec, address: &crate::core::primitives::Address) -> String {
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

/// `GET /api/v1/info`: the chain's constants a client needs, and the node's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InfoView {
    /// Chain name.
    pub chain: String,
    /// Chain id, carried by every transfer.
    pub chain_id: u32,
    /// Genesis hash, committed in every signature.
    pub genesis_hash: String,
    /// Ticker.
    pub symbol: String,
    /// Decimals of one coin.
    pub decimals: u8,
    /// bech32m prefix of addresses.
    pub address_prefix: String,
    /// Tip height.
    pub height: u32,
    /// Tip hash.
    pub tip: String,
    /// Tip time.
    pub tip_time: u32,
    /// Tip compact target.
    pub bits: String,
    /// The tip's difficulty relative to the pow limit (for people).
    pub difficulty: f64,
    /// Transfers in the mempool.
    pub mempool_count: usize,
    /// Their encoded bytes.
    pub mempool_bytes: usize,
    /// Connected peers.
    pub peers: usize,
    /// Whether the node is downloading blocks.
    pub syncing: bool,
    /// Snapshot sync's progress while it fetches the state of a block (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_fetch: Option<SnapshotFetchView>,
    /// For a node bootstrapped by snapshot: the height of the block whose state it fetched.
    /// Blocks at or below it were not downloaded, and the transfer index and address
    /// histories start above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_height: Option<u32>,
    /// For a node bootstrapped by snapshot: how far the blocks below it are fetched again in
    /// the background (as of the last report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_blocks: Option<OldBlocksView>,
    /// Height up to which transfers and address histories are indexed: `height` once the
    /// index has caught up, lower for a while after sync (a transfer or history item in a
    /// block above it is not found yet).
    pub indexed_height: u32,
    /// Node version.
    pub version: String,
    /// The mempool's fee floor, base units per byte.
    pub min_fee_rate: u64,
    /// Longest memo.
    pub max_memo_bytes: usize,
}

/// The background fetch of the blocks below a snapshot (see `GET /api/v1/info`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OldBlocksView {
    /// Every block through this height is stored.
    pub through: u32,
    /// The snapshot's height: the last block to fetch.
    pub base: u32,
    /// Blocks stored per second lately.
    pub blocks_per_sec: f64,
    /// Estimated seconds to the end, if moving.
    pub eta_secs: Option<u64>,
}

/// Snapshot sync's progress (see `GET /api/v1/info`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotFetchView {
    /// The height of the block whose state is fetched.
    pub pivot_height: u32,
    /// Accounts fetched so far.
    pub accounts: u64,
    /// Pages fetched and checked.
    pub pages_fetched: u64,
    /// Pages found already stored.
    pub pages_held: u64,
    /// Pages known to be still needed (those below them are not known yet).
    pub pages_left: u64,
    /// Pages fetched per second since the report before.
    pub pages_per_sec: Option<f64>,
}

/// `POST /api/v1/transactions` body: a signed transfer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitTransferRequest {
    /// Chain id.
    pub chain_id: u32,
    /// Sender, bech32m.
    pub from: String,
    /// Recipient, bech32m.
    pub to: String,
    /// Base units.
    pub amount: u64,
    /// Base units.
    pub fee: u64,
    /// Sender nonce.
    pub nonce: u64,
    /// Memo bytes, hex.
    #[serde(default)]
    pub memo_hex: String,
    /// BIP340 signature, 128 hex digits.
    pub signature: String,
}

impl SubmitTransferRequest {
    /// The body for a signed `transfer`, with addresses in bech32m with prefix `hrp`.
    pub fn from_transfer(transfer: &Transfer, hrp: &str) -> Result<Self, AddressError> {
        Ok(SubmitTransferRequest {
            chain_id: transfer.chain_id,
            from: transfer.from.to_bech32(hrp)?,
            to: transfer.to.to_bech32(hrp)?,
            amount: transfer.amount.as_units(),
            fee: transfer.fee.as_units(),
            nonce: transfer.nonce,
            memo_hex: hex::encode(&transfer.memo),
            signature: hex::encode(transfer.signature.0),
        })
    }
}

/// `POST /api/v1/transactions` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitTransferResponse {
    /// The transfer's id.
    pub txid: String,
    /// Always `pending`.
    pub status: String,
    /// The transfer it replaced by fee.
    pub replaced: Option<String>,
}

/// `GET /api/v1/transactions/{txid}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransactionView {
    /// Its id.
    pub txid: String,
    /// `pending` or `confirmed`.
    pub status: String,
    /// Blocks on top of its block, the block included; 0 while pending.
    pub confirmations: u32,
    /// Its block, once confirmed.
    pub block_hash: Option<String>,
    /// Its block's height, once confirmed.
    pub height: Option<u32>,
    /// Its block's time, once confirmed.
    pub time: Option<u32>,
    /// Fee per byte.
    pub fee_rate: f64,
    /// The transfer.
    pub transfer: TransferView,
}

/// `GET /api/v1/accounts/{address}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    /// The address.
    pub address: String,
    /// Balance on the best chain, base units.
    pub balance: u64,
    /// Nonce on the best chain.
    pub nonce: u64,
    /// The nonce a new transfer should carry.
    pub next_nonce: u64,
    /// Pending transfers sent from the address.
    pub pending: usize,
    /// Sum of amount + fee of those.
    pub pending_outgoing: u64,
}

/// `GET /api/v1/headers?from=H&count=N`: best-chain headers, for clients that check the
/// chain themselves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadersView {
    /// The first header's height.
    pub from: u32,
    /// The node's durable tip height.
    pub tip_height: u32,
    /// Each header's 116 bytes, hex, from height `from` up.
    pub headers: Vec<String>,
}

/// `GET /api/v1/accounts/{address}/proof`: an account (or its absence) with its proof
/// against the state root of a block's header (docs/PROTOCOL.md, "Account proofs"). Nothing
/// here is to be believed before [`crate::core::state::proof::verify_served`] passes with a
/// header the client trusts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountProofView {
    /// The address, as asked.
    pub address: String,
    /// The block whose state the proof is against.
    pub block_hash: String,
    /// Its height.
    pub height: u32,
    /// Its header's 116 bytes, hex (hash them to check `block_hash`).
    pub header: String,
    /// The state root in that header, hex.
    pub state_root: String,
    /// The account as the proof shows it, or `None`: it has none (unverified until checked).
    pub account: Option<AccountStateView>,
    /// The path to the state root.
    pub proof: ProofView,
}

/// An account's balance and nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountStateView {
    /// Base units.
    pub balance: u64,
    /// Transfers sent.
    pub nonce: u64,
}

/// One entry of an address's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntryView {
    /// `sent`, `received`, `self` or `reward`.
    pub kind: String,
    /// The transfer, or `None` for a reward.
    pub txid: Option<String>,
    /// Block height.
    pub height: u32,
    /// Block hash.
    pub block_hash: String,
    /// Block time.
    pub time: u32,
    /// Confirmations of the block.
    pub confirmations: u32,
    /// Sender (`None` for a reward).
    pub from: Option<String>,
    /// Recipient.
    pub to: String,
    /// Base units.
    pub amount: u64,
    /// Base units.
    pub fee: u64,
    /// Sender nonce (`None` for a reward).
    pub nonce: Option<u64>,
    /// Memo as text.
    pub memo: String,
    /// Memo bytes, hex.
    pub memo_hex: String,
}

/// `GET /api/v1/accounts/{address}/history`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryView {
    /// The address.
    pub address: String,
    /// Confirmed entries, newest first.
    pub items: Vec<HistoryEntryView>,
    /// Pending transfers sent or received (first page only).
    pub pending: Vec<TransferView>,
    /// Cursor of the next page.
    pub next: Option<String>,
}

/// A transfer in the mempool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MempoolTransferView {
    /// The transfer.
    #[serde(flatten)]
    pub transfer: TransferView,
    /// Encoded size.
    pub size: usize,
    /// Fee per byte.
    pub fee_rate: f64,
    /// When it was admitted, Unix seconds.
    pub added: u64,
}

/// `GET /api/v1/mempool`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MempoolView {
    /// Transfers held.
    pub count: usize,
    /// Their bytes.
    pub bytes: usize,
    /// The best fee rates first.
    pub transfers: Vec<MempoolTransferView>,
}

/// `GET /api/v1/fees`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeesView {
    /// The floor, base units per byte.
    pub min_fee_rate: u64,
    /// What should get into the next block, base units per byte.
    pub suggested_fee_rate: u64,
    /// Size of a transfer with an empty memo.
    pub typical_size: usize,
    /// `min_fee_rate × typical_size`.
    pub min_fee: u64,
    /// `suggested_fee_rate × typical_size`.
    pub suggested_fee: u64,
}

/// `GET /api/v1/mining`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MiningView {
    /// Whether the threads are searching.
    pub enabled: bool,
    /// Mining threads (0 without `--mine`).
    pub threads: usize,
    /// Hashes per second over the last report period.
    pub hash_rate: f64,
    /// Own blocks that extended the best chain.
    pub mined: u64,
    /// Own blocks found too late.
    pub stale: u64,
    /// Who the blocks pay.
    pub reward_address: Option<String>,
}

/// `GET /api/v1/health`: whether the node can write, and so take blocks, mine and accept
/// transfers. Answered with `200` when `status` is `ok` and `503` when it is `degraded`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthView {
    /// `ok` or `degraded`.
    pub status: String,
    /// Whether the store writes: blocks are taken in and mined, transfers accepted.
    pub writable: bool,
    /// What is wrong, for people (`None` when ok).
    pub problem: Option<String>,
    /// Since when (Unix seconds) it has been wrong.
    pub since: Option<u64>,
    /// The durable tip's height: everything up to it survives a crash.
    pub height: u32,
    /// Bytes free on the data directory's file system.
    pub disk_available_bytes: u64,
    /// Below this much free space the node stops writing blocks (`--min-free-disk`).
    pub disk_reserve_bytes: u64,
}

impl Default for HealthView {
    fn default() -> Self {
        HealthView {
            status: "ok".into(),
            writable: true,
            problem: None,
            since: None,
            height: 0,
            disk_available_bytes: 0,
            disk_reserve_bytes: 0,
        }
    }
}

/// How the best chain switched branches, in a `block` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReorgView {
    /// Height of the last shared block.
    pub fork_height: u32,
    /// Blocks taken off.
    pub disconnected: usize,
    /// Blocks put on.
    pub connected: usize,
}

/// A `block` event: a new tip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewBlockView {
    /// Its hash.
    pub hash: String,
    /// Its height.
    pub height: u32,
    /// Its time.
    pub time: u32,
    /// Its transfer count.
    pub transfers: usize,
    /// Who it paid.
    pub reward_address: String,
    /// Set when it came with a branch switch.
    pub reorg: Option<ReorgView>,
}

/// Fee per byte of a transfer, for display.
pub fn fee_rate(transfer: &Transfer) -> f64 {
    transfer.fee.as_units() as f64 / transfer.encoded_size() as f64
}

impl MempoolTransferView {
    /// The view of a pooled transfer admitted at `added`.
    pub fn new(spec: &ChainSpec, transfer: &Transfer, added: u64) -> MempoolTransferView {
        MempoolTransferView {
            transfer: TransferView::new(spec, transfer),
            size: transfer.encoded_size(),
            fee_rate: fee_rate(transfer),
            added,
        }
    }
}

impl NewBlockView {
    /// The event for the new tip `block`.
    pub fn new(spec: &ChainSpec, block: &Block, reorg: Option<ReorgView>) -> NewBlockView {
        NewBlockView {
            hash: block.hash().to_hex(),
            height: block.header.height,
            time: block.header.time,
            transfers: block.transfers.len(),
            reward_address: address(spec, &block.reward_address),
            reorg,
        }
    }
}

/// One block in `GET /api/v1/blocks`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockSummaryView {
    /// Its hash.
    pub hash: String,
    /// Its height.
    pub height: u32,
    /// Its time.
    pub time: u32,
    /// Its compact target.
    pub bits: String,
    /// Its transfer count.
    pub transfers: usize,
    /// Its encoded size.
    pub size: usize,
    /// Subsidy plus fees.
    pub reward: u64,
    /// Who it paid.
    pub reward_address: String,
}

impl BlockSummaryView {
    /// The summary of `block`.
    pub fn new(spec: &ChainSpec, block: &Block) -> BlockSummaryView {
        BlockSummaryView {
            hash: block.hash().to_hex(),
            height: block.header.height,
            time: block.header.time,
            bits: block.header.bits.to_string(),
            transfers: block.transfers.len(),
            size: block.encoded_size(),
            reward: block.reward.as_units(),
            reward_address: address(spec, &block.reward_address),
        }
    }
}
