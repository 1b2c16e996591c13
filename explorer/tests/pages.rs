//! Handler tests: every page, not-found and bad-input case of the explorer's router, over the
//! in-memory `FakeView` (no node, no sockets: requests go straight into the router).
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use cairn_explorer::fake::{fake_address, fake_hash, fake_transfer, FakeView};
use cairn_explorer::{router, ExplorerConfig, ExplorerView};
use http_body_util::BodyExt;
use std::sync::Arc;
use tower::ServiceExt;

/// A chain of 30 blocks, block 7 holding 2,000 transfers, the others `h % 4`.
fn fake() -> FakeView {
    FakeView::new(30, |h| if h == 7 { 2000 } else { (h % 4) as usize })
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    content_type: String,
    csp: Option<String>,
    body: String,
}

async fn get_from(view: FakeView, uri: &str) -> Page {
    let view: Arc<dyn ExplorerView> = Arc::new(view);
    let app = router(view, ExplorerConfig::default());
    let response = app
        .oneshot(Request::get(uri).body(Body::empty()).expect("a request"))
        .await
        .expect("the router answers");
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let status = response.status();
    let location = header(header::LOCATION);
    let content_type = header(header::CONTENT_TYPE).unwrap_or_default();
    let csp = header(header::CONTENT_SECURITY_POLICY);
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    Page {
        status,
        location,
        content_type,
        csp,
        body: String::from_utf8(bytes.to_vec()).expect("UTF-8"),
    }
}

async fn get(uri: &str) -> Page {
    get_from(fake(), uri).await
}

/// Asserts an HTML page with `status` whose body contains every one of `needles`.
fn expect(page: &Page, status: StatusCode, needles: &[&str]) {
    assert_eq!(page.status, status, "status; body:\n{}", page.body);
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    assert!(
        page.csp
            .as_deref()
            .is_some_and(|c| c.contains("script-src 'self'")),
        "every page has the CSP"
    );
    for needle in needles {
        assert!(
            page.body.contains(needle),
            "the page should contain {needle:?}:\n{}",
            page.body
        );
    }
}

#[tokio::test]
async fn home_shows_the_tip_mempool_peers_blocks_and_charts() {
    let page = get("/").await;
    let tip = fake_hash(0xb1, 29);
    expect(
        &page,
        StatusCode::OK,
        &[
            "<title>Home · Cairn Fake explorer</title>",
            "href=\"/block/29\"",
            &format!("title=\"{tip}\""),
            "Hash rate (est.)",
            "6.55 kH/s",
            "data-field=\"mempool-count\">3</span>",
            "492 B",
            "<a href=\"/peers\">1</a>",
            "Block interval",
            "Difficulty",
            "Transfers per block",
            "<svg",
            "tbody data-live=\"blocks\"",
            "tbody data-live=\"mempool\"",
            "href=\"/blocks?before=15\"",
            "data-api=\"/api/v1\"",
            "<time datetime=\"2026-11-21T22:31:30Z\">2026-11-21 22:31:30 UTC</time>",
            "/static/explorer.js?v=",
        ],
    );
    // The latest 15 blocks, newest first.
    let first = page.body.find("href=\"/block/29\"").expect("tip row");
    let older = page.body.find("href=\"/block/28\"").expect("next row");
    assert!(first < older);
    assert!(!page.body.contains("href=\"/block/14\""));
}

#[tokio::test]
async fn home_on_a_fresh_chain_says_so() {
    let page = get_from(FakeView::new(1, |_| 0), "/").await;
    expect(
        &page,
        StatusCode::OK,
        &["not enough blocks yet", "href=\"/block/0\""],
    );
    assert!(!page.body.contains("Older blocks"), "genesis has no older");
}

#[tokio::test]
async fn without_an_api_there_are_no_live_updates() {
    let view: Arc<dyn ExplorerView> = Arc::new(fake());
    let app = router(view, ExplorerConfig { api_base: None });
    let response = app
        .oneshot(Request::get("/").body(Body::empty()).expect("a request"))
        .await
        .expect("answer");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert!(!String::from_utf8_lossy(&body).contains("data-api"));
}

