//! The HTTP JSON API (axum), under `/api/v1`, and Prometheus metrics at `/metrics`.
//! Read-only handlers read the store (sled reads are safe alongside the driver's writes) and
//! what the driver shares ([`NodeShared`]); submissions and admin calls go to the driver.
//! Nothing here decides validity.
//!
//! ```text
//!   chain.rs         GET  info, tip, blocks, headers
//!   transactions.rs  POST transactions (submit), GET transactions/{txid}
//!   accounts.rs      GET  accounts/{address}, accounts/{address}/history, …/proof
//!   mempool.rs       GET  mempool, fees
//!   mining.rs        GET  mining, POST admin/mining
//!   health.rs        GET  health (can the store write?)
//!   live.rs          GET  events (server-sent events), /metrics
//!   peers.rs         GET  peers, POST admin/peers/*
//!   server.rs        the HTTP server: connection budget, timeouts, body deadline, Host check
//! ```
//! The block explorer's pages (`cairn-explorer`, over `node::explorer`) are merged into
//! this router in `node::run`, or served on their own address with
//! [`explorer_feed_router`].
//!
//! Errors are JSON, `{"error": {"code": "...", "message": "..."}}`, with a matching status,
//! [`ApiError`] being their one owner: handlers return it, and [`json_errors`] turns what axum
//! answers by itself under `/api/` (`405`, extractor rejections) into one. Request bodies are
//! limited to [`MAX_BODY_BYTES`].
pub mod accounts;
pub mod chain;
pub mod health;
pub mod live;
pub mod mempool;
pub mod mining;
pub mod peers;
pub mod server;
pub mod transactions;
pub use crate::core::views;

use crate::core::consensus::ChainSpec;
use crate::core::primitives::{Address, BlockHash};
use crate::node::cookie::AdminToken;
use crate::node::driver::DriverEvent;
use crate::node::net::NetHandle;
use crate::node::store::{Store, StoreError};
use crate::node::NodeShared;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::mpsc::Sender;
use std::sync::Arc;

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The node's store (read only here).
    pub store: Store,
    /// The chain spec.
    pub spec: Arc<ChainSpec>,
    /// The genesis hash.
    pub genesis_hash: BlockHash,
    /// Mempool, events, metrics and views the driver keeps.
    pub shared: NodeShared,
    /// The driver (submissions, bans, mining on/off).
    pub driver: Sender<DriverEvent>,
    /// What admin calls need.
    pub admin: AdminHandles,
}

/// The token admin calls must carry, and the swarm they reach.
#[derive(Clone)]
pub struct AdminHandles {
    /// The cookie's token.
    pub token: AdminToken,
    /// The swarm (dial, disconnect).
    pub net: NetHandle,
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
    /// A refusal with its own code (a transfer the mempool refused, a bad address, ...).
    #[error("{message}")]
    Refused {
        /// The HTTP status.
        status: StatusCode,
        /// The machine-readable code.
        code: &'static str,
        /// The sentence for people.
        message: String,
    },
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if let StoreError::Closed = e {
            return ApiError::Unavailable(format!("{e} (see GET /api/v1/health)"));
        }
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
            ApiError::Refused { status, code, .. } => (*status, code),
        }
    }

    /// A malformed request body or parameter (`400 malformed`).
    pub fn malformed(message: impl Into<String>) -> ApiError {
        ApiError::Refused {
            status: StatusCode::BAD_REQUEST,
            code: "malformed",
            message: message.into(),
        }
    }

    /// A request body over [`MAX_BODY_BYTES`] (`413 payload_too_large`).
    pub fn payload_too_large() -> ApiError {
        ApiError::Refused {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload_too_large",
            message: format!("the request body is over the limit of {MAX_BODY_BYTES} bytes"),
        }
    }

    /// A request body not received within `deadline` (`408 request_timeout`).
    pub fn request_timeout(deadline: std::time::Duration) -> ApiError {
        ApiError::Refused {
            status: StatusCode::REQUEST_TIMEOUT,
            code: "request_timeout",
            message: format!(
                "the request body did not arrive within {} s",
                deadline.as_secs()
            ),
        }
    }

    /// A request whose `Host` header names no host this node serves (`403 host_not_allowed`).
    pub fn host_not_allowed(host: &str) -> ApiError {
        ApiError::Refused {
            status: StatusCode::FORBIDDEN,
            code: "host_not_allowed",
            message: format!(
                "this node does not answer to Host {host:?}; use localhost or its address, or \
                 start the node with `--allow-host NAME` (see docs/API.md)"
            ),
        }
    }

    /// The error for an answer axum made by itself: its `status`, the text it gave (if
    /// any) and, for `405`, the methods allowed.
    fn from_plain_answer(
        status: StatusCode,
        text: &str,
        request: &str,
        allow: Option<&str>,
    ) -> ApiError {
        let (code, message) = match status {
            StatusCode::NOT_FOUND => ("not_found", format!("no such API route: {request}")),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method_not_allowed",
                format!(
                    "{request}: method not allowed (allowed: {})",
                    allow.unwrap_or("none")
                ),
            ),
            StatusCode::PAYLOAD_TOO_LARGE => return ApiError::payload_too_large(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", text.to_string()),
            StatusCode::UNPROCESSABLE_ENTITY => ("malformed", text.to_string()),
            s if s.is_server_error() => ("internal", text.to_string()),
            _ => ("bad_request", text.to_string()),
        };
        let message = if message.is_empty() {
            format!("{request}: {status}")
        } else {
            message
        };
        ApiError::Refused {
            status,
            code,
            message,
        }
    }

    /// A JSON body axum could not take.
    fn from_json_rejection(rejection: JsonRejection) -> ApiError {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large()
        } else {
            ApiError::malformed(format!("bad request body: {}", rejection.body_text()))
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.code();
        let body = crate::core::views::ErrorView::new(code, self.to_string());
        (status, Json(body)).into_response()
    }
}

