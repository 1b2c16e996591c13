//! The block explorer's view of this node: [`NodeExplorer`] implements
//! [`cairn_explorer::ExplorerView`] over the store and [`crate::node::NodeShared`], through
//! the same functions the JSON API's handlers use (`api::chain::find_block`,
//! `api::accounts::history_view`, ...), so a page and its API call cannot disagree. It turns
//! the API's views into the explorer's view models; it decides nothing.
//!
//! It owns one thing of its own: a cache of the per-block numbers the home page's charts
//! show (time, difficulty, transfer count of the last few hundred blocks), so that the home
//! page reads a block from the store only once, not on every request.
//!
//! # Invariants
//! A cached chart point is keyed by height and kept with its block's hash: it is used only
//! while that hash is still the best chain's block at that height (a reorg replaces it). The
//! last whole series is kept with the tip it was read for, and answered only for that tip.
use crate::core::primitives::{BlockHash, Txid};
use crate::core::state::proof::verify_served;
use crate::node::api::views::{HistoryEntryView, TransferView};
use crate::node::api::{self, ApiError, ApiState};
use cairn_explorer::{
    AddressPage, BanRow, BlockId, BlockPage, BlockRow, ChainInfo, ChartPoint, ExplorerView,
    HexHash, HistoryKind, HistoryRow, MempoolPage, MempoolRow, PeerRow, PeersPage, StateProofRow,
    Summary, TransferRow, TxPage, TxStatus, ViewError,
};
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Mutex;

/// Blocks the hash-rate estimate looks back over (fewer near genesis).
pub const HASH_RATE_WINDOW: u32 = 120;
/// Most chart points kept.
const CHART_CACHE_LIMIT: usize = 2_000;

/// The explorer's view of a running node.
pub struct NodeExplorer {
    api: ApiState,
    chart_cache: Mutex<ChartCache>,
}

/// Chart points already read from the store.
#[derive(Default)]
struct ChartCache {
    /// Per height, with the hash of the block they were read from.
    points: BTreeMap<u32, (BlockHash, ChartPoint)>,
    /// The last series answered: for this tip and this many blocks.
    last: Option<(BlockHash, usize, Vec<ChartPoint>)>,
}

impl NodeExplorer {
    /// The proof of `address`'s account at the tip, checked here as a wallet would check it
    /// (against the header of the block it names, the same code).
    fn proof_row(&self, address: &str) -> Result<StateProofRow, ApiError> {
        let view = api::accounts::proof_view(&self.api, address, None)?;
        let parsed = api::parse_address(&self.api.spec, address)?;
        let checked = view
            .block_hash
            .parse::<BlockHash>()
            .ok()
            .is_some_and(|hash| verify_served(&view.proof, &parsed, &view.header, &hash).is_ok());
        Ok(StateProofRow {
            state_root: view.state_root,
            height: view.height,
            block_hash: view.block_hash,
            depth: view.proof.depth,
            checked,
        })
    }

    /// A view over what the API serves.
    pub fn new(api: ApiState) -> NodeExplorer {
        NodeExplorer {
            api,
            chart_cache: Mutex::new(ChartCache::default()),
        }
    }

    /// Network hash rate from the work and time of the last [`HASH_RATE_WINDOW`] blocks
    /// (0 while there are too few). Genesis is left out: its time is set, not mined.
    fn hash_rate(&self) -> Result<f64, ApiError> {
        let store = &self.api.store;
        let tip = store.tip()?;
        let back = tip.height().saturating_sub(HASH_RATE_WINDOW).max(1);
        if back >= tip.height() {
            return Ok(0.0);
        }
        let Some(old) = store
            .hash_at_height(back)?
            .map(|hash| store.index_entry(&hash))
            .transpose()?
            .flatten()
        else {
            return Ok(0.0);
        };
        Ok(crate::core::chain::stats::hash_rate(&old, &tip))
    }
}

