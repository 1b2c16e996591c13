//! The chain: `GET /api/v1/info`, `/tip`, `/blocks` (recent, paged), `/blocks/{id}` and
//! `/headers` (best-chain headers as bytes, for clients that check the chain themselves).
use super::views::{BlockSummaryView, BlockView, HeadersView, InfoView, TipView};
use super::{ApiError, ApiState};
use crate::core::chain::BlockIndexEntry;
use crate::core::consensus::target::CompactTarget;
use crate::core::consensus::ChainSpec;
use crate::core::primitives::MAX_MEMO_BYTES;
use crate::core::primitives::{Block, BlockHash};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use std::sync::atomic::Ordering;

/// Most blocks one `/blocks` page lists.
pub const MAX_BLOCKS_PAGE: u32 = 500;

/// The difficulty of `bits`: how many times harder than the pow limit (for people).
pub fn difficulty(spec: &ChainSpec, bits: CompactTarget) -> f64 {
    crate::core::chain::stats::difficulty(&spec.pow_limit, bits)
}

pub(super) async fn info(State(state): State<ApiState>) -> Result<Json<InfoView>, ApiError> {
    info_view(&state).map(Json)
}

/// The chain's constants and the node's state (`GET /api/v1/info`, the explorer's summary).
pub(crate) fn info_view(state: &ApiState) -> Result<InfoView, ApiError> {
    let tip = state.store.tip()?;
    let spec = &state.spec;
    let (mempool_count, mempool_bytes, min_fee_rate) = {
        let pool = state
            .shared
            .mempool
            .read()
            .map_err(|_| ApiError::Internal("mempool lock poisoned".into()))?;
        (pool.len(), pool.bytes(), pool.config().min_fee_rate)
    };
    let peers = state
        .shared
        .peers
        .read()
        .map(|view| view.peers.len())
        .unwrap_or(0);
    Ok(InfoView {
        chain: spec.file.name.clone(),
        chain_id: spec.chain_id(),
        genesis_hash: state.genesis_hash.to_hex(),
        symbol: spec.file.symbol.clone(),
        decimals: spec.file.decimals,
        address_prefix: spec.hrp().to_string(),
        height: tip.height(),
        tip: tip.hash().to_hex(),
        tip_time: tip.header.time,
        bits: tip.header.bits.to_string(),
        difficulty: difficulty(spec, tip.header.bits),
        mempool_count,
        mempool_bytes,
        peers,
        syncing: state.shared.syncing.load(Ordering::Relaxed),
        snapshot_fetch: state
            .shared
            .snapshot
            .read()
            .ok()
            .and_then(|view| view.clone()),
        snapshot_height: state.store.snapshot_base()?.map(|base| base.height),
        old_blocks: state
            .shared
            .old_blocks
            .read()
            .ok()
            .and_then(|view| view.clone()),
        indexed_height: state.store.indexed_height()?.min(tip.height()),
        version: env!("CARGO_PKG_VERSION").to_string(),
        min_fee_rate,
        max_memo_bytes: MAX_MEMO_BYTES,
    })
}

pub(super) async fn tip(State(state): State<ApiState>) -> Result<Json<TipView>, ApiError> {
    let tip = state.store.tip()?;
    Ok(Json(TipView::new(
        &state.spec,
        state.genesis_hash.to_hex(),
        &tip,
    )))
}

/// Query of `GET /api/v1/blocks`.
#[derive(Debug, Deserialize)]
pub(super) struct RecentQuery {
    /// Most blocks (default 20).
    limit: Option<u32>,
    /// Only blocks below this height (default: from the tip).
    before: Option<u32>,
}

/// `GET /api/v1/blocks?limit=N&before=H`: best-chain blocks, newest first.
pub(super) async fn recent_blocks(
    State(state): State<ApiState>,
    query: Result<Query<RecentQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<BlockSummaryView>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::malformed(e.body_text()))?;
    let limit = query.limit.unwrap_or(20).min(MAX_BLOCKS_PAGE);
    recent_summaries(&state, query.before, limit).map(Json)
}

/// Best-chain blocks below height `before` (from the tip when `None`), newest first, at most
/// `limit`.
pub(crate) fn recent_summaries(
    state: &ApiState,
    before: Option<u32>,
    limit: u32,
) -> Result<Vec<BlockSummaryView>, ApiError> {
    let tip = state.store.tip()?;
    let top = match before {
        Some(0) => return Ok(Vec::new()),
        Some(before) => before.min(tip.height() + 1) - 1,
        None => tip.height(),
    };
    let mut out = Vec::new();
    for height in (0..=top).rev().take(limit as usize) {
        let Some(hash) = state.store.hash_at_height(height)? else {
            break;
        };
        let Some(block) = state.store.block(&hash)? else {
            break;
        };
        out.push(BlockSummaryView::new(&state.spec, &block));
    }
    Ok(out)
}

