//! The mempool and fees: `GET /api/v1/mempool` (pending transfers, best fee rate first) and
//! `GET /api/v1/fees` (the floor, and the rate that should get into the next block).
use super::views::{FeesView, MempoolTransferView, MempoolView};
use super::{ApiError, ApiState};
use crate::core::primitives::Block;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;

/// Size of a transfer with an empty memo, in bytes.
pub const TYPICAL_TRANSFER_BYTES: usize = 164;
/// Default and largest mempool page.
const DEFAULT_MEMPOOL_PAGE: usize = 100;
const MAX_MEMPOOL_PAGE: usize = 1000;

/// Query of the mempool call.
#[derive(Debug, Deserialize)]
pub(super) struct MempoolQuery {
    limit: Option<usize>,
}

pub(super) async fn mempool(
    State(state): State<ApiState>,
    query: Result<Query<MempoolQuery>, QueryRejection>,
) -> Result<Json<MempoolView>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::malformed(e.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_MEMPOOL_PAGE);
    mempool_view(&state, limit).map(Json)
}

/// The pool's totals and its best `limit` (at most [`MAX_MEMPOOL_PAGE`]) transfers by fee
/// rate.
pub(crate) fn mempool_view(state: &ApiState, limit: usize) -> Result<MempoolView, ApiError> {
    let limit = limit.min(MAX_MEMPOOL_PAGE);
    let pool = state
        .shared
        .mempool
        .read()
        .map_err(|_| ApiError::Internal("mempool lock poisoned".into()))?;
    Ok(MempoolView {
        count: pool.len(),
        bytes: pool.bytes(),
        transfers: pool
            .by_fee_rate()
            .take(limit)
            .map(|entry| MempoolTransferView::new(&state.spec, &entry.transfer, entry.added_secs))
            .collect(),
    })
}

pub(super) async fn fees(State(state): State<ApiState>) -> Result<Json<FeesView>, ApiError> {
    let block_bytes = state
        .spec
        .max_block_bytes()
        .saturating_sub(Block::empty_encoded_size());
    let estimate = state
        .shared
        .mempool
        .read()
        .map_err(|_| ApiError::Internal("mempool lock poisoned".into()))?
        .fee_estimate(block_bytes);
    let size = TYPICAL_TRANSFER_BYTES as u64;
    Ok(Json(FeesView {
        min_fee_rate: estimate.min_fee_rate,
        suggested_fee_rate: estimate.suggested_fee_rate,
        typical_size: TYPICAL_TRANSFER_BYTES,
        min_fee: estimate.min_fee_rate.saturating_mul(size),
        suggested_fee: estimate.suggested_fee_rate.saturating_mul(size),
    }))
}
