//! The explorer's view models: plain data the pages render, filled in by an
//! [`crate::ExplorerView`]. Hashes and addresses are display strings (lowercase hex, bech32m);
//! amounts are base units, turned into coins with [`ChainInfo::decimals`] when rendered.
//!
//! Also the two kinds of identifiers users type, each with a checked parser: [`BlockId`] and
//! [`HexHash`].
use std::fmt;
use std::str::FromStr;

/// What the pages need to know of the chain itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainInfo {
    /// Chain name, e.g. "Cairn Dev".
    pub name: String,
    /// Ticker, e.g. "dCAIRN".
    pub symbol: String,
    /// Decimals of one coin (8 on the built-in chains).
    pub decimals: u8,
    /// bech32m prefix of addresses.
    pub address_prefix: String,
    /// Node version, for the footer.
    pub node_version: String,
}

/// The home page's numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Tip height.
    pub height: u32,
    /// Tip hash.
    pub tip_hash: String,
    /// Tip timestamp, Unix seconds.
    pub tip_time: u32,
    /// Tip compact target, e.g. `0x1f00ffff`.
    pub bits: String,
    /// Tip difficulty relative to the pow limit.
    pub difficulty: f64,
    /// Estimated network hash rate, hashes per second (work over time of recent blocks).
    pub hash_rate: f64,
    /// Transfers in the mempool.
    pub mempool_count: usize,
    /// Their encoded bytes.
    pub mempool_bytes: usize,
    /// Connected peers.
    pub peers: usize,
    /// Whether the node is downloading blocks.
    pub syncing: bool,
}

/// One block in a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockRow {
    /// Its hash.
    pub hash: String,
    /// Its height.
    pub height: u32,
    /// Its timestamp.
    pub time: u32,
    /// Transfers in it.
    pub transfers: usize,
    /// Encoded size, bytes.
    pub size: usize,
    /// Subsidy plus fees, base units.
    pub reward: u64,
    /// Who it paid.
    pub reward_address: String,
}

/// One transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferRow {
    /// Its id.
    pub txid: String,
    /// Sender address.
    pub from: String,
    /// Recipient address.
    pub to: String,
    /// Base units.
    pub amount: u64,
    /// Base units.
    pub fee: u64,
    /// Sender nonce.
    pub nonce: u64,
    /// Memo as text (UTF-8, invalid bytes replaced). Chain data: always rendered escaped.
    pub memo: String,
}

/// A block with one page of its transfers.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockPage {
    /// Its hash.
    pub hash: String,
    /// Its height.
    pub height: u32,
    /// Header version.
    pub version: u32,
    /// Parent hash (all zeros for genesis).
    pub prev_hash: String,
    /// The next block on the best chain, if any.
    pub next_hash: Option<String>,
    /// Merkle root of the reward leaf and transfers.
    pub tx_root: String,
    /// State root after the block.
    pub state_root: String,
    /// Timestamp.
    pub time: u32,
    /// Compact target.
    pub bits: String,
    /// Difficulty relative to the pow limit.
    pub difficulty: f64,
    /// Header nonce.
    pub nonce: u32,
    /// Extra nonce in the body.
    pub extra_nonce: u64,
    /// Cumulative work, hex.
    pub chain_work: String,
    /// Whether it is on the best chain.
    pub best_chain: bool,
    /// Blocks on top of it, itself included (0 off the best chain).
    pub confirmations: u32,
    /// Who was paid.
    pub reward_address: String,
    /// Subsidy plus fees, base units.
    pub reward: u64,
    /// Encoded size, bytes.
    pub size: usize,
    /// All transfers in the block.
    pub transfer_count: usize,
    /// Index (0-based) of the first transfer in `transfers`.
    pub first_transfer: usize,
    /// The requested page of transfers.
    pub transfers: Vec<TransferRow>,
}

/// Where a transfer is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// In the mempool.
    Pending,
    /// In the best chain.
    Confirmed {
        /// Its block.
        block_hash: String,
        /// Its block's height.
        height: u32,
        /// Its block's time.
        time: u32,
        /// Blocks on top of its block, the block included.
        confirmations: u32,
    },
}

/// The transaction page.
#[derive(Clone, Debug, PartialEq)]
pub struct TxPage {
    /// The transfer.
    pub transfer: TransferRow,
    /// Pending or confirmed.
    pub status: TxStatus,
    /// Fee per encoded byte.
    pub fee_rate: f64,
}

/// How an address took part in a history entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryKind {
    /// It sent the transfer.
    Sent,
    /// It received the transfer.
    Received,
    /// It sent to itself.
    SelfTransfer,
    /// A block paid it.
    Reward,
}

impl HistoryKind {
    /// A word for people.
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryKind::Sent => "sent",
            HistoryKind::Received => "received",
            HistoryKind::SelfTransfer => "to self",
            HistoryKind::Reward => "block reward",
        }
    }
}

/// One confirmed entry of an address's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryRow {
    /// Sent, received, to self, or a reward.
    pub kind: HistoryKind,
    /// The transfer (none for a reward).
    pub txid: Option<String>,
    /// Block height.
    pub height: u32,
    /// Block hash.
    pub block_hash: String,
    /// Block time.
    pub time: u32,
    /// Confirmations of the block.
    pub confirmations: u32,
    /// Sender (none for a reward).
    pub from: Option<String>,
    /// Recipient.
    pub to: String,
    /// Base units.
    pub amount: u64,
    /// Base units (0 for a reward).
    pub fee: u64,
}

