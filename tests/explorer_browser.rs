//! The block explorer in a real browser: a mining node on the test chain, headless Chromium
//! driven over WebDriver (Debian's `chromium` and `chromium-driver`, which `.ci/run`
//! installs). The test opens the home page, waits for a new block and a new pending transfer
//! to appear live (no reload), follows a block, a transaction and an address link, uses the
//! search box, and checks that a memo holding markup shows as text and runs nothing.
//!
//! Screenshots of every page it visits are kept in `<target>/tmp/explorer-screenshots/` (the
//! path is printed).
#![allow(clippy::disallowed_methods)]
mod common;

use common::{dev_transfer_with_memo, ProcessGuard, TestDir};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian puts them.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long anything the test waits for may take.
const WAIT: Duration = Duration::from_secs(60);
/// A memo that would inject markup and script if it were not escaped.
const HOSTILE_MEMO: &str = "<script>alert(1)</script><b>bold</b> & \"quotes\"";

fn need(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "the explorer browser test needs {path}: install Debian's {package} \
         (`apt-get update && apt-get install -y chromium chromium-driver`; .ci/run does this)"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("explorer-screenshots");
    std::fs::create_dir_all(&dir).expect("cannot create the screenshot directory");
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("a screenshot");
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).expect("cannot save a screenshot");
    eprintln!("{:?} screenshot: {}", started().elapsed(), path.display());
}

/// When the test started (for the log).
fn started() -> Instant {
    static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *STARTED.get_or_init(Instant::now)
}

