//! A blocking client of a node's HTTP API (docs/API.md). The JSON views it returns are the
//! node's own ([`cairn::core::views`]), re-exported here.
//!
//! Owns the HTTP agent and the mapping of transport and API failures to [`ClientError`]:
//! a node that cannot be reached ([`ClientError::NodeUnreachable`]), a JSON error the node
//! answered ([`ClientError::Api`], with its machine-readable code), and an answer that is
//! not what the contract says ([`ClientError::BadResponse`]). It does not decide anything:
//! building, checking and signing transfers is `send`'s job.
//!
//! Amounts, fees and nonces are base units (JSON integers), hashes lowercase hex and
//! addresses bech32m strings, exactly as the API sends them; the client checks that the
//! hashes it hands on are hashes.

use std::time::Duration;

use cairn::core::primitives::{BlockHash, Txid};
pub use cairn::core::views::{
    AccountProofView, AccountView, ErrorView, FeesView, HeadersView, HistoryEntryView, HistoryView,
    InfoView, SubmitTransferRequest, SubmitTransferResponse, TransactionView, TransferView,
};
use serde::de::DeserializeOwned;

use crate::chain::ChainParams;

/// How long one request may take, connecting included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read (the API's pages are far smaller).
const MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;

/// Why a call to the node failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// No connection (refused, unknown host, timeout, a bad URL).
    #[error(
        "node unreachable: cannot connect to {url} ({detail}); start a node (`cairn node`) \
         or point the wallet at a running one with --node URL (or CAIRN_NODE)"
    )]
    NodeUnreachable {
        /// The URL called.
        url: String,
        /// What the transport said.
        detail: String,
    },
    /// The node answered with a JSON error.
    #[error("the node refused the request ({status} {code}): {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The machine-readable code, e.g. `fee_too_low`.
        code: String,
        /// The node's sentence.
        message: String,
    },
    /// The answer is not what docs/API.md describes.
    #[error("unexpected answer from {url}: {detail}")]
    BadResponse {
        /// The URL called.
        url: String,
        /// What is wrong with it.
        detail: String,
    },
}

impl ClientError {
    /// The API error code, if the node answered with one.
    pub fn api_code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether no node answered at all.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ClientError::NodeUnreachable { .. })
    }
}

/// A client of one node.
#[derive(Clone, Debug)]
pub struct NodeClient {
    base: String,
    agent: ureq::Agent,
}

impl NodeClient {
    /// A client of the node at `base_url`, e.g. `http://127.0.0.1:7371`.
    pub fn new(base_url: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            // Non-2xx answers carry the node's JSON error: read them instead of failing.
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .build()
            .into();
        NodeClient {
            base: base_url.trim().trim_end_matches('/').to_string(),
            agent,
        }
    }

    /// The node's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET /api/v1/info`.
    pub fn info(&self) -> Result<InfoView, ClientError> {
        self.chain_info().map(|(info, _)| info)
    }

    /// `GET /api/v1/info`, and the chain parameters it gives (checked).
    pub fn chain_info(&self) -> Result<(InfoView, ChainParams), ClientError> {
        let info: InfoView = self.get("/api/v1/info")?;
        let chain = ChainParams::from_info(&info)
            .and_then(|chain| chain.validate().map(|()| chain))
            .map_err(|detail| ClientError::BadResponse {
                url: self.url("/api/v1/info"),
                detail,
            })?;
        Ok((info, chain))
    }

    /// `GET /api/v1/accounts/{address}`.
    pub fn account(&self, address: &str) -> Result<AccountView, ClientError> {
        self.get(&format!("/api/v1/accounts/{address}"))
    }

    /// `GET /api/v1/accounts/{address}/history?limit=N`.
    pub fn history(&self, address: &str, limit: Option<u32>) -> Result<HistoryView, ClientError> {
        let query = limit.map(|n| format!("?limit={n}")).unwrap_or_default();
        let path = format!("/api/v1/accounts/{address}/history{query}");
        let view: HistoryView = self.get(&path)?;
        for item in &view.items {
            self.check_hash(&path, "txid", item.txid.as_deref())?;
            self.check_hash(&path, "block_hash", Some(&item.block_hash))?;
        }
        for transfer in &view.pending {
            self.check_hash(&path, "txid", Some(&transfer.txid))?;
        }
        Ok(view)
    }

    /// `GET /api/v1/headers?from=H&count=N`.
    pub fn headers(&self, from: u32, count: u32) -> Result<HeadersView, ClientError> {
        self.get(&format!("/api/v1/headers?from={from}&count={count}"))
    }

    /// `GET /api/v1/accounts/{address}/proof?block=HASH`.
    pub fn account_proof(
        &self,
        address: &str,
        block: &BlockHash,
    ) -> Result<AccountProofView, ClientError> {
        self.get(&format!("/api/v1/accounts/{address}/proof?block={block}"))
    }

    /// `GET /api/v1/fees`.
    pub fn fees(&self) -> Result<FeesView, ClientError> {
        self.get("/api/v1/fees")
    }

    /// `POST /api/v1/transactions`.
    pub fn submit(
        &self,
        body: &SubmitTransferRequest,
    ) -> Result<SubmitTransferResponse, ClientError> {
        let path = "/api/v1/transactions";
        let url = self.url(path);
        let response = self
            .agent
            .post(&url)
            .send_json(body)
            .map_err(|e| transport_error(&url, e))?;
        let answer: SubmitTransferResponse = read_response(&url, response)?;
        self.check_hash(path, "txid", Some(&answer.txid))?;
        self.check_hash(path, "replaced", answer.replaced.as_deref())?;
        Ok(answer)
    }

