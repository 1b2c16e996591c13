//! A blocking client of a node's HTTP API (docs/API.md), and the JSON views it returns.
//!
//! Owns the HTTP agent and the mapping of transport and API failures to [`ClientError`]:
//! a node that cannot be reached ([`ClientError::NodeUnreachable`]), a JSON error the node
//! answered ([`ClientError::Api`], with its machine-readable code), and an answer that is
//! not what the contract says ([`ClientError::BadResponse`]). It does not decide anything:
//! building, checking and signing transfers is `send`'s job.
//!
//! Amounts, fees and nonces are base units (JSON integers), hashes lowercase hex and
//! addresses bech32m strings, exactly as the API sends them.

use std::time::Duration;

use cairn::core::primitives::{BlockHash, Transfer, Txid};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

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

/// `GET /api/v1/info`: the chain and the node's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InfoView {
    /// The chain's name.
    pub chain: String,
    /// The id transfers carry.
    pub chain_id: u32,
    /// The genesis hash signatures commit to.
    pub genesis_hash: BlockHash,
    /// The coin's symbol.
    pub symbol: String,
    /// Decimals of the coin.
    pub decimals: u8,
    /// The bech32m prefix of addresses.
    pub address_prefix: String,
    /// Height of the tip.
    pub height: u64,
    /// The tip's hash.
    #[serde(default)]
    pub tip: Option<String>,
    /// Whether the node is still catching up.
    #[serde(default)]
    pub syncing: bool,
    /// The fee floor, base units per byte.
    #[serde(default)]
    pub min_fee_rate: Option<u64>,
    /// The longest memo, in bytes.
    #[serde(default)]
    pub max_memo_bytes: Option<usize>,
    /// The node's version.
    #[serde(default)]
    pub version: Option<String>,
}

/// `GET /api/v1/accounts/{address}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    /// The address asked for.
    pub address: String,
    /// Balance on the best chain, base units.
    pub balance: u64,
    /// The account's nonce on the best chain.
    pub nonce: u64,
    /// The nonce a new transfer should carry (after the pending ones).
    pub next_nonce: u64,
    /// How many transfers from this account the mempool holds.
    #[serde(default)]
    pub pending: u64,
    /// The sum of amount + fee of those.
    #[serde(default)]
    pub pending_outgoing: u64,
}

/// A transfer as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferView {
    /// Its id.
    pub txid: Txid,
    /// Sender address.
    pub from: String,
    /// Recipient address.
    pub to: String,
    /// Base units moved.
    pub amount: u64,
    /// Base units paid to the miner.
    pub fee: u64,
    /// The sender's nonce.
    pub nonce: u64,
    /// The memo as text (invalid UTF-8 replaced).
    #[serde(default)]
    pub memo: String,
    /// The memo's exact bytes, hex.
    #[serde(default)]
    pub memo_hex: String,
}

/// One confirmed entry of an account's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryItem {
    /// `sent`, `received`, `self` or `reward`.
    pub kind: String,
    /// The transfer's id (`null` for a reward).
    pub txid: Option<Txid>,
    /// Its block's height.
    pub height: u64,
    /// Its block.
    #[serde(default)]
    pub block_hash: Option<BlockHash>,
    /// Its block's time, Unix seconds.
    #[serde(default)]
    pub time: Option<u64>,
    /// Confirmations of its block.
    #[serde(default)]
    pub confirmations: u64,
    /// Sender (`null` for a reward).
    pub from: Option<String>,
    /// Recipient.
    pub to: String,
    /// Base units.
    pub amount: u64,
    /// Fee, base units.
    #[serde(default)]
    pub fee: u64,
    /// Sender's nonce (`null` for a reward).
    #[serde(default)]
    pub nonce: Option<u64>,
    /// Memo text.
    #[serde(default)]
    pub memo: String,
}

/// `GET /api/v1/accounts/{address}/history`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryView {
    /// The address asked for.
    pub address: String,
    /// Confirmed entries, newest first.
    pub items: Vec<HistoryItem>,
    /// The address's transfers in the mempool (first page only).
    #[serde(default)]
    pub pending: Vec<TransferView>,
    /// The cursor of the next page.
    #[serde(default)]
    pub next: Option<String>,
}

/// `GET /api/v1/fees`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeesView {
    /// The floor, base units per byte.
    pub min_fee_rate: u64,
    /// The rate that should get a transfer into the next block.
    pub suggested_fee_rate: u64,
    /// Size of a transfer with an empty memo.
    #[serde(default)]
    pub typical_size: u64,
}

