//! The explorer's HTTP routes (axum): each handler checks its input, asks the
//! [`ExplorerView`], and renders a page; failures become HTML pages with the right status
//! (`400` for bad input, `404` for nothing found, `503` when the node cannot answer).
//!
//! ```text
//!   GET /                       home: tip, difficulty, hash rate, mempool, peers, charts,
//!                               latest blocks and pending transfers
//!   GET /blocks?before=H        best-chain blocks below H
//!   GET /block/{height|hash}    a block, ?page=N of its transfers
//!   GET /tx/{txid}              a transfer, pending or confirmed
//!   GET /address/{addr}         balance, nonce, pending, history (?cursor=C for older)
//!   GET /mempool                pending transfers, best fee rate first
//!   GET /peers                  this node on the network
//!   GET /search?q=              redirects to the block, transfer or address; else 404 page
//!   GET /static/explorer.css, /static/explorer.js   embedded, no build step
//! ```
//! Every response carries a strict Content-Security-Policy: scripts and styles only from
//! `/static`, so even markup that slipped past escaping could not run.
use crate::model::{BlockId, HexHash, SearchHit};
use crate::pages::{self, Layout};
use crate::view::{ExplorerView, ViewError};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use maud::Markup;
use serde::Deserialize;
use std::sync::Arc;

/// Transfers on one page of a block.
pub const BLOCK_TRANSFERS_PAGE: usize = 100;
/// Entries on one page of an address's history.
pub const HISTORY_PAGE: usize = 25;
/// Blocks on the home page and on one page of `/blocks`.
pub const BLOCKS_PAGE: usize = 15;
/// Pending transfers on the home page.
pub const HOME_MEMPOOL_ROWS: usize = 10;
/// Pending transfers on the mempool page.
pub const MEMPOOL_PAGE: usize = 500;
/// Blocks the home page's charts cover.
pub const CHART_BLOCKS: usize = 300;

const CSS: &str = include_str!("../static/explorer.css");
const JS: &str = include_str!("../static/explorer.js");
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// How the explorer is wired to its node.
#[derive(Clone, Debug)]
pub struct ExplorerConfig {
    /// Base path of the node's JSON API on the same origin (`/api/v1`): the script reads its
    /// server-sent events (`{api_base}/events`) and mempool (`{api_base}/mempool`) for live
    /// updates. `None` turns live updates off.
    pub api_base: Option<String>,
}

impl Default for ExplorerConfig {
    fn default() -> Self {
        ExplorerConfig {
            api_base: Some("/api/v1".to_string()),
        }
    }
}

/// What the handlers share.
#[derive(Clone)]
struct Explorer {
    view: Arc<dyn ExplorerView>,
    config: Arc<ExplorerConfig>,
}

/// Why a page could not be shown.
#[derive(Debug)]
struct PageError {
    status: StatusCode,
    heading: &'static str,
    text: String,
}

impl PageError {
    fn bad_request(text: impl Into<String>) -> PageError {
        PageError {
            status: StatusCode::BAD_REQUEST,
            heading: "That does not look right",
            text: text.into(),
        }
    }

    fn not_found(text: impl Into<String>) -> PageError {
        PageError {
            status: StatusCode::NOT_FOUND,
            heading: "Not found",
            text: text.into(),
        }
    }
}

impl From<ViewError> for PageError {
    fn from(error: ViewError) -> PageError {
        match error {
            ViewError::NotFound(text) => PageError::not_found(text),
            ViewError::BadInput(text) => PageError::bad_request(text),
            ViewError::Unavailable(text) => PageError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                heading: "The node cannot answer",
                text,
            },
        }
    }
}

impl Explorer {
    /// Renders `page` in the layout, or the error page it failed with.
    fn render(
        &self,
        query: &str,
        page: impl FnOnce(&Layout<'_>) -> Result<Markup, PageError>,
    ) -> Response {
        let chain = self.view.chain();
        let layout = Layout {
            chain: &chain,
            api_base: self.config.api_base.as_deref(),
            query,
        };
        match page(&layout) {
            Ok(markup) => markup.into_response(),
            Err(error) => {
                let title = error.status.canonical_reason().unwrap_or("Error");
                let markup = pages::message(&layout, title, error.heading, &error.text);
                (error.status, markup).into_response()
            }
        }
    }
}

/// The explorer's routes over `view`, to serve alone or merge into the node's API router.
/// It sets no fallback, so that it merges into a router that has one.
pub fn router(view: Arc<dyn ExplorerView>, config: ExplorerConfig) -> Router {
    let state = Explorer {
        view,
        config: Arc::new(config),
    };
    Router::new()
        .route("/", get(home))
        .route("/blocks", get(blocks))
        .route("/block/{id}", get(block))
        .route("/tx/{txid}", get(transaction))
        .route("/address/{address}", get(address))
        .route("/mempool", get(mempool))
        .route("/peers", get(peers))
        .route("/search", get(search))
        .route("/static/explorer.css", get(css))
        .route("/static/explorer.js", get(js))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn static_file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Pages link the files with the version in the query: a new node, a new URL.
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}

async fn css() -> Response {
    static_file("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    static_file("text/javascript; charset=utf-8", JS)
}

/// A query string axum could not parse, as a `400` page.
fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, PageError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| PageError::bad_request(format!("bad query string: {}", e.body_text())))
}