/// Most headers one `/headers` call returns.
pub const MAX_HEADERS_PAGE: u32 = 2000;

/// Query of `/headers`.
#[derive(Debug, Deserialize)]
pub(super) struct HeadersQuery {
    /// The first height (default 0).
    from: Option<u32>,
    /// How many (default and at most [`MAX_HEADERS_PAGE`]).
    count: Option<u32>,
}

/// `GET /api/v1/headers?from=H&count=N`: best-chain headers from height `H` up, at most `N`.
pub(super) async fn headers(
    State(state): State<ApiState>,
    query: Result<Query<HeadersQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<HeadersView>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::malformed(e.body_text()))?;
    let from = query.from.unwrap_or(0);
    let count = query
        .count
        .unwrap_or(MAX_HEADERS_PAGE)
        .min(MAX_HEADERS_PAGE);
    let tip = state.store.tip()?;
    let mut headers = Vec::new();
    for height in (from..=tip.height()).take(count as usize) {
        let Some(hash) = state.store.hash_at_height(height)? else {
            break;
        };
        let entry = state.store.index_entry(&hash)?.ok_or_else(|| {
            ApiError::Internal(format!("best-chain block {hash} has no index entry"))
        })?;
        headers.push(entry.header.to_hex());
    }
    Ok(Json(HeadersView {
        from,
        tip_height: tip.height(),
        headers,
    }))
}

/// A block named by height (on the best chain) or by hash (on any branch).
pub(crate) enum BlockId {
    Height(u32),
    Hash(BlockHash),
}

pub(crate) fn parse_block_id(id: &str) -> Result<BlockId, ApiError> {
    if !id.is_empty() && id.len() <= 10 && id.bytes().all(|b| b.is_ascii_digit()) {
        return id
            .parse()
            .map(BlockId::Height)
            .map_err(|_| ApiError::BadRequest(format!("height {id} is out of range")));
    }
    id.parse().map(BlockId::Hash).map_err(|_| {
        ApiError::BadRequest(format!(
            "{id:?} is neither a height nor a 64-hex-digit block hash"
        ))
    })
}

pub(super) async fn block(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<BlockView>, ApiError> {
    let found = find_block(&state, parse_block_id(&id)?)?;
    Ok(Json(BlockView::new(
        &state.spec,
        &found.block,
        &found.entry,
        found.tip_height,
        found.best_chain,
        found.next_hash,
    )))
}

/// A stored block with its index entry and its place in the best chain.
pub(crate) struct FoundBlock {
    /// The block.
    pub block: Block,
    /// Its index entry.
    pub entry: BlockIndexEntry,
    /// Height of the best chain's tip.
    pub tip_height: u32,
    /// Whether it is on the best chain.
    pub best_chain: bool,
    /// The next best-chain block's hash.
    pub next_hash: Option<String>,
}

/// The index entry of the block `id` names, and whether it is on the best chain (`404` if
/// the node has none).
pub(crate) fn find_entry(
    state: &ApiState,
    id: BlockId,
) -> Result<(BlockIndexEntry, bool), ApiError> {
    let store = &state.store;
    let hash = match id {
        BlockId::Hash(hash) => hash,
        BlockId::Height(height) => store
            .hash_at_height(height)?
            .ok_or_else(|| ApiError::NotFound(format!("no block at height {height}")))?,
    };
    let entry = store
        .index_entry(&hash)?
        .ok_or_else(|| ApiError::NotFound(format!("no block with hash {hash}")))?;
    let best_chain = store.is_on_best_chain(&entry)?;
    Ok((entry, best_chain))
}

/// The block `id` names (`404` if the node has none).
pub(crate) fn find_block(state: &ApiState, id: BlockId) -> Result<FoundBlock, ApiError> {
    let store = &state.store;
    let (entry, best_chain) = find_entry(state, id)?;
    let hash = entry.hash();
    let block = store
        .block(&hash)?
        .ok_or_else(|| ApiError::NotFound(format!("no block with hash {hash}")))?;
    let tip = store.tip()?;
    let next_hash = if best_chain {
        store
            .hash_at_height(entry.height() + 1)?
            .map(|h| h.to_hex())
    } else {
        None
    };
    Ok(FoundBlock {
        block,
        entry,
        tip_height: tip.height(),
        best_chain,
        next_hash,
    })
}