#[tokio::test]
async fn blocks_list_pages_down_to_genesis() {
    let page = get("/blocks?before=10").await;
    expect(
        &page,
        StatusCode::OK,
        &[
            "Heights 9 down to 0.",
            "href=\"/block/9\"",
            "href=\"/block/0\"",
        ],
    );
    assert!(!page.body.contains("Older →"), "nothing below genesis");
    expect(
        &get("/blocks").await,
        StatusCode::OK,
        &["Heights 29 down to 15."],
    );
    expect(
        &get("/blocks?before=0").await,
        StatusCode::NOT_FOUND,
        &["no best-chain blocks below height 0"],
    );
    expect(
        &get("/blocks?before=ten").await,
        StatusCode::BAD_REQUEST,
        &["bad query string"],
    );
}

#[tokio::test]
async fn block_by_height_and_by_hash_links_parent_and_child() {
    let hash = fake_hash(0xb1, 3);
    for uri in [
        "/block/3".to_string(),
        format!("/block/{hash}"),
        format!("/block/{}", hash.to_uppercase()),
    ] {
        let page = get(&uri).await;
        expect(
            &page,
            StatusCode::OK,
            &[
                "<h1>Block 3</h1>",
                &hash,
                "On the best chain, 27 confirmations",
                &format!("rel=\"prev\" href=\"/block/{}\"", fake_hash(0xb1, 2)),
                &format!("rel=\"next\" href=\"/block/{}\"", fake_hash(0xb1, 4)),
                "50.000006",
                "fCAIRN",
                "Showing 1–3 of 3.",
                &format!("href=\"/tx/{}\"", fake_transfer(3, 2).txid),
                &format!("href=\"/address/{}\"", fake_address(0)),
            ],
        );
    }
    expect(
        &get("/block/0").await,
        StatusCode::OK,
        &["none (genesis)", "No transfers."],
    );
    expect(
        &get("/block/29").await,
        StatusCode::OK,
        &["none yet (this is the tip)", "1 confirmation<"],
    );
}

#[tokio::test]
async fn a_big_block_is_paged() {
    let page = get("/block/7").await;
    expect(
        &page,
        StatusCode::OK,
        &[
            "Showing 1–100 of 2,000.",
            "Page 1 of 20",
            "href=\"/block/",
            "?page=2\"",
        ],
    );
    assert_eq!(
        page.body.matches("<tr><td class=\"num\">").count(),
        100,
        "100 rows"
    );
    let last = get("/block/7?page=20").await;
    expect(
        &last,
        StatusCode::OK,
        &[
            "Showing 1901–2000 of 2,000.",
            "Page 20 of 20",
            "?page=19\"",
            &fake_transfer(7, 1999).txid,
        ],
    );
    assert!(!last.body.contains("Next →"));
    expect(
        &get("/block/7?page=21").await,
        StatusCode::NOT_FOUND,
        &["block 7 has 2000 transfers: there is no page 21"],
    );
    expect(
        &get("/block/7?page=0").await,
        StatusCode::BAD_REQUEST,
        &["there is no page 0"],
    );
    expect(
        &get("/block/7?page=two").await,
        StatusCode::BAD_REQUEST,
        &["bad query string"],
    );
    expect(
        &get("/block/3?page=2").await,
        StatusCode::NOT_FOUND,
        &["there is no page 2"],
    );
}

#[tokio::test]
async fn unknown_and_malformed_blocks() {
    expect(
        &get("/block/30").await,
        StatusCode::NOT_FOUND,
        &["<h1>Not found</h1>", "no block 30"],
    );
    expect(
        &get(&format!("/block/{}", "e".repeat(64))).await,
        StatusCode::NOT_FOUND,
        &["no block eeee"],
    );
    for bad in ["xyz", "12ab", "-1", "99999999999", "%3Cb%3E"] {
        expect(
            &get(&format!("/block/{bad}")).await,
            StatusCode::BAD_REQUEST,
            &["is neither a block height nor a 64-hex-digit block hash"],
        );
    }
    // The echoed input is escaped.
    let page = get("/block/%3Cb%3Ebold").await;
    assert!(page.body.contains("&lt;b&gt;bold"), "{}", page.body);
    assert!(!page.body.contains("<b>bold"));
}