async fn home(State(ex): State<Explorer>) -> Response {
    ex.render("", |layout| {
        let summary = ex.view.summary()?;
        let blocks = ex.view.recent_blocks(None, BLOCKS_PAGE)?;
        let pool = ex.view.mempool(HOME_MEMPOOL_ROWS)?;
        let chart = ex.view.chart(CHART_BLOCKS)?;
        Ok(pages::home(layout, &summary, &blocks, &pool, &chart))
    })
}

#[derive(Debug, Deserialize)]
struct BlocksQuery {
    before: Option<u32>,
}

async fn blocks(
    State(ex): State<Explorer>,
    before: Result<Query<BlocksQuery>, QueryRejection>,
) -> Response {
    ex.render("", |layout| {
        let before = query(before)?.before;
        let rows = ex.view.recent_blocks(before, BLOCKS_PAGE)?;
        if rows.is_empty() {
            return Err(PageError::not_found(match before {
                Some(height) => format!("no best-chain blocks below height {height}"),
                None => "no blocks".to_string(),
            }));
        }
        Ok(pages::blocks_list(layout, &rows))
    })
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    page: Option<usize>,
}

async fn block(
    State(ex): State<Explorer>,
    Path(id): Path<String>,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    ex.render("", |layout| {
        let page = query(page)?.page.unwrap_or(1);
        let block_id: BlockId = id
            .parse()
            .map_err(|e| PageError::bad_request(format!("{e}")))?;
        let start = page
            .checked_sub(1)
            .and_then(|p| p.checked_mul(BLOCK_TRANSFERS_PAGE))
            .ok_or_else(|| PageError::bad_request(format!("there is no page {page}")))?;
        let found = ex
            .view
            .block(&block_id, start..start.saturating_add(BLOCK_TRANSFERS_PAGE))?;
        if page > 1 && start >= found.transfer_count {
            return Err(PageError::not_found(format!(
                "block {} has {} transfers: there is no page {page}",
                found.height, found.transfer_count
            )));
        }
        Ok(pages::block(layout, &found, page, BLOCK_TRANSFERS_PAGE))
    })
}

async fn transaction(State(ex): State<Explorer>, Path(txid): Path<String>) -> Response {
    ex.render("", |layout| {
        let txid: HexHash = txid.parse().map_err(|_| {
            PageError::bad_request(format!("{txid:?} is not a transaction id (64 hex digits)"))
        })?;
        let tx = ex.view.transaction(&txid)?;
        Ok(pages::transaction(layout, &tx))
    })
}

#[derive(Debug, Deserialize)]
struct CursorQuery {
    cursor: Option<String>,
}

async fn address(
    State(ex): State<Explorer>,
    Path(address): Path<String>,
    cursor: Result<Query<CursorQuery>, QueryRejection>,
) -> Response {
    ex.render("", |layout| {
        let cursor = query(cursor)?.cursor;
        let page = ex.view.address(&address, cursor.as_deref(), HISTORY_PAGE)?;
        Ok(pages::address(layout, &page, cursor.is_none()))
    })
}

async fn mempool(State(ex): State<Explorer>) -> Response {
    ex.render("", |layout| {
        Ok(pages::mempool(layout, &ex.view.mempool(MEMPOOL_PAGE)?))
    })
}

async fn peers(State(ex): State<Explorer>) -> Response {
    ex.render("", |layout| Ok(pages::peers(layout, &ex.view.peers()?)))
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    q: Option<String>,
}

async fn search(
    State(ex): State<Explorer>,
    q: Result<Query<SearchQuery>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(SearchQuery { q })) => q.unwrap_or_default(),
        Err(_) => String::new(),
    };
    match ex.view.search(&q) {
        Ok(hit) => Redirect::to(&match hit {
            SearchHit::Block(id) => format!("/block/{id}"),
            SearchHit::Transaction(txid) => format!("/tx/{txid}"),
            SearchHit::Address(address) => format!("/address/{}", path_segment(&address)),
        })
        .into_response(),
        Err(ViewError::NotFound(_)) => ex.render(&q, |_| {
            Err(PageError {
                status: StatusCode::NOT_FOUND,
                heading: "Nothing matches",
                text: format!("No block, transaction or address matches “{}”.", q.trim()),
            })
        }),
        Err(error) => ex.render(&q, |_| Err(error.into())),
    }
}

/// `text` made safe as one URL path segment (addresses are plain bech32, but the view is not
/// trusted to say so).
fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