/// The body of a call, or the JSON error for a malformed or oversized one.
pub(crate) fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(b)| b).map_err(ApiError::from_json_rejection)
}

/// Parses a bech32m address of this chain (`400 bad_address` otherwise).
pub(crate) fn parse_address(spec: &ChainSpec, text: &str) -> Result<Address, ApiError> {
    Address::from_bech32(text.trim(), spec.hrp()).map_err(|e| ApiError::Refused {
        status: StatusCode::BAD_REQUEST,
        code: "bad_address",
        message: format!(
            "{text:?} is not an address of this chain ({}…): {e}",
            spec.hrp()
        ),
    })
}

/// Checks the admin cookie's token in `Authorization: Bearer <token>`.
pub(crate) fn authorize(state: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    let offered = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match offered {
        Some(token) if state.admin.token.matches(token) => Ok(()),
        Some(_) => Err(ApiError::Unauthorized(
            "wrong admin token: use the one in the node's <data-dir>/.cookie".into(),
        )),
        None => Err(ApiError::Unauthorized(
            "admin calls need `Authorization: Bearer <token>` with the token from the node's <data-dir>/.cookie".into(),
        )),
    }
}

/// A copy of a view the driver keeps (`what` names it in the error if its lock is poisoned).
pub(crate) fn snapshot<T: Clone>(view: &std::sync::RwLock<T>, what: &str) -> Result<T, ApiError> {
    view.read()
        .map(|view| view.clone())
        .map_err(|_| ApiError::Internal(format!("{what} view lock poisoned")))
}

/// Hands `event` to the driver.
pub(crate) fn to_driver(state: &ApiState, event: DriverEvent) -> Result<(), ApiError> {
    state
        .driver
        .send(event)
        .map_err(|_| ApiError::Unavailable("the node is shutting down".into()))
}

/// Waits for the driver's answer to a call sent with [`to_driver`].
pub(crate) async fn driver_reply<T>(
    reply: tokio::sync::oneshot::Receiver<T>,
) -> Result<T, ApiError> {
    match tokio::time::timeout(std::time::Duration::from_secs(30), reply).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(_)) => Err(ApiError::Unavailable("the node is shutting down".into())),
        Err(_) => Err(ApiError::Unavailable(
            "the node is busy (no answer within 30 s); try again".into(),
        )),
    }
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/info", get(chain::info))
        .route("/api/v1/tip", get(chain::tip))
        .route("/api/v1/blocks", get(chain::recent_blocks))
        .route("/api/v1/blocks/{id}", get(chain::block))
        .route("/api/v1/headers", get(chain::headers))
        .route("/api/v1/transactions", post(transactions::submit))
        .route("/api/v1/transactions/{txid}", get(transactions::status))
        .route("/api/v1/accounts/{address}", get(accounts::account))
        .route("/api/v1/accounts/{address}/history", get(accounts::history))
        .route("/api/v1/accounts/{address}/proof", get(accounts::proof))
        .route("/api/v1/mempool", get(mempool::mempool))
        .route("/api/v1/fees", get(mempool::fees))
        .route("/api/v1/mining", get(mining::mining))
        .route("/api/v1/health", get(health::health))
        .route("/api/v1/admin/mining", post(mining::set_mining))
        .route("/api/v1/events", get(live::events))
        .route("/metrics", get(live::metrics))
        .route("/api/v1/peers", get(peers::peers))
        .route("/api/v1/admin/peers/connect", post(peers::connect))
        .route("/api/v1/admin/peers/disconnect", post(peers::disconnect))
        .route("/api/v1/admin/peers/ban", post(peers::ban))
        .route("/api/v1/admin/peers/unban", post(peers::unban))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(json_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_request,
        ))
        .with_state(state)
}

/// Counts every request.
async fn count_request(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    state.shared.metrics.http_requests.inc();
    next.run(request).await
}

/// Makes an error answer that is not JSON (one axum made by itself: `405`, a path, query or
/// body extractor's rejection) an [`ApiError`], so that every error under `/api/` is JSON
/// with a code.
async fn json_errors(request: Request, next: Next) -> Response {
    let described = format!("{} {}", request.method(), request.uri().path());
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let allow = response.headers().get(axum::http::header::ALLOW).cloned();
    // axum's own answers are one short sentence.
    let text = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let allowed = allow.as_ref().and_then(|v| v.to_str().ok());
    let mut answer =
        ApiError::from_plain_answer(status, &text, &described, allowed).into_response();
    if let Some(allow) = allow {
        answer
            .headers_mut()
            .insert(axum::http::header::ALLOW, allow);
    }
    answer
}

/// The read-only routes the block explorer's pages call for live updates (events, recent
/// blocks, the mempool), for an explorer served on its own address (`--explorer-addr`).
pub fn explorer_feed_router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/events", get(live::events))
        .route("/api/v1/blocks", get(chain::recent_blocks))
        .route("/api/v1/mempool", get(mempool::mempool))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(json_errors))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such API route; see docs/API.md".to_string())
}