#[tokio::test]
async fn confirmed_and_pending_transactions() {
    let confirmed = fake_transfer(5, 0);
    expect(
        &get(&format!("/tx/{}", confirmed.txid)).await,
        StatusCode::OK,
        &[
            "<strong class=\"confirmed\">Confirmed</strong>, 25 confirmations",
            &format!("href=\"/block/{}\"", fake_hash(0xb1, 5)),
            &format!("href=\"/address/{}\"", confirmed.from),
            &format!("href=\"/address/{}\"", confirmed.to),
            "1.0524288 <span class=\"unit\">fCAIRN</span>",
            "0.000002",
            "<span class=\"muted\">none</span>",
        ],
    );
    let pending = fake().mempool[0].transfer.clone();
    expect(
        &get(&format!("/tx/{}", pending.txid)).await,
        StatusCode::OK,
        &[
            "<strong class=\"pending\">Pending</strong>",
            "3.00 units per byte",
        ],
    );
}

#[tokio::test]
async fn unknown_and_malformed_transactions() {
    expect(
        &get(&format!("/tx/{}", "a".repeat(64))).await,
        StatusCode::NOT_FOUND,
        &["no transaction aaaa"],
    );
    for bad in ["abc", &"g".repeat(64), &"a".repeat(65)] {
        expect(
            &get(&format!("/tx/{bad}")).await,
            StatusCode::BAD_REQUEST,
            &["is not a transaction id (64 hex digits)"],
        );
    }
}

#[tokio::test]
async fn a_memo_holding_markup_shows_as_text() {
    let mut view = fake();
    let memo = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&";
    view.blocks[5].transfers[0].memo = memo.to_string();
    let txid = view.blocks[5].transfers[0].txid.clone();
    let page = get_from(view, &format!("/tx/{txid}")).await;
    expect(
        &page,
        StatusCode::OK,
        &["<pre class=\"memo\">&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&quot;'&amp;</pre>"],
    );
    assert!(!page.body.contains("<script>alert"));
    assert!(!page.body.contains("<img"));
}

#[tokio::test]
async fn address_pages_balance_pending_and_history() {
    let miner = fake_address(0);
    let page = get(&format!("/address/{miner}")).await;
    expect(
        &page,
        StatusCode::OK,
        &[
            &miner,
            "Balance",
            "fCAIRN",
            "block reward",
            "<h2>Pending</h2>",
            "?cursor=",
            "Older →",
            "State proof",
            "checked",
            "against state root",
            &format!("/block/{}", "5b".repeat(32)),
            &format!("/api/v1/accounts/{miner}/proof"),
        ],
    );
    assert!(!page.body.contains("← Newest"));
    // Follow the cursor to the older page.
    let cursor = page
        .body
        .split("?cursor=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a cursor link")
        .to_string();
    let older = get(&format!("/address/{miner}?cursor={cursor}")).await;
    expect(&older, StatusCode::OK, &["← Newest", "block reward"]);
    assert!(
        !older.body.contains("<h2>Pending</h2>"),
        "pending only on the first page"
    );
    // An address nobody used reads as zeros, not as missing.
    expect(
        &get(&format!("/address/{}", fake_address(99))).await,
        StatusCode::OK,
        &["No confirmed transfers.", "No pending transfers."],
    );
}

#[tokio::test]
async fn malformed_addresses_and_cursors() {
    expect(
        &get("/address/notanaddress").await,
        StatusCode::BAD_REQUEST,
        &["is not an address of this chain"],
    );
    expect(
        &get(&format!("/address/{}?cursor=zzz", fake_address(0))).await,
        StatusCode::BAD_REQUEST,
        &["is not a history cursor"],
    );
}