impl From<ApiError> for ViewError {
    fn from(error: ApiError) -> ViewError {
        match error {
            ApiError::NotFound(message) => ViewError::NotFound(message),
            ApiError::BadRequest(message) | ApiError::Unauthorized(message) => {
                ViewError::BadInput(message)
            }
            ApiError::Refused {
                status, message, ..
            } if status.is_client_error() => ViewError::BadInput(message),
            ApiError::Unavailable(message) => ViewError::Unavailable(message),
            other => ViewError::Unavailable(format!("the node failed: {other}")),
        }
    }
}

fn transfer_row(view: TransferView) -> TransferRow {
    TransferRow {
        txid: view.txid,
        from: view.from,
        to: view.to,
        amount: view.amount,
        fee: view.fee,
        nonce: view.nonce,
        memo: view.memo,
    }
}

fn history_row(entry: HistoryEntryView) -> HistoryRow {
    let kind = match entry.kind.as_str() {
        "sent" => HistoryKind::Sent,
        "received" => HistoryKind::Received,
        "self" => HistoryKind::SelfTransfer,
        _ => HistoryKind::Reward,
    };
    HistoryRow {
        kind,
        txid: entry.txid,
        height: entry.height,
        block_hash: entry.block_hash,
        time: entry.time,
        confirmations: entry.confirmations,
        from: entry.from,
        to: entry.to,
        amount: entry.amount,
        fee: entry.fee,
    }
}

fn bad_hash(hash: &HexHash) -> ViewError {
    ViewError::BadInput(format!("{hash} is not a hash"))
}