    /// `GET /api/v1/transactions/{txid}`.
    pub fn transaction(&self, txid: &Txid) -> Result<TransactionView, ClientError> {
        let path = format!("/api/v1/transactions/{txid}");
        let view: TransactionView = self.get(&path)?;
        self.check_hash(&path, "txid", Some(&view.txid))?;
        self.check_hash(&path, "block_hash", view.block_hash.as_deref())?;
        Ok(view)
    }

    /// An answer's `field` must be a hash (64 hex digits) when present.
    fn check_hash(&self, path: &str, field: &str, value: Option<&str>) -> Result<(), ClientError> {
        match value.map(str::parse::<Txid>) {
            Some(Err(e)) => Err(ClientError::BadResponse {
                url: self.url(path),
                detail: format!("{field}: {e}"),
            }),
            _ => Ok(()),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = self.url(path);
        let response = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| transport_error(&url, e))?;
        read_response(&url, response)
    }
}

fn transport_error(url: &str, error: ureq::Error) -> ClientError {
    match error {
        ureq::Error::Json(e) => ClientError::BadResponse {
            url: url.to_string(),
            detail: e.to_string(),
        },
        ureq::Error::Protocol(e) => ClientError::BadResponse {
            url: url.to_string(),
            detail: format!("not HTTP: {e}"),
        },
        ureq::Error::ConnectionFailed => ClientError::NodeUnreachable {
            url: url.to_string(),
            detail: "connection failed".to_string(),
        },
        ureq::Error::HostNotFound => ClientError::NodeUnreachable {
            url: url.to_string(),
            detail: "host not found".to_string(),
        },
        other => ClientError::NodeUnreachable {
            url: url.to_string(),
            detail: other.to_string(),
        },
    }
}

fn read_response<T: DeserializeOwned>(
    url: &str,
    mut response: ureq::http::Response<ureq::Body>,
) -> Result<T, ClientError> {
    let status = response.status();
    let bad = |detail: String| ClientError::BadResponse {
        url: url.to_string(),
        detail,
    };
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE_BYTES)
        .read_to_string()
        .map_err(|e| bad(format!("cannot read the body: {e}")))?;
    if !status.is_success() {
        return Err(match serde_json::from_str::<ErrorView>(&text) {
            Ok(body) => ClientError::Api {
                status: status.as_u16(),
                code: body.error.code,
                message: body.error.message,
            },
            Err(_) => bad(format!("HTTP {status}: {}", snippet(&text))),
        });
    }
    serde_json::from_str(&text).map_err(|e| bad(format!("{e} in {}", snippet(&text))))
}

/// The start of a body, for error messages.
fn snippet(text: &str) -> String {
    const MAX: usize = 200;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_examples_parse() {
        let info: InfoView = serde_json::from_str(
            r#"{"chain": "Cairn Dev", "chain_id": 1337, "genesis_hash": "0101010101010101010101010101010101010101010101010101010101010101",
                "symbol": "dCAIRN", "decimals": 8, "address_prefix": "cairndev",
                "height": 1234, "tip": "00", "tip_time": 1795300000, "bits": "0x1d09f3a2",
                "difficulty": 12.5, "mempool_count": 3, "mempool_bytes": 510,
                "peers": 4, "syncing": false, "indexed_height": 1234, "version": "0.1.0",
                "min_fee_rate": 1, "max_memo_bytes": 80}"#,
        )
        .unwrap();
        assert_eq!(info.chain_id, 1337);
        assert_eq!(info.max_memo_bytes, 80);
        let account: AccountView = serde_json::from_str(
            r#"{ "address": "cairndev1x", "balance": 100000000000000, "nonce": 3,
                 "next_nonce": 5, "pending": 2, "pending_outgoing": 400000400 }"#,
        )
        .unwrap();
        assert_eq!(account.next_nonce, 5);
        let fees: FeesView = serde_json::from_str(
            r#"{ "min_fee_rate": 1, "suggested_fee_rate": 2, "typical_size": 164, "min_fee": 164,
                 "suggested_fee": 328 }"#,
        )
        .unwrap();
        assert_eq!(fees.suggested_fee_rate, 2);
        let status: TransactionView = serde_json::from_str(
            r#"{ "txid": "0202020202020202020202020202020202020202020202020202020202020202",
                 "status": "pending", "confirmations": 0, "block_hash": null, "height": null,
                 "time": null, "fee_rate": 1.2,
                 "transfer": { "txid": "0202020202020202020202020202020202020202020202020202020202020202",
                               "from": "a", "to": "b", "amount": 1, "fee": 200, "nonce": 0,
                               "memo": "hi", "memo_hex": "6869" } }"#,
        )
        .unwrap();
        assert_eq!(status.status, "pending");
        let history: HistoryView = serde_json::from_str(
            r#"{ "address": "a", "items": [
                 { "kind": "reward", "txid": null, "height": 40, "block_hash": "0303030303030303030303030303030303030303030303030303030303030303",
                   "time": 1795299990, "confirmations": 4, "from": null, "to": "a",
                   "amount": 5000000200, "fee": 0, "nonce": null, "memo": "", "memo_hex": "" } ],
                 "pending": [], "next": null }"#,
        )
        .unwrap();
        assert_eq!(history.items[0].kind, "reward");
    }

    #[test]
    fn unreachable_node_is_reported_as_such() {
        // Bind then drop a listener: nothing listens on that port afterwards.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = NodeClient::new(&format!("http://127.0.0.1:{port}/"));
        let error = client.info().unwrap_err();
        assert!(error.is_unreachable(), "{error:?}");
        assert!(error.to_string().contains("--node"), "{error}");
    }
}