#[tokio::test]
async fn mempool_by_fee_rate_and_peers() {
    let page = get("/mempool").await;
    let view = fake();
    expect(
        &page,
        StatusCode::OK,
        &[
            "3</span> pending transfers",
            "3.00",
            "1.00",
            &view.mempool[2].transfer.txid,
        ],
    );
    let best = page
        .body
        .find(&view.mempool[0].transfer.txid)
        .expect("best");
    let worst = page
        .body
        .find(&view.mempool[2].transfer.txid)
        .expect("worst");
    assert!(best < worst, "best fee rate first");

    let mut empty = fake();
    empty.mempool.clear();
    expect(
        &get_from(empty, "/mempool").await,
        StatusCode::OK,
        &["The mempool is empty."],
    );

    let peers = get("/peers").await;
    expect(
        &peers,
        StatusCode::OK,
        &[
            "12D3KooWFakeSelf",
            "/ip4/127.0.0.1/tcp/7370/p2p/12D3KooWFakeSelf",
            "Connected (1)",
            "cairn/0.1.0",
            "Banned (1)",
            "sent invalid block &lt;b&gt;x&lt;/b&gt;",
        ],
    );
}

#[tokio::test]
async fn search_goes_to_the_thing_found() {
    let block = fake_hash(0xb1, 4);
    let txid = fake_transfer(6, 1).txid;
    let pending = fake().mempool[1].transfer.txid.clone();
    let address = fake_address(3);
    let cases = [
        ("12".to_string(), "/block/12".to_string()),
        (format!("%20{block}%20"), format!("/block/{block}")),
        (block.to_uppercase(), format!("/block/{block}")),
        (txid.clone(), format!("/tx/{txid}")),
        (pending.clone(), format!("/tx/{pending}")),
        (address.clone(), format!("/address/{address}")),
    ];
    for (query, target) in cases {
        let page = get(&format!("/search?q={query}")).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "search {query}");
        assert_eq!(
            page.location.as_deref(),
            Some(target.as_str()),
            "search {query}"
        );
    }
}

#[tokio::test]
async fn search_says_clearly_when_nothing_matches() {
    for query in [
        "999",
        "99999999999",
        &"c".repeat(64),
        "hello",
        "%3Cscript%3Ex",
    ] {
        let page = get(&format!("/search?q={query}")).await;
        expect(
            &page,
            StatusCode::NOT_FOUND,
            &[
                "<h1>Nothing matches</h1>",
                "No block, transaction or address matches",
            ],
        );
        assert!(!page.body.contains("<script>x"), "the query is escaped");
    }
    // The query stays in the search box, escaped.
    let page = get("/search?q=%22%3E%3Cb%3E").await;
    assert!(
        page.body.contains("value=\"&quot;&gt;&lt;b&gt;\""),
        "{}",
        page.body
    );
    for uri in ["/search", "/search?q=", "/search?q=%20%20"] {
        expect(
            &get(uri).await,
            StatusCode::BAD_REQUEST,
            &["type a block height, a block hash, a transaction id or an address"],
        );
    }
}

#[tokio::test]
async fn a_node_that_cannot_answer_gets_a_503_page() {
    let mut view = fake();
    view.unavailable = true;
    for uri in ["/", "/block/1", "/mempool", "/peers", "/search?q=1"] {
        expect(
            &get_from(view.clone(), uri).await,
            StatusCode::SERVICE_UNAVAILABLE,
            &["The node cannot answer", "the node is shutting down"],
        );
    }
}

#[tokio::test]
async fn static_files_are_embedded() {
    let css = get("/static/explorer.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.content_type.starts_with("text/css"));
    assert!(css.body.contains("prefers-color-scheme: dark"));
    let js = get("/static/explorer.js?v=1").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.content_type.starts_with("text/javascript"));
    assert!(js.body.contains("EventSource"));
    assert_eq!(get("/static/other.js").await.status, StatusCode::NOT_FOUND);
}
