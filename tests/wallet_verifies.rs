//! The wallet's verification against lying nodes (issue 15, item 2): a real node, and test
//! servers in front of it that alter a balance, serve a proof from an older root, serve a
//! lighter header chain, or an invalid header. Each is caught and named; with an honest node
//! beside it, the wallet follows the honest one.
#![allow(clippy::disallowed_methods)]

mod common;

use cairn::core::consensus::ChainSpec;
use cairn::core::primitives::Address;
use cairn_wallet::client::NodeClient;
use cairn_wallet::verify::{Followed, HeaderChain, VerifyError};
use common::{http_get, TestDir};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a lying server changes in the node's answers.
#[derive(Clone, Copy, Debug)]
enum Lie {
    /// Adds one unit to the proven balance (in the proof and the convenience field).
    Balance,
    /// Serves the proof of the block before the one asked for, with the asked block's header.
    OlderRoot,
    /// Serves its chain without the last three headers: valid, but lighter.
    LighterChain,
    /// Changes the nonce of the header at height 2 (its proof of work no longer holds).
    BadHeader,
}

/// A test server forwarding GETs to `upstream` and telling `lie`; stops with the test
/// process (its thread only accepts).
fn lying_server(upstream: String, lie: Lie) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = answer(stream, &upstream, lie);
        }
    });
    url
}

fn answer(mut stream: TcpStream, upstream: &str, lie: Lie) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let (status, body) = tell(upstream, &path, lie);
    let body = body.to_string();
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