/// The address page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressPage {
    /// The address, as the chain writes it.
    pub address: String,
    /// Balance on the best chain, base units.
    pub balance: u64,
    /// Nonce on the best chain.
    pub nonce: u64,
    /// The nonce its next transfer should carry.
    pub next_nonce: u64,
    /// Pending transfers sent or received (first page only).
    pub pending: Vec<TransferRow>,
    /// Confirmed entries, newest first.
    pub history: Vec<HistoryRow>,
    /// Cursor of the next (older) page.
    pub next_cursor: Option<String>,
    /// What the balance is proven against (`None`: the node gave no proof).
    pub proof: Option<StateProofRow>,
}

/// An account's state proof, as the address page shows it: the state root the account's
/// path leads to and the block whose header commits to that root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateProofRow {
    /// The state root, hex.
    pub state_root: String,
    /// The block's height.
    pub height: u32,
    /// The block's hash, hex.
    pub block_hash: String,
    /// Levels of the path from the root to the account (or to where it would be).
    pub depth: usize,
    /// Whether the proof checked against that block's header.
    pub checked: bool,
}

/// One pending transfer.
#[derive(Clone, Debug, PartialEq)]
pub struct MempoolRow {
    /// The transfer.
    pub transfer: TransferRow,
    /// Encoded size, bytes.
    pub size: usize,
    /// Fee per byte.
    pub fee_rate: f64,
    /// When the pool admitted it, Unix seconds.
    pub added: u64,
}

/// The mempool page.
#[derive(Clone, Debug, PartialEq)]
pub struct MempoolPage {
    /// Transfers held.
    pub count: usize,
    /// Their bytes.
    pub bytes: usize,
    /// The best fee rates first.
    pub rows: Vec<MempoolRow>,
}

/// One connected peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerRow {
    /// Its peer id.
    pub peer_id: String,
    /// The connection's address.
    pub address: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// What it runs, once known.
    pub agent: Option<String>,
    /// Its best height, from its last status.
    pub height: Option<u32>,
    /// Misbehaviour score (a ban at 100).
    pub score: u32,
}

/// One banned peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BanRow {
    /// The peer id.
    pub peer_id: String,
    /// End of the ban, Unix seconds.
    pub until: u64,
    /// Why.
    pub reason: String,
}

/// The peers page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeersPage {
    /// This node's peer id.
    pub peer_id: String,
    /// Where it listens.
    pub listen_addresses: Vec<String>,
    /// Connected peers.
    pub peers: Vec<PeerRow>,
    /// Banned peers.
    pub bans: Vec<BanRow>,
}

/// One block's numbers for the charts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChartPoint {
    /// Height.
    pub height: u32,
    /// Timestamp.
    pub time: u32,
    /// Difficulty relative to the pow limit.
    pub difficulty: f64,
    /// Transfers in the block.
    pub transfers: usize,
}

/// Where a search leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchHit {
    /// A block (by height on the best chain or by hash).
    Block(BlockId),
    /// A transaction.
    Transaction(HexHash),
    /// An address, as the chain writes it.
    Address(String),
}

/// 64 lowercase hex digits: a block hash or a transaction id as typed by a user, checked.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HexHash(String);

/// Why a text is not a [`HexHash`] or a [`BlockId`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not 64 hex digits.
    #[error("{0:?} is not 64 hex digits")]
    NotAHash(String),
    /// Neither a height nor a hash.
    #[error("{0:?} is neither a block height nor a 64-hex-digit block hash")]
    NotABlockId(String),
}

impl HexHash {
    /// The hash as lowercase hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for HexHash {
    type Err = IdError;

    fn from_str(text: &str) -> Result<HexHash, IdError> {
        let trimmed = text.trim();
        if trimmed.len() == 64 && trimmed.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(HexHash(trimmed.to_ascii_lowercase()))
        } else {
            Err(IdError::NotAHash(text.to_string()))
        }
    }
}

impl fmt::Display for HexHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A block as a user names it: a height on the best chain, or a hash on any branch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockId {
    /// A height on the best chain.
    Height(u32),
    /// A block hash.
    Hash(HexHash),
}

impl FromStr for BlockId {
    type Err = IdError;

    fn from_str(text: &str) -> Result<BlockId, IdError> {
        let trimmed = text.trim();
        if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            return trimmed
                .parse()
                .map(BlockId::Height)
                .map_err(|_| IdError::NotABlockId(text.to_string()));
        }
        trimmed
            .parse()
            .map(BlockId::Hash)
            .map_err(|_| IdError::NotABlockId(text.to_string()))
    }
}

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockId::Height(height) => write!(f, "{height}"),
            BlockId::Hash(hash) => write!(f, "{hash}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_ids_parse_heights_and_hashes() {
        assert_eq!("42".parse(), Ok(BlockId::Height(42)));
        assert_eq!(" 0 ".parse(), Ok(BlockId::Height(0)));
        let hash = "AB".repeat(32);
        assert_eq!(
            hash.parse::<BlockId>().map(|id| id.to_string()),
            Ok("ab".repeat(32))
        );
        assert!("99999999999".parse::<BlockId>().is_err(), "over u32");
        assert!("-1".parse::<BlockId>().is_err());
        assert!("".parse::<BlockId>().is_err());
        assert!("zz".repeat(32).parse::<BlockId>().is_err());
        assert!("ab".repeat(31).parse::<HexHash>().is_err());
    }
}