/// Polls the async `check` until it returns `Ok`, or panics after [`WAIT`] with the last
/// `Err`.
async fn until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) => assert!(
                Instant::now() < deadline,
                "timed out after {WAIT:?} waiting for {what}; last seen: {last}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text of the first element matching `css`, read in one step in the page (the live
/// script may replace rows between a WebDriver "find" and a "get text").
async fn text(client: &Client, css: &str) -> Result<String, String> {
    let value = client
        .execute(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent.trim() : null;",
            vec![json!(css)],
        )
        .await
        .map_err(|e| e.to_string())?;
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no {css}"))
}

/// Clicks the first element matching `css`, again if the live script replaced it meanwhile.
async fn click(client: &Client, css: &str) {
    until(&format!("a click on {css}"), || async {
        let element = client
            .find(Locator::Css(css))
            .await
            .map_err(|e| e.to_string())?;
        element.click().await.map_err(|e| e.to_string())
    })
    .await;
}

/// Waits until the page has finished loading.
async fn loaded(client: &Client) {
    until("the page to load", || async {
        match client.execute("return document.readyState;", vec![]).await {
            Ok(state) if state == json!("complete") => Ok(()),
            Ok(state) => Err(state.to_string()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
}

/// Waits for the page whose `<h1>` reads `heading`.
async fn wait_for_heading(client: &Client, heading: &str) {
    until(&format!("the page headed {heading:?}"), || async {
        let seen = text(client, "h1").await?;
        if seen.starts_with(heading) {
            Ok(())
        } else {
            Err(seen)
        }
    })
    .await;
}

/// Waits for the page's script to say it receives the node's event stream.
async fn wait_until_live(client: &Client) {
    until("the script to connect to the event stream", || async {
        match text(client, "#live-status").await?.as_str() {
            "● live" => Ok(()),
            other => Err(other.to_string()),
        }
    })
    .await;
}

/// Waits for the browser to be at `path` (with its query).
async fn wait_for_path(client: &Client, path: &str) {
    until(&format!("the browser to be at {path}"), || async {
        let seen = path_of(client).await;
        if seen == path {
            Ok(())
        } else {
            Err(seen)
        }
    })
    .await;
}

async fn path_of(client: &Client) -> String {
    let url = client.current_url().await.expect("a URL");
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    }
}

/// Starts chromedriver and opens a headless Chromium session.
/// chromedriver and the browsers it starts, in a process group of their own: all killed when
/// dropped, so that a failing test leaves no browser behind.
struct DriverGuard {
    process: ProcessGuard,
}

impl Drop for DriverGuard {
    fn drop(&mut self) {
        // SAFETY: kill(2) has no memory-safety preconditions; the group is the one our child
        // chromedriver leads (`process_group(0)`). Its own guard then reaps it.
        unsafe {
            libc::kill(-self.process.pid(), libc::SIGKILL);
        }
    }
}

/// Starts chromedriver; returns it and its URL.
fn start_chromedriver(dir: &TestDir) -> (DriverGuard, String) {
    need(CHROMIUM, "chromium");
    need(CHROMEDRIVER, "chromium-driver");
    let port = free_port();
    let log = std::fs::File::create(dir.new_log("chromedriver")).expect("a log file");
    let mut command = Command::new(CHROMEDRIVER);
    command
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("a file handle"))
        .stderr(log)
        .process_group(0);
    let process = ProcessGuard::spawn(command);
    (DriverGuard { process }, format!("http://127.0.0.1:{port}"))
}

/// A headless Chromium session, with JavaScript on or off.
async fn session(driver: &str, javascript: bool) -> Client {
    let mut args = vec![
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        "--lang=en-US",
        // No crash handler: it would run in a process group of its own.
        "--disable-crash-reporter",
        "--disable-breakpad",
    ];
    if !javascript {
        args.push("--blink-settings=scriptEnabled=false");
    }
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!("a JSON object")
    };
    until("chromedriver to start a session", || {
        let capabilities = capabilities.clone();
        async move {
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(capabilities)
                .connect(driver)
                .await
                .map_err(|e| e.to_string())
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explorer_in_headless_chromium() {
    started();
    let dir = TestDir::new("explorer-browser");
    let spec = dir.write_spec();
    let data = dir.path().join("node");
    let mut node = dir.start_node("node", &data, &spec, true);
    node.wait_for_height(2, WAIT);
    let (_driver, driver_url) = start_chromedriver(&dir);
    let client = session(&driver_url, true).await;
    eprintln!("{:?} browser session open", started().elapsed());
    let base = node.url();
    eprintln!("screenshots go to {}", screenshot_dir().display());

    // Home: the stats, charts and latest blocks, readable as served.
    client
        .goto(&format!("{base}/"))
        .await
        .expect("the home page");
    let title = client.title().await.expect("a title");
    assert!(title.contains("Cairn Process Test"), "title {title:?}");
    for css in [
        "dl.stats",
        "#chart-intervals svg",
        "#chart-difficulty svg",
        "#chart-transfers svg",
    ] {
        client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("the home page has no {css}: {e}"));
    }
    // A marker that a reload would wipe, and a record of rows the script adds.
    client
        .execute(
            "window.__noReload = true; window.__added = [];
             new MutationObserver(ms => ms.forEach(m => m.addedNodes.forEach(n => {
                 if (n.dataset && n.dataset.txid) window.__added.push(n.dataset.txid);
             }))).observe(document.querySelector('tbody[data-live=\"mempool\"]'), {childList: true});",
            vec![],
        )
        .await
        .expect("the script runs");
    let first_row = "tbody[data-live=\"blocks\"] tr:first-child td:first-child a";
    let shown: u64 = text(&client, first_row)
        .await
        .expect("a latest block")
        .parse()
        .expect("a height");
    wait_until_live(&client).await;
    screenshot(&client, "1-home").await;

    // A new block appears without a reload.
    let live_height = until("a new block to appear live on the home page", || async {
        let height: u64 = text(&client, first_row)
            .await?
            .parse()
            .map_err(|e| format!("{e}"))?;
        if height > shown {
            Ok(height)
        } else {
            Err(format!("still {height}"))
        }
    })
    .await;
    // The height stat follows (it may run ahead of the table while the script rereads it).
    until("the height stat to follow the live blocks", || async {
        let stat = text(&client, "[data-field=\"height\"]").await?;
        match stat.replace(',', "").parse::<u64>() {
            Ok(height) if height >= live_height => Ok(()),
            _ => Err(stat),
        }
    })
    .await;

    // A transfer with a hostile memo appears live among the pending ones.
    let from = spec.spec.allocations[1].0;
    let to = spec.spec.allocations[2].0;
    let transfer = dev_transfer_with_memo(
        &spec.spec,
        1,
        to,
        123_456_789,
        1_000,
        0,
        HOSTILE_MEMO.as_bytes().to_vec(),
    );
    let txid = transfer.txid().to_hex();
    let (status, answer) = node.submit(&spec.spec, &transfer);
    assert_eq!(status, 200, "submit: {answer}");
    until(
        "the new transfer to appear live on the home page",
        || async {
            let added = client
                .execute("return window.__added;", vec![])
                .await
                .map_err(|e| e.to_string())?;
            if added.as_array().is_some_and(|a| a.contains(&json!(txid))) {
                Ok(())
            } else {
                Err(added.to_string())
            }
        },
    )
    .await;
    let reloaded = client
        .execute("return window.__noReload === true;", vec![])
        .await
        .expect("the script runs");
    assert_eq!(
        reloaded,
        json!(true),
        "live updates must not reload the page"
    );
    screenshot(&client, "2-home-live").await;

    // Follow a block link from the latest blocks.
    click(&client, first_row).await;
    wait_for_heading(&client, "Block ").await;
    assert!(path_of(&client).await.starts_with("/block/"));
    screenshot(&client, "3-block").await;

    // The transfer's block, then the transfer by its link.
    let confirmed = until("the transfer to be mined", || async {
        let (status, body) = node.try_get(&format!("/api/v1/transactions/{txid}"))?;
        match body["height"].as_u64() {
            Some(height) if status == 200 => Ok(height),
            _ => Err(body.to_string()),
        }
    })
    .await;
    client
        .goto(&format!("{base}/block/{confirmed}"))
        .await
        .expect("the transfer's block");
    click(&client, &format!("a[href=\"/tx/{txid}\"]")).await;
    wait_for_heading(&client, "Transaction").await;
    assert_eq!(path_of(&client).await, format!("/tx/{txid}"));
    let memo = text(&client, "pre.memo").await.expect("the memo");
    assert_eq!(memo, HOSTILE_MEMO, "the memo shows as text, exactly");
    let injected = client
        .find_all(Locator::Css("pre.memo *"))
        .await
        .expect("a query");
    assert!(injected.is_empty(), "the memo made elements: {injected:?}");
    let status_text = text(&client, "dl.fields").await.expect("the fields");
    assert!(status_text.contains("Confirmed"), "{status_text}");
    // The script's additions: copy buttons and the theme toggle.
    let copies = client
        .find_all(Locator::Css("button.copy"))
        .await
        .expect("a query");
    assert!(copies.len() >= 4, "copy buttons: {}", copies.len());
    let toggle_hidden = client
        .execute(
            "return document.getElementById('theme-toggle').hidden;",
            vec![],
        )
        .await
        .expect("the script runs");
    assert_eq!(toggle_hidden, json!(false), "the theme toggle shows");
    screenshot(&client, "4-transaction").await;

    // The sender's address page, by its link.
    let from_text = from.to_bech32(spec.spec.hrp()).expect("valid prefix");
    click(&client, &format!("dd a[href=\"/address/{from_text}\"]")).await;
    wait_for_heading(&client, "Address").await;
    let fields = text(&client, "dl.fields").await.expect("the fields");
    assert!(fields.contains(&from_text), "{fields}");
    let history = text(&client, "table.history").await.expect("the history");
    assert!(history.contains("sent"), "{history}");
    screenshot(&client, "5-address").await;

    // The search box: a height, then something that matches nothing.
    let search = |query: String| {
        let client = client.clone();
        async move {
            loaded(&client).await;
            let input = client.find(Locator::Css("input#q")).await.expect("the box");
            input.clear().await.expect("clear");
            input.send_keys(&query).await.expect("typing");
            client
                .find(Locator::Css("form.search button[type=\"submit\"]"))
                .await
                .expect("the button")
                .click()
                .await
                .expect("a click");
        }
    };
    search(confirmed.to_string()).await;
    wait_for_path(&client, &format!("/block/{confirmed}")).await;
    search(txid.clone()).await;
    wait_for_path(&client, &format!("/tx/{txid}")).await;
    search("no such thing".to_string()).await;
    wait_for_heading(&client, "Nothing matches").await;
    let message = text(&client, "p.message").await.expect("a message");
    assert!(message.contains("no such thing"), "{message}");
    screenshot(&client, "6-search-nothing").await;

    // The home page once more, after a few more transfers (the README's picture).
    for account in 3..9u32 {
        for nonce in 0..3u64 {
            let to = spec.spec.allocations[(account as usize + 1) % 10].0;
            let amount = 1_000_000 * u64::from(account) * (nonce + 1) + 4_200;
            let transfer = dev_transfer_with_memo(
                &spec.spec,
                account,
                to,
                amount,
                300 + 100 * nonce,
                nonce,
                b"thanks".to_vec(),
            );
            let (status, answer) = node.submit(&spec.spec, &transfer);
            assert_eq!(status, 200, "submit: {answer}");
        }
    }
    client
        .goto(&format!("{base}/"))
        .await
        .expect("the home page");
    wait_until_live(&client).await;
    screenshot(&client, "7-home").await;

    // The theme toggle switches between light and dark.
    let background = "return getComputedStyle(document.body).backgroundColor;";
    let before = client.execute(background, vec![]).await.expect("a colour");
    click(&client, "#theme-toggle").await;
    let after = client.execute(background, vec![]).await.expect("a colour");
    assert_ne!(before, after, "the toggle changes the theme");
    screenshot(&client, "8-home-other-theme").await;
    client.close().await.expect("the session closes");

    // With JavaScript off every page still reads: UTC times, links, no script-only controls.
    let client = session(&driver_url, false).await;
    client
        .goto(&format!("{base}/"))
        .await
        .expect("the home page");
    let first_time = text(&client, "tbody[data-live=\"blocks\"] time")
        .await
        .expect("a block time");
    assert!(first_time.ends_with(" UTC"), "times stay UTC: {first_time}");
    let toggle_shown = client
        .find(Locator::Css("#theme-toggle"))
        .await
        .expect("the toggle")
        .is_displayed()
        .await
        .expect("visibility");
    assert!(!toggle_shown, "no theme toggle without the script");
    assert!(client
        .find_all(Locator::Css("button.copy"))
        .await
        .expect("a query")
        .is_empty());
    click(
        &client,
        "tbody[data-live=\"blocks\"] tr:first-child td:first-child a",
    )
    .await;
    wait_for_heading(&client, "Block ").await;
    click(
        &client,
        &format!("a[href=\"/address/{}\"]", spec.miner_address),
    )
    .await;
    wait_for_heading(&client, "Address").await;
    screenshot(&client, "9-address-without-javascript").await;

    client.close().await.expect("the session closes");
    node.stop_cleanly();
}
