//! The explorer as the node serves it (no browser): at `/` of the API's address by default,
//! beside the JSON API; on its own address with `--explorer-addr`; gone with `--no-explorer`.
//! Its pages read the node's real store (the handler tests use a fake view).
#![allow(clippy::disallowed_methods)]
mod common;

use common::TestDir;
use std::time::Duration;

/// `GET url`: status, content type and body, whatever the status.
fn get(url: &str) -> (u16, String, String) {
    let mut response = common::http_agent()
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response
        .body_mut()
        .read_to_string()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    (status, content_type, body)
}

#[test]
fn the_node_serves_the_explorer_beside_the_api_unless_told_not_to() {
    let dir = TestDir::new("explorer-node").in_process();
    let spec = dir.write_spec();
    let data = dir.path().join("node");
    let mut node = dir.start_node("node", &data, &spec, true);
    let tip = node.wait_for_height(3, Duration::from_secs(60));
    let hash = tip["hash"].as_str().expect("a hash").to_string();
    let base = node.url();

    let (status, content_type, home) = get(&format!("{base}/"));
    assert_eq!(status, 200, "{home}");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(home.contains("Cairn Process Test"), "{home}");
    assert!(home.contains("Latest blocks"));
    // A block by hash, from the real store, with its parent linked.
    let (status, _, block) = get(&format!("{base}/block/{hash}"));
    assert_eq!(status, 200, "{block}");
    assert!(block.contains(&hash));
    assert!(block.contains("rel=\"prev\""), "{block}");
    let (status, _, genesis) = get(&format!("{base}/block/0"));
    assert_eq!(status, 200);
    assert!(genesis.contains("none (genesis)"));
    // The miner's address page shows its rewards; search finds it.
    let (status, _, address) = get(&format!("{base}/address/{}", spec.miner_address));
    assert_eq!(status, 200, "{address}");
    assert!(address.contains("block reward"), "{address}");
    // With the state root and block its balance is proven against, checked by the node.
    assert!(
        address.contains("State proof")
            && address.contains(">checked<")
            && address.contains("against state root"),
        "{address}"
    );
    let (status, _, found) = get(&format!("{base}/search?q={}", spec.miner_address));
    assert_eq!(status, 200, "search follows the redirect: {found}");
    assert!(found.contains("<h1>Address</h1>"), "{found}");
    // Bad input and nothing found are pages with the right status; the API keeps its JSON.
    let (status, _, _) = get(&format!("{base}/address/cairndev1nonsense"));
    assert_eq!(status, 400);
    let (status, _, _) = get(&format!("{base}/tx/{}", "0".repeat(64)));
    assert_eq!(status, 404);
    let (status, content_type, body) = get(&format!("{base}/no/such/page"));
    assert_eq!(status, 404);
    assert!(content_type.starts_with("application/json"), "{body}");
    let (status, content_type, _) = get(&format!("{base}/static/explorer.js"));
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/javascript"));
    node.stop_cleanly();

    let node = dir.start_node_with(
        "no-explorer",
        &data,
        &spec,
        false,
        &["--no-explorer".to_string()],
    );
    let (status, content_type, _) = get(&format!("{}/", node.url()));
    assert_eq!(status, 404, "--no-explorer leaves only the API");
    assert!(content_type.starts_with("application/json"));
    node.get("/api/v1/tip");
    node.stop_cleanly();

    // On its own address: the pages and the feeds they read live, and only those; the
    // API's address serves the API only.
    let node = dir.start_node_with(
        "explorer-addr",
        &data,
        &spec,
        false,
        &["--explorer-addr".to_string(), "127.0.0.1:0".to_string()],
    );
    let file = data.join(cairn::node::EXPLORER_ADDR_FILE);
    let address = common::poll(
        "the explorer's address file",
        Duration::from_secs(30),
        || std::fs::read_to_string(&file).map_err(|e| e.to_string()),
    );
    let explorer = format!("http://{}", address.trim());
    let (status, _, home) = get(&format!("{explorer}/"));
    assert_eq!(status, 200, "{home}");
    assert!(home.contains("Latest blocks"), "{home}");
    let (status, content_type, _) = get(&format!("{explorer}/api/v1/blocks?limit=1"));
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let (status, _, _) = get(&format!("{explorer}/api/v1/mempool"));
    assert_eq!(status, 200);
    let (status, _, _) = get(&format!(
        "{explorer}/api/v1/accounts/{}",
        spec.miner_address
    ));
    assert_eq!(
        status, 404,
        "the explorer's address serves only what its pages read"
    );
    let (status, _, _) = get(&format!("{}/", node.url()));
    assert_eq!(status, 404, "the API's address has no explorer then");
    node.stop_cleanly();
}