/// The body of `POST /api/v1/transactions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitTransfer {
    /// The chain id.
    pub chain_id: u32,
    /// Sender, bech32m.
    pub from: String,
    /// Recipient, bech32m.
    pub to: String,
    /// Base units.
    pub amount: u64,
    /// Base units.
    pub fee: u64,
    /// The sender's nonce.
    pub nonce: u64,
    /// The memo bytes, hex (may be empty).
    pub memo_hex: String,
    /// The 64-byte BIP340 signature, hex.
    pub signature: String,
}

impl SubmitTransfer {
    /// The body for a signed `transfer`, with addresses in `chain`'s prefix.
    pub fn from_transfer(transfer: &Transfer, chain: &ChainParams) -> Self {
        SubmitTransfer {
            chain_id: transfer.chain_id,
            from: chain.address_string(&transfer.from),
            to: chain.address_string(&transfer.to),
            amount: transfer.amount.as_units(),
            fee: transfer.fee.as_units(),
            nonce: transfer.nonce,
            memo_hex: hex::encode(&transfer.memo),
            signature: hex::encode(transfer.signature.0),
        }
    }
}

/// The answer to a submission.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitView {
    /// The transfer's id.
    pub txid: Txid,
    /// `pending`.
    pub status: String,
    /// The transfer this one replaced by fee, if any.
    #[serde(default)]
    pub replaced: Option<Txid>,
}

/// Where a transfer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TxStatus {
    /// In the mempool.
    Pending,
    /// On the best chain.
    Confirmed,
}

/// `GET /api/v1/transactions/{txid}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TxStatusView {
    /// The transfer's id.
    pub txid: Txid,
    /// Pending or confirmed.
    pub status: TxStatus,
    /// Confirmations of its block (0 while pending).
    #[serde(default)]
    pub confirmations: u64,
    /// Its block, once confirmed.
    #[serde(default)]
    pub block_hash: Option<BlockHash>,
    /// Its block's height, once confirmed.
    #[serde(default)]
    pub height: Option<u64>,
    /// Its block's time, once confirmed.
    #[serde(default)]
    pub time: Option<u64>,
}

/// The API's error body: `{"error": {"code", "message"}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
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
        let info: InfoView = self.get("/api/v1/info")?;
        ChainParams::from_info(&info)
            .validate()
            .map_err(|detail| ClientError::BadResponse {
                url: self.url("/api/v1/info"),
                detail,
            })?;
        Ok(info)
    }

    /// `GET /api/v1/accounts/{address}`.
    pub fn account(&self, address: &str) -> Result<AccountView, ClientError> {
        self.get(&format!("/api/v1/accounts/{address}"))
    }

    /// `GET /api/v1/accounts/{address}/history?limit=N`.
    pub fn history(&self, address: &str, limit: Option<u32>) -> Result<HistoryView, ClientError> {
        let query = limit.map(|n| format!("?limit={n}")).unwrap_or_default();
        self.get(&format!("/api/v1/accounts/{address}/history{query}"))
    }

    /// `GET /api/v1/fees`.
    pub fn fees(&self) -> Result<FeesView, ClientError> {
        self.get("/api/v1/fees")
    }

    /// `POST /api/v1/transactions`.
    pub fn submit(&self, body: &SubmitTransfer) -> Result<SubmitView, ClientError> {
        let url = self.url("/api/v1/transactions");
        let response = self
            .agent
            .post(&url)
            .send_json(body)
            .map_err(|e| transport_error(&url, e))?;
        read_response(&url, response)
    }

    /// `GET /api/v1/transactions/{txid}`.
    pub fn transaction(&self, txid: &Txid) -> Result<TxStatusView, ClientError> {
        self.get(&format!("/api/v1/transactions/{txid}"))
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
        return Err(match serde_json::from_str::<ErrorBody>(&text) {
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
                "peers": 4, "syncing": false, "version": "0.1.0",
                "min_fee_rate": 1, "max_memo_bytes": 80}"#,
        )
        .unwrap();
        assert_eq!(info.chain_id, 1337);
        assert_eq!(info.max_memo_bytes, Some(80));
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
        let status: TxStatusView = serde_json::from_str(
            r#"{ "txid": "0202020202020202020202020202020202020202020202020202020202020202",
                 "status": "pending", "confirmations": 0, "block_hash": null, "height": null,
                 "time": null, "fee_rate": 1.2,
                 "transfer": { "txid": "0202020202020202020202020202020202020202020202020202020202020202",
                               "from": "a", "to": "b", "amount": 1, "fee": 200, "nonce": 0,
                               "memo": "hi", "memo_hex": "6869" } }"#,
        )
        .unwrap();
        assert_eq!(status.status, TxStatus::Pending);
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