fn tell(upstream: &str, path: &str, lie: Lie) -> (u16, Value) {
    let (status, mut body) = http_get(&format!("{upstream}{path}")).expect("the node answers");
    match lie {
        Lie::Balance if path.contains("/proof") => {
            if let Some(balance) = body["proof"]["terminal"]["balance"].as_u64() {
                body["proof"]["terminal"]["balance"] = json!(balance + 1);
                body["account"]["balance"] = json!(balance + 1);
            }
        }
        Lie::OlderRoot if path.contains("/proof") => {
            let height = body["height"].as_u64().unwrap();
            let address = path.split('/').nth(4).unwrap();
            let (_, older) = http_get(&format!(
                "{upstream}/api/v1/accounts/{address}/proof?block={}",
                height - 1
            ))
            .unwrap();
            body["proof"] = older["proof"].clone();
            body["state_root"] = older["state_root"].clone();
        }
        Lie::LighterChain if path.starts_with("/api/v1/headers") => {
            let headers = body["headers"].as_array_mut().unwrap();
            let keep = headers.len().saturating_sub(3);
            headers.truncate(keep);
        }
        Lie::BadHeader if path.starts_with("/api/v1/headers") => {
            if let Some(header) = body["headers"].get_mut(2) {
                let mut bytes = hex::decode(header.as_str().unwrap()).unwrap();
                bytes[112] ^= 1; // the nonce's low byte
                *header = json!(hex::encode(bytes));
            }
        }
        _ => {}
    }
    (status, body)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn clients(urls: &[&str]) -> Vec<NodeClient> {
    urls.iter().map(|url| NodeClient::new(url)).collect()
}

#[test]
fn the_wallet_catches_lying_nodes_and_follows_an_honest_one() {
    let dir = TestDir::new("wallet-verifies").in_process();
    let spec = dir.write_spec();
    let mut node = dir.start_node("node", &dir.path().join("node"), &spec, true);
    node.wait_for_height(8, Duration::from_secs(60));
    node.admin("/api/v1/admin/mining", &json!({ "enabled": false }));
    node.wait_for_still_tip();
    let honest = node.url();
    let shown = spec.miner_address.clone();
    let address = Address::from_bech32(&shown, spec.spec.hrp()).unwrap();
    let spec_of = |spec: &ChainSpec| spec.clone();
    let chain_spec = spec_of(&spec.spec);

    // The honest node alone: the balance three blocks deep, proven.
    let nodes = clients(&[&honest]);
    let mut followed = Followed::fetch(&nodes, &chain_spec, now()).expect("a valid chain");
    let tip = followed.chain().tip().height();
    let proven = followed
        .prove(&nodes, &address, &shown, 3)
        .expect("an honest proof");
    assert_eq!(proven.height, tip - 2);
    assert_eq!(proven.confirmations, 3);
    assert_eq!(proven.node, honest);
    let claimed = http_get(&format!(
        "{honest}/api/v1/accounts/{shown}/proof?block={}",
        proven.height
    ))
    .unwrap()
    .1;
    assert_eq!(
        proven.account.map(|a| a.balance.as_units()),
        claimed["account"]["balance"].as_u64()
    );
    assert!(followed.notes.is_empty(), "{:?}", followed.notes);

    // What the wallet keeps between runs: the checked headers, checked again on loading; a
    // changed byte is refused. Starting from them, a node's chain comes out the same, from
    // a recheck depth inside the chain (only the newest headers fetched) or beyond it.
    let kept = followed.chain().to_bytes();
    let known = HeaderChain::from_bytes(&kept, &chain_spec, now(), "cache").expect("checks");
    assert_eq!(known.tip().hash(), followed.chain().tip().hash());
    let mut tampered = kept.clone();
    tampered[kept.len() - 5] ^= 1;
    assert!(HeaderChain::from_bytes(&tampered, &chain_spec, now(), "cache").is_err());
    for recheck in [2, 100] {
        let again = HeaderChain::fetch_after(&nodes[0], &chain_spec, now(), Some(&known), recheck)
            .expect("a valid chain");
        assert_eq!(again.tip().hash(), known.tip().hash());
        assert_eq!(again.node, honest);
    }
    // A node behind the known chain is credited with its own chain only.
    let behind = lying_server(honest.clone(), Lie::LighterChain);
    let short = HeaderChain::fetch_after(
        &NodeClient::new(&behind),
        &chain_spec,
        now(),
        Some(&known),
        2,
    )
    .expect("a valid, shorter chain");
    assert_eq!(short.tip().height(), tip - 3);

    // A node that alters a balance, or proves an older root, is caught and named.
    for lie in [Lie::Balance, Lie::OlderRoot] {
        let liar = lying_server(honest.clone(), lie);
        let nodes = clients(&[&liar]);
        let mut followed = Followed::fetch(&nodes, &chain_spec, now()).expect("honest headers");
        let error = followed
            .prove(&nodes, &address, &shown, 3)
            .expect_err("a lie");
        assert!(
            matches!(error, VerifyError::Lied { .. }),
            "{lie:?}: {error}"
        );
        let message = error.to_string();
        assert!(
            message.contains(&liar) && message.contains("lied about") && message.contains(&shown),
            "{lie:?}: {message}"
        );

        // Beside an honest node, listed first, the liar is named and the honest node proves.
        let nodes = clients(&[&liar, &honest]);
        let mut followed = Followed::fetch(&nodes, &chain_spec, now()).expect("valid chains");
        let proven_again = followed
            .prove(&nodes, &address, &shown, 3)
            .expect("the honest proof");
        assert_eq!(proven_again.node, honest);
        assert_eq!(proven_again.account, proven.account);
        assert!(
            followed
                .notes
                .iter()
                .any(|n| n.contains(&liar) && n.contains("lied")),
            "{lie:?}: {:?}",
            followed.notes
        );
    }

    // A lighter chain, listed first, is not followed, and is named.
    let lighter = lying_server(honest.clone(), Lie::LighterChain);
    let nodes = clients(&[&lighter, &honest]);
    let followed = Followed::fetch(&nodes, &chain_spec, now()).expect("valid chains");
    assert_eq!(followed.chain().node, honest);
    assert_eq!(followed.chain().tip().height(), tip);
    assert!(
        followed
            .notes
            .iter()
            .any(|n| n.contains(&lighter) && n.contains("less work")),
        "{:?}",
        followed.notes
    );

    // An invalid header: alone, an error naming the node; beside an honest node, a note.
    let forger = lying_server(honest.clone(), Lie::BadHeader);
    let error = Followed::fetch(&clients(&[&forger]), &chain_spec, now())
        .err()
        .expect("no valid chain");
    let message = error.to_string();
    assert!(
        message.contains(&forger) && message.contains("invalid header at height 2"),
        "{message}"
    );
    let followed = Followed::fetch(&clients(&[&forger, &honest]), &chain_spec, now()).unwrap();
    assert_eq!(followed.chain().node, honest);
    assert!(followed.notes.iter().any(|n| n.contains(&forger)));

    // A node of another chain than the wallet's spec.
    let error = Followed::fetch(&clients(&[&honest]), &ChainSpec::dev(), now())
        .err()
        .expect("another genesis");
    assert!(matches!(error, VerifyError::WrongGenesis { .. }), "{error}");
    node.stop_cleanly();
}
