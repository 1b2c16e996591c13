//! Cairn's local block explorer: HTML pages rendered on the server over a read-only view of
//! the node, with live updates from the node's event stream.
//!
//! The explorer owns its view models ([`model`]), the [`ExplorerView`] trait the node
//! implements, the pages ([`pages`], [`charts`]), and an axum [`router`] that the node merges
//! into its HTTP server. It names no storage, networking or mempool types, and decides nothing
//! about the chain: it shows what the view returns.
//!
//! ```text
//!   browser ──GET /, /block/{id}, /tx/{txid}, /address/{addr}, /mempool, /peers, /search──►
//!       routes (parse and check the input)
//!         └─► ExplorerView (the node: store + mempool + peers)  ──► view models
//!               └─► pages (maud templates: escaped HTML, inline SVG charts) ──► browser
//!   browser ◄── /static/explorer.{css,js} (embedded; no build step)
//!   browser ◄── SSE /api/v1/events (the node's API): explorer.js prepends new rows
//! ```
//!
//! Every page reads fine without JavaScript: the script only turns UTC times into local and
//! relative ones, adds copy buttons and the theme toggle, and applies live updates. Everything
//! that comes from the chain (memos above all) is escaped by the templates.
pub mod charts;
#[cfg(feature = "fake")]
pub mod fake;
pub mod format;
pub mod model;
pub mod pages;
pub mod routes;
pub mod view;

pub use model::*;
pub use routes::{router, ExplorerConfig};
pub use view::{ExplorerView, ViewError};
