//! End-to-end tests of the API's error contract (issue 12, items 4 and 5): every error under
//! `/api/` is JSON with a code, whatever refused the request (the router, an extractor, the
//! body limit, the Host check), and only allowed `Host` names are served.
//!
//! Requests are written by hand ([`common::http_raw`]) so that the method, the raw path bytes,
//! the `Host` header and the body are exactly what the table says.
#![allow(clippy::disallowed_methods)]

mod common;

use common::{http_raw, Node, TestDir};
use serde_json::Value;

/// One bad request and the error it must get.
struct BadRequest {
    method: &'static str,
    path: String,
    host: Option<String>,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
}

impl BadRequest {
    fn get(path: impl Into<String>, status: u16, code: &'static str) -> BadRequest {
        BadRequest {
            method: "GET",
            path: path.into(),
            host: None,
            content_type: None,
            body: Vec::new(),
            status,
            code,
        }
    }

    fn method(mut self, method: &'static str) -> BadRequest {
        self.method = method;
        self
    }

    fn host(mut self, host: &str) -> BadRequest {
        self.host = Some(host.to_string());
        self
    }

    fn body(mut self, content_type: &'static str, body: impl Into<Vec<u8>>) -> BadRequest {
        self.method = "POST";
        self.content_type = Some(content_type);
        self.body = body.into();
        self
    }
}

/// Sends `request` to `node` (with `Host: <its address>` unless the row names one) and
/// checks the answer, returning what was wrong.
fn check(node: &Node, request: &BadRequest) -> Result<(), String> {
    let host = request.host.clone().unwrap_or_else(|| node.api.to_string());
    let what = format!(
        "{} {} (Host: {host}, {} body bytes)",
        request.method,
        request.path,
        request.body.len()
    );
    let (status, content_type, body) = http_raw(
        node.api,
        request.method,
        &request.path,
        Some(&host),
        request.content_type,
        &request.body,
    )
    .map_err(|e| format!("{what}: {e}"))?;
    let json: Value = serde_json::from_str(&body).map_err(|e| {
        format!("{what}: answer {status} ({content_type:?}) is not JSON ({e}): {body:?}")
    })?;
    let code = json["error"]["code"].as_str().unwrap_or("");
    let message = json["error"]["message"].as_str().unwrap_or("");
    if status != request.status || code != request.code {
        return Err(format!(
            "{what}: expected {} {}, got {status} {body}",
            request.status, request.code
        ));
    }
    if !content_type.starts_with("application/json") || message.is_empty() {
        return Err(format!(
            "{what}: expected application/json with a message, got {content_type:?}: {body}"
        ));
    }
    Ok(())
}

#[test]
fn every_api_error_is_json_with_a_code() {
    let dir = TestDir::new("api-errors").in_process();
    let spec = dir.write_spec();
    let node = dir.start_node("node", &dir.path().join("node"), &spec, false);
    let address = &spec.miner_address;
    let oversized = format!("{{\"memo\":\"{}\"}}", "x".repeat(100 * 1024));
    let table = [
        BadRequest::get("/api/v1/tip", 405, "method_not_allowed").method("DELETE"),
        BadRequest::get("/api/v1/tip", 405, "method_not_allowed").body("application/json", "{}"),
        BadRequest::get("/api/v1/transactions", 405, "method_not_allowed"),
        BadRequest::get("/api/v1/blocks/%ff", 400, "bad_request"),
        BadRequest::get("/api/v1/accounts/%ff", 400, "bad_request"),
        BadRequest::get("/api/v1/accounts/%ff/history", 400, "bad_request"),
        BadRequest::get("/api/v1/transactions/%ff", 400, "bad_request"),
        BadRequest::get("/api/v1/no-such-route", 404, "not_found"),
        BadRequest::get("/api/no-such-version/tip", 404, "not_found"),
        BadRequest::get("/api/v1/blocks?limit=many", 400, "malformed"),
        BadRequest::get("/api/v1/blocks?before=-1", 400, "malformed"),
        BadRequest::get(
            format!("/api/v1/accounts/{address}/history?limit=%ff"),
            400,
            "malformed",
        ),
        BadRequest::get("/api/v1/mempool?limit=x", 400, "malformed"),
        BadRequest::get("/api/v1/transactions", 400, "malformed")
            .body("application/json", "{\"from\": "),
        BadRequest::get("/api/v1/transactions", 400, "malformed").body("text/plain", "{}"),
        BadRequest::get("/api/v1/transactions", 413, "payload_too_large")
            .body("application/json", oversized),
        BadRequest::get("/api/v1/admin/mining", 401, "unauthorized")
            .body("application/json", "[1, 2"),
        BadRequest::get("/api/v1/tip", 403, "host_not_allowed").host("attacker.example"),
        BadRequest::get("/api/v1/tip", 403, "host_not_allowed").host("attacker.example:7371"),
        BadRequest::get("/api/v1/info", 403, "host_not_allowed").host("127.0.0.1.nip.io"),
    ];
    let failures: Vec<String> = table
        .iter()
        .filter_map(|request| check(&node, request).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} bad requests did not get the JSON error expected:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n")
    );
    node.stop_cleanly();
}

#[test]
fn loopback_names_and_allowed_hosts_are_served() {
    let dir = TestDir::new("api-hosts").in_process();
    let spec = dir.write_spec();
    let node = dir.start_node_with(
        "node",
        &dir.path().join("node"),
        &spec,
        false,
        &["--allow-host".to_string(), "Cairn.Example".to_string()],
    );
    let port = node.api.port();
    let served = [
        format!("127.0.0.1:{port}"),
        "127.0.0.1".to_string(),
        format!("localhost:{port}"),
        "LOCALHOST:1".to_string(),
        "[::1]:8080".to_string(),
        "cairn.example".to_string(),
        format!("cairn.example:{port}"),
    ];
    for host in &served {
        let (status, _, body) = http_raw(node.api, "GET", "/api/v1/tip", Some(host), None, b"")
            .unwrap_or_else(|e| panic!("Host {host}: {e}"));
        assert_eq!(status, 200, "Host {host} should be served: {body}");
    }
    for host in ["other.example", "cairn.example.evil", "localhost.evil:80"] {
        let (status, _, body) = http_raw(node.api, "GET", "/api/v1/tip", Some(host), None, b"")
            .unwrap_or_else(|e| panic!("Host {host}: {e}"));
        assert_eq!(status, 403, "Host {host} should be refused: {body}");
        assert!(body.contains("host_not_allowed"), "Host {host}: {body}");
    }
    node.stop_cleanly();
}