impl ExplorerView for NodeExplorer {
    fn chain(&self) -> ChainInfo {
        let spec = &self.api.spec;
        ChainInfo {
            name: spec.file.name.clone(),
            symbol: spec.file.symbol.clone(),
            decimals: spec.file.decimals,
            address_prefix: spec.hrp().to_string(),
            node_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    fn summary(&self) -> Result<Summary, ViewError> {
        let info = api::chain::info_view(&self.api)?;
        Ok(Summary {
            height: info.height,
            tip_hash: info.tip,
            tip_time: info.tip_time,
            bits: info.bits,
            difficulty: info.difficulty,
            hash_rate: self.hash_rate()?,
            mempool_count: info.mempool_count,
            mempool_bytes: info.mempool_bytes,
            peers: info.peers,
            syncing: info.syncing,
        })
    }

    fn recent_blocks(&self, before: Option<u32>, limit: usize) -> Result<Vec<BlockRow>, ViewError> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        Ok(api::chain::recent_summaries(&self.api, before, limit)?
            .into_iter()
            .map(|b| BlockRow {
                hash: b.hash,
                height: b.height,
                time: b.time,
                transfers: b.transfers,
                size: b.size,
                reward: b.reward,
                reward_address: b.reward_address,
            })
            .collect())
    }

    fn block(&self, id: &BlockId, transfers: Range<usize>) -> Result<BlockPage, ViewError> {
        let id = match id {
            BlockId::Height(height) => api::chain::BlockId::Height(*height),
            BlockId::Hash(hash) => {
                api::chain::BlockId::Hash(hash.as_str().parse().map_err(|_| bad_hash(hash))?)
            }
        };
        let found = api::chain::find_block(&self.api, id)?;
        let spec = &self.api.spec;
        let block = &found.block;
        let header = &block.header;
        let count = block.transfers.len();
        let shown = cairn_explorer::view::clamp_range(transfers, count);
        Ok(BlockPage {
            hash: block.hash().to_hex(),
            height: header.height,
            version: header.version,
            prev_hash: header.prev_hash.to_hex(),
            next_hash: found.next_hash,
            tx_root: header.tx_root.to_hex(),
            state_root: header.state_root.to_hex(),
            time: header.time,
            bits: header.bits.to_string(),
            difficulty: api::chain::difficulty(spec, header.bits),
            nonce: header.nonce,
            extra_nonce: block.extra_nonce,
            chain_work: found.entry.chain_work.to_string(),
            best_chain: found.best_chain,
            confirmations: if found.best_chain {
                found.tip_height.saturating_sub(header.height) + 1
            } else {
                0
            },
            reward_address: api::views::address(spec, &block.reward_address),
            reward: block.reward.as_units(),
            size: block.encoded_size(),
            transfer_count: count,
            first_transfer: shown.start,
            transfers: block.transfers[shown]
                .iter()
                .map(|t| transfer_row(TransferView::new(spec, t)))
                .collect(),
        })
    }

    fn transaction(&self, txid: &HexHash) -> Result<TxPage, ViewError> {
        let parsed: Txid = txid.as_str().parse().map_err(|_| bad_hash(txid))?;
        let view = api::transactions::transaction_view(&self.api, parsed)?;
        let status = match (view.block_hash, view.height, view.time) {
            (Some(block_hash), Some(height), Some(time)) => TxStatus::Confirmed {
                block_hash,
                height,
                time,
                confirmations: view.confirmations,
            },
            _ => TxStatus::Pending,
        };
        Ok(TxPage {
            transfer: transfer_row(view.transfer),
            status,
            fee_rate: view.fee_rate,
        })
    }

    fn address(
        &self,
        address: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<AddressPage, ViewError> {
        let account = api::accounts::account_view(&self.api, address)?;
        let history = api::accounts::history_view(&self.api, address, limit, cursor)?;
        let proof = self.proof_row(address)?;
        Ok(AddressPage {
            address: account.address,
            balance: account.balance,
            nonce: account.nonce,
            next_nonce: account.next_nonce,
            pending: history.pending.into_iter().map(transfer_row).collect(),
            history: history.items.into_iter().map(history_row).collect(),
            next_cursor: history.next,
            proof: Some(proof),
        })
    }

    fn mempool(&self, limit: usize) -> Result<MempoolPage, ViewError> {
        let view = api::mempool::mempool_view(&self.api, limit)?;
        Ok(MempoolPage {
            count: view.count,
            bytes: view.bytes,
            rows: view
                .transfers
                .into_iter()
                .map(|t| MempoolRow {
                    transfer: transfer_row(t.transfer),
                    size: t.size,
                    fee_rate: t.fee_rate,
                    added: t.added,
                })
                .collect(),
        })
    }

    fn peers(&self) -> Result<PeersPage, ViewError> {
        let view = api::peers::peers_view(&self.api)?;
        Ok(PeersPage {
            peer_id: view.peer_id,
            listen_addresses: view.listen_addresses,
            peers: view
                .peers
                .into_iter()
                .map(|p| PeerRow {
                    peer_id: p.peer_id,
                    address: p.address,
                    direction: p.direction,
                    agent: p.agent,
                    height: p.height,
                    score: p.score,
                })
                .collect(),
            bans: view
                .bans
                .into_iter()
                .map(|b| BanRow {
                    peer_id: b.peer_id,
                    until: b.until,
                    reason: b.reason,
                })
                .collect(),
        })
    }

    fn chart(&self, blocks: usize) -> Result<Vec<ChartPoint>, ViewError> {
        let store = &self.api.store;
        let tip_entry = store.tip().map_err(ApiError::from)?;
        let (tip, tip_hash) = (tip_entry.height(), tip_entry.hash());
        // A poisoned cache is only a slower page: go on with it.
        let mut cache = self
            .chart_cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Between two blocks every home page asks for the same series.
        if let Some((hash, n, series)) = &cache.last {
            if *hash == tip_hash && *n == blocks {
                return Ok(series.clone());
            }
        }
        let span = u32::try_from(blocks).unwrap_or(u32::MAX).min(tip + 1);
        let first = tip + 1 - span;
        let mut points = Vec::with_capacity(span as usize);
        for height in first..=tip {
            let Some(hash) = store.hash_at_height(height).map_err(ApiError::from)? else {
                break;
            };
            if let Some((cached, point)) = cache.points.get(&height) {
                if *cached == hash {
                    points.push(*point);
                    continue;
                }
            }
            let Some(block) = store.block(&hash).map_err(ApiError::from)? else {
                break;
            };
            let point = ChartPoint {
                height,
                time: block.header.time,
                difficulty: api::chain::difficulty(&self.api.spec, block.header.bits),
                transfers: block.transfers.len(),
            };
            cache.points.insert(height, (hash, point));
            points.push(point);
        }
        while cache.points.len() > CHART_CACHE_LIMIT {
            cache.points.pop_first();
        }
        cache.last = Some((tip_hash, blocks, points.clone()));
        Ok(points)
    }
}
