//! The HTTP JSON API (axum), under `/api/v1`. Read-only handlers read the store directly
//! (sled reads are safe alongside the chain manager's writes); nothing here decides validity.
//!
//! Errors are JSON, `{"error": {"code": "...", "message": "..."}}`, with a matching status.
pub mod peers;
pub mod views;

use crate::core::consensus::ChainSpec;
use crate::core::primitives::BlockHash;
use crate::node::cookie::AdminToken;
use crate::node::driver::DriverEvent;
use crate::node::net::NetHandle;
use crate::node::store::{Store, StoreError};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::mpsc::Sender;
use std::sync::{Arc, RwLock};
use views::{BlockView, PeersView, TipView};

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The node's store (read only here).
    pub store: Store,
    /// The chain spec.
    pub spec: Arc<ChainSpec>,
    /// The genesis hash.
    pub genesis_hash: BlockHash,
    /// The network as the driver last saw it.
    pub peers: Arc<RwLock<PeersView>>,
    /// What admin calls reach.
    pub admin: AdminHandles,
}

/// The token admin calls must carry, and where they go.
#[derive(Clone)]
pub struct AdminHandles {
    /// The cookie's token.
    pub token: AdminToken,
    /// The swarm (dial, disconnect).
    pub net: NetHandle,
    /// The driver (ban, unban).
    pub driver: Sender<DriverEvent>,
}

/// An API failure, shown to the client as JSON.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Nothing matches.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The admin token is missing or wrong.
    #[error("{0}")]
    Unauthorized(String),
    /// The node cannot do it now.
    #[error("{0}")]
    Unavailable(String),
    /// The node failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store error while serving the API");
        ApiError::Internal(e.to_string())
    }
}

impl ApiError {
    fn code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.code();
        let body = serde_json::json!({ "error": { "code": code, "message": self.to_string() } });
        (status, Json(body)).into_response()
    }
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/tip", get(tip))
        .route("/api/v1/blocks/{id}", get(block))
        .route("/api/v1/peers", get(peers::peers))
        .route("/api/v1/admin/peers/connect", post(peers::connect))
        .route("/api/v1/admin/peers/disconnect", post(peers::disconnect))
        .route("/api/v1/admin/peers/ban", post(peers::ban))
        .route("/api/v1/admin/peers/unban", post(peers::unban))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such API route; see docs/API.md".to_string())
}

async fn tip(State(state): State<ApiState>) -> Result<Json<TipView>, ApiError> {
    let tip = state.store.tip()?;
    Ok(Json(TipView::new(
        &state.spec,
        state.genesis_hash.to_hex(),
        &tip,
    )))
}

/// A block named by height (on the best chain) or by hash (on any branch).
enum BlockId {
    Height(u32),
    Hash(BlockHash),
}

fn parse_block_id(id: &str) -> Result<BlockId, ApiError> {
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

async fn block(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<BlockView>, ApiError> {
    let store = &state.store;
    let hash = match parse_block_id(&id)? {
        BlockId::Hash(hash) => hash,
        BlockId::Height(height) => store
            .hash_at_height(height)?
            .ok_or_else(|| ApiError::NotFound(format!("no block at height {height}")))?,
    };
    let not_found = || ApiError::NotFound(format!("no block with hash {hash}"));
    let block = store.block(&hash)?.ok_or_else(not_found)?;
    let entry = store.index_entry(&hash)?.ok_or_else(not_found)?;
    let tip = store.tip()?;
    let best_chain = store.is_on_best_chain(&entry)?;
    let next_hash = if best_chain {
        store
            .hash_at_height(entry.height() + 1)?
            .map(|h| h.to_hex())
    } else {
        None
    };
    Ok(Json(BlockView::new(
        &state.spec,
        &block,
        &entry,
        tip.height(),
        best_chain,
        next_hash,
    )))
}
