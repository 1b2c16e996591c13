//! Transactions through real `cairn` processes and the HTTP API: submission checks and their
//! error codes, replace-by-fee, a full mempool's eviction, pending transfers across a
//! restart, and a reorg that returns the losing branch's transfers to the pool.
//!
//! Transfers are signed here with the dev accounts' keys (the published dev mnemonic); the
//! test chain funds the same accounts as the dev chain.
#![allow(clippy::disallowed_methods)]

mod common;

use cairn::core::primitives::{Address, Transfer};
use common::{dev_transfer, http_post, poll, transfer_json, Node, TestDir, TestSpec};
use serde_json::{json, Value};
use std::time::Duration;

/// The floor of a default node: 1 unit per byte; a memo-less transfer is 164 bytes.
const FEE: u64 = 200;
const CONFIRM: Duration = Duration::from_secs(60);

fn dev_address(index: u32) -> Address {
    cairn::core::testkit::address_of(&cairn_wallet::keys::dev_keypair(index))
}

fn assert_refused(answer: (u16, Value), status: u16, code: &str) {
    assert_eq!(
        answer.0, status,
        "expected {status} {code}, got {}",
        answer.1
    );
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
    let message = answer.1["error"]["message"].as_str().unwrap_or("");
    assert!(!message.is_empty(), "a refusal says why: {}", answer.1);
}

fn txid_of(answer: &(u16, Value)) -> String {
    assert_eq!(answer.0, 200, "submission refused: {}", answer.1);
    answer.1["txid"].as_str().expect("a txid").to_string()
}

fn status_of(node: &Node, txid: &str) -> (u16, Value) {
    node.try_get(&format!("/api/v1/transactions/{txid}"))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn wait_confirmed(node: &Node, txid: &str) -> Value {
    poll(
        format!("transfer {txid} confirmed on {}", node.url()),
        CONFIRM,
        || match status_of(node, txid) {
            (200, body) if body["status"] == "confirmed" => Ok(body),
            other => Err(format!("{other:?}")),
        },
    )
}

/// A tip's cumulative work (small on the test chain).
fn work(tip: &Value) -> u128 {
    let hex = tip["chain_work"].as_str().expect("chain work");
    u128::from_str_radix(hex.trim_start_matches("0x"), 16).expect("work fits 128 bits here")
}

fn set_mining(node: &Node, enabled: bool) {
    node.admin("/api/v1/admin/mining", &json!({ "enabled": enabled }));
}

fn submit(node: &Node, spec: &TestSpec, transfer: &Transfer) -> (u16, Value) {
    node.submit(&spec.spec, transfer)
}

#[test]
fn submissions_are_checked_and_every_refusal_has_its_code() {
    let dir = TestDir::new("tx-checks").in_process();
    let spec = dir.write_spec();
    let data = dir.path().join("node");
    let node = dir.start_node("node", &data, &spec, true);
    let s = &spec.spec;
    let to = dev_address(5);

    // A good transfer is pending at once, and confirmed by the mining node.
    let good = dev_transfer(s, 1, to, 1_000, FEE, 0);
    let answer = submit(&node, &spec, &good);
    let txid = txid_of(&answer);
    assert_eq!(answer.1["status"], "pending");
    assert_eq!(txid, good.txid().to_hex());
    // Submitting it again is fine (clients retry).
    assert_eq!(txid_of(&submit(&node, &spec, &good)), txid);
    let confirmed = wait_confirmed(&node, &txid);
    assert!(
        confirmed["confirmations"].as_u64().unwrap() >= 1,
        "{confirmed}"
    );
    assert_eq!(confirmed["transfer"]["amount"], 1_000);

    // The same transfer again, and another with the used nonce.
    assert_refused(submit(&node, &spec, &good), 409, "already_confirmed");
    assert_refused(
        submit(&node, &spec, &dev_transfer(s, 1, to, 2_000, FEE, 0)),
        409,
        "nonce_too_low",
    );

    // A bad signature: one bit flipped.
    let mut forged = dev_transfer(s, 1, to, 3_000, FEE, 1);
    forged.signature.0[10] ^= 1;
    assert_refused(submit(&node, &spec, &forged), 422, "bad_signature");
    // A transfer of another chain: the dev chain's id and genesis.
    let dev = cairn::core::consensus::ChainSpec::dev();
    assert_refused(
        submit(&node, &spec, &dev_transfer(&dev, 1, to, 3_000, FEE, 1)),
        422,
        "wrong_chain",
    );
    // This chain's id, but signed for the dev chain's genesis: the signature fails.
    let mut other_genesis = dev_transfer(&dev, 1, to, 3_000, FEE, 1);
    other_genesis.chain_id = s.chain_id();
    assert_refused(submit(&node, &spec, &other_genesis), 422, "bad_signature");
    // More than the balance.
    let balance = node.balance(s, &dev_address(2));
    assert_refused(
        submit(&node, &spec, &dev_transfer(s, 2, to, balance, FEE, 0)),
        422,
        "insufficient_balance",
    );
    // Amount plus fee overflows 64 bits.
    assert_refused(
        submit(&node, &spec, &dev_transfer(s, 2, to, u64::MAX, FEE, 0)),
        422,
        "overflow",
    );
    // Below the fee floor (164 bytes at 1 unit per byte).
    assert_refused(
        submit(&node, &spec, &dev_transfer(s, 2, to, 5, 163, 0)),
        422,
        "fee_too_low",
    );
    // A nonce far in the future.
    assert_refused(
        submit(&node, &spec, &dev_transfer(s, 2, to, 5, FEE, 1_000)),
        422,
        "nonce_too_far_ahead",
    );

    // Malformed bodies.
    let url = format!("{}/api/v1/transactions", node.url());
    let post = |body: &[u8]| http_post(&url, body, "application/json", None).unwrap();
    assert_refused(post(b"{not json"), 400, "malformed");
    let mut missing = transfer_json(s, &good);
    missing.as_object_mut().unwrap().remove("signature");
    assert_refused(post(missing.to_string().as_bytes()), 400, "malformed");
    let mut huge = transfer_json(s, &good).to_string();
    huge = huge.replacen("\"amount\":1000", "\"amount\":100000000000000000000000", 1);
    assert_refused(post(huge.as_bytes()), 400, "malformed");
    let mut bad_address = transfer_json(s, &good);
    let to_text = bad_address["to"].as_str().unwrap().to_string();
    let flipped = format!(
        "{}{}",
        &to_text[..to_text.len() - 1],
        if to_text.ends_with('q') { 'p' } else { 'q' }
    );
    bad_address["to"] = json!(flipped);
    assert_refused(post(bad_address.to_string().as_bytes()), 400, "bad_address");
    let oversized = format!("{{\"memo_hex\":\"{}\"}}", "ab".repeat(64 * 1024));
    assert_refused(post(oversized.as_bytes()), 413, "payload_too_large");
    assert_refused(status_of(&node, "nothex"), 400, "bad_request");
    assert_refused(status_of(&node, &"ab".repeat(32)), 404, "not_found");

    // The node kept serving and counted the refusals.
    let tip = node.tip();
    assert!(tip["height"].as_u64().unwrap() >= 1, "{tip}");
    let metrics = ureq::get(&format!("{}/metrics", node.url()))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        metrics.contains("cairn_mempool_rejected_total{reason=\"bad_signature\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cairn_mempool_admitted_total 1"),
        "{metrics}"
    );
    node.stop_cleanly();
}

#[test]
fn replace_by_fee_and_a_full_mempool_evicts_the_lowest_fee_rate() {
    let dir = TestDir::new("tx-rbf").in_process();
    let spec = dir.write_spec();
    let data = dir.path().join("node");
    // Room for ten memo-less transfers.
    let node = dir.start_node_with(
        "node",
        &data,
        &spec,
        true,
        &["--mempool-max-bytes".to_string(), "1700".to_string()],
    );
    set_mining(&node, false);
    let s = &spec.spec;
    let to = dev_address(9);

    // Replace-by-fee: a 5% bump is refused, a 100% bump replaces.
    let first = dev_transfer(s, 0, to, 10, 200, 0);
    let first_id = txid_of(&submit(&node, &spec, &first));
    assert_refused(
        submit(&node, &spec, &dev_transfer(s, 0, to, 10, 210, 0)),
        409,
        "replacement_underpriced",
    );
    let second = dev_transfer(s, 0, to, 10, 400, 0);
    let answer = submit(&node, &spec, &second);
    let second_id = txid_of(&answer);
    assert_eq!(answer.1["replaced"], first_id.as_str(), "{}", answer.1);
    assert_eq!(
        status_of(&node, &first_id).0,
        404,
        "the replaced transfer left"
    );
    assert_eq!(status_of(&node, &second_id).1["status"], "pending");

    // Fill the pool: nine more from accounts 1..=9 at rising fees (the lowest from account 1).
    let mut ids = vec![second_id.clone()];
    for account in 1..=9u32 {
        let fee = 200 + u64::from(account) * 10;
        ids.push(txid_of(&submit(
            &node,
            &spec,
            &dev_transfer(s, account, to, 10, fee, 0),
        )));
    }
    let pool = node.get("/api/v1/mempool");
    assert_eq!(pool["count"], 10, "{pool}");
    // A newcomer paying more than the lowest evicts it ...
    let newcomer = dev_transfer(s, 0, to, 10, 500, 1);
    let newcomer_id = txid_of(&submit(&node, &spec, &newcomer));
    assert_eq!(
        status_of(&node, &ids[1]).0,
        404,
        "the lowest fee rate was evicted"
    );
    let pool = node.get("/api/v1/mempool");
    assert_eq!(pool["count"], 10, "{pool}");
    assert_eq!(
        pool["transfers"][0]["txid"],
        newcomer_id.as_str(),
        "best fee rate first: {pool}"
    );
    // ... one paying less than everything held is refused.
    assert_refused(
        submit(&node, &spec, &dev_transfer(s, 1, to, 10, 200, 0)),
        503,
        "mempool_full",
    );

    // Mining again confirms everything held, and nothing else.
    set_mining(&node, true);
    for id in ids.iter().filter(|id| **id != ids[1]).chain([&newcomer_id]) {
        wait_confirmed(&node, id);
    }
    assert_eq!(status_of(&node, &ids[1]).0, 404);
    assert_eq!(status_of(&node, &first_id).0, 404);
    let account = node.get(&format!(
        "/api/v1/accounts/{}",
        to.to_bech32(s.hrp()).unwrap()
    ));
    assert_eq!(account["pending"], 0, "{account}");
    node.stop_cleanly();
}

#[test]
fn pending_transfers_survive_a_restart() {
    let dir = TestDir::new("tx-restart").in_process();
    let spec = dir.write_spec();
    let data = dir.path().join("node");
    let node = dir.start_node("node", &data, &spec, false);
    let s = &spec.spec;
    let ids: Vec<String> = (0..3)
        .map(|nonce| {
            txid_of(&submit(
                &node,
                &spec,
                &dev_transfer(s, 3, dev_address(4), 100, FEE, nonce),
            ))
        })
        .collect();
    let sender = dev_address(3).to_bech32(s.hrp()).unwrap();
    assert_eq!(
        node.get(&format!("/api/v1/accounts/{sender}"))["next_nonce"],
        3
    );
    node.stop_cleanly();

    let node = dir.start_node("node-again", &data, &spec, false);
    for id in &ids {
        let (status, body) = status_of(&node, id);
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("pending")),
            "{body}"
        );
    }
    let account = node.get(&format!("/api/v1/accounts/{sender}"));
    assert_eq!(account["next_nonce"], 3, "{account}");
    assert_eq!(account["pending"], 3, "{account}");
    let log = std::fs::read_to_string(&node.log).unwrap();
    assert!(
        log.contains("restored 3 of 3 saved pending transfers"),
        "log: {log}"
    );
    node.stop_cleanly();
}

#[test]
fn a_reorg_returns_the_losing_branch_transfers_and_they_confirm_on_the_new_branch() {
    let dir = TestDir::new("tx-reorg").in_process();
    let spec = dir.write_spec();
    let s = &spec.spec;
    // Two nodes that do not know each other yet, both mining.
    let mut a = dir.start_node("a", &dir.path().join("a"), &spec, true);
    let mut b = dir.start_node("b", &dir.path().join("b"), &spec, true);
    set_mining(&b, false);

    // A confirms a transfer on its own branch, then stops mining.
    let transfer = dev_transfer(s, 6, dev_address(7), 12_345, FEE, 0);
    let txid = txid_of(&submit(&a, &spec, &transfer));
    let included = wait_confirmed(&a, &txid);
    set_mining(&a, false);
    let a_height = a.tip()["height"].as_u64().unwrap();

    // B mines a heavier branch without it.
    let a_work = work(&a.tip());
    set_mining(&b, true);
    b.wait_for_height(a_height + 2, CONFIRM);
    poll("B's branch heavier than A's", CONFIRM, || {
        let tip = b.tip();
        if work(&tip) > a_work {
            Ok(())
        } else {
            Err(format!("B at {tip}"))
        }
    });
    set_mining(&b, false);
    let b_tip = b.tip();
    assert_eq!(status_of(&b, &txid).0, 404, "B never saw the transfer");

    // Connect them: A switches to B's heavier branch and takes the transfer back.
    a.admin(
        "/api/v1/admin/peers/connect",
        &json!({ "address": b.p2p_addr() }),
    );
    poll("A on B's branch", CONFIRM, || {
        let tip = a.tip();
        if tip["height"].as_u64() >= b_tip["height"].as_u64()
            && a.block(b_tip["height"].as_u64().unwrap())["hash"] == b_tip["hash"]
        {
            Ok(())
        } else {
            Err(format!("A at {tip}"))
        }
    });
    let back = status_of(&a, &txid);
    assert_eq!(
        (back.0, back.1["status"].as_str()),
        (200, Some("pending")),
        "{}",
        back.1
    );
    let log = std::fs::read_to_string(&a.log).unwrap();
    assert!(log.contains("reorganized"), "A logs its reorg");
    assert!(
        log.contains("transfers of disconnected blocks are back in the mempool"),
        "A logs the return"
    );

    // A mines again: the transfer confirms on the new branch, and B sees it there too.
    set_mining(&a, true);
    let again = wait_confirmed(&a, &txid);
    assert_ne!(
        again["block_hash"], included["block_hash"],
        "a block of the new branch"
    );
    a.wait_for_height(again["height"].as_u64().unwrap() + 1, CONFIRM);
    let on_b = wait_confirmed(&b, &txid);
    assert_eq!(on_b["block_hash"], again["block_hash"]);
    assert_eq!(
        a.balance(s, &dev_address(7)),
        b.balance(s, &dev_address(7)),
        "both nodes agree on the recipient's balance"
    );
    a.stop_cleanly();
    b.stop_cleanly();
}

/// Reads server-sent events from `url` until `wanted` names have all been seen (or the
/// deadline passes); returns the `(event, data)` pairs read.
fn read_events(url: &str, wanted: &[&str], deadline: Duration) -> Vec<(String, Value)> {
    use std::io::{BufRead, BufReader};
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(deadline))
        .build()
        .into();
    let response = agent.get(url).call().expect("the event stream opens");
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let mut reader = BufReader::new(response.into_body().into_reader());
    let mut events = Vec::new();
    let mut name = String::new();
    let mut line = String::new();
    let mut missing: Vec<&str> = wanted.to_vec();
    while !missing.is_empty() {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let line = line.trim_end();
        if let Some(value) = line.strip_prefix("event:") {
            name = value.trim().to_string();
        } else if let Some(data) = line.strip_prefix("data:") {
            let data: Value = serde_json::from_str(data.trim()).expect("event data is JSON");
            missing.retain(|w| *w != name);
            events.push((name.clone(), data));
        }
    }
    assert!(missing.is_empty(), "no {missing:?} event; saw {events:?}");
    events
}

#[test]
fn live_events_and_paged_history() {
    let dir = TestDir::new("tx-events").in_process();
    let spec = dir.write_spec();
    let s = &spec.spec;
    let mut node = dir.start_node("node", &dir.path().join("node"), &spec, true);
    node.wait_for_height(5, CONFIRM);

    // The stream shows new tips and admitted transfers as they happen.
    let url = format!("{}/api/v1/events", node.url());
    let transfer = dev_transfer(s, 8, dev_address(1), 77, FEE, 0);
    let reader = std::thread::spawn(move || read_events(&url, &["block", "transfer"], CONFIRM));
    // Keep submitting until the reader is surely subscribed: resubmissions are idempotent,
    // but only the first admission is an event, so use fresh nonces.
    let mut nonce = 0;
    while !reader.is_finished() && nonce < 20 {
        let next = dev_transfer(s, 8, dev_address(1), 77, FEE, nonce);
        txid_of(&submit(
            &node,
            &spec,
            if nonce == 0 { &transfer } else { &next },
        ));
        nonce += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    let events = reader.join().expect("the reader finishes");
    let block = &events
        .iter()
        .find(|(name, _)| name == "block")
        .expect("a block")
        .1;
    assert!(block["height"].as_u64().unwrap() > 0, "{block}");
    assert_eq!(block["hash"].as_str().map(str::len), Some(64), "{block}");
    let admitted = &events
        .iter()
        .find(|(name, _)| name == "transfer")
        .expect("a transfer")
        .1;
    assert_eq!(admitted["amount"], 77, "{admitted}");
    assert_eq!(
        admitted["from"],
        dev_address(8).to_bech32(s.hrp()).unwrap().as_str()
    );

    // History pages: the miner's rewards, two at a time, newest first, no overlaps, no gaps.
    let miner = &spec.miner_address;
    let mut cursor: Option<String> = None;
    let mut heights = Vec::new();
    for _ in 0..3 {
        let path = match &cursor {
            Some(c) => format!("/api/v1/accounts/{miner}/history?limit=2&cursor={c}"),
            None => format!("/api/v1/accounts/{miner}/history?limit=2"),
        };
        let page = node.get(&path);
        let items = page["items"].as_array().expect("items");
        assert_eq!(items.len(), 2, "{page}");
        heights.extend(items.iter().map(|i| i["height"].as_u64().unwrap()));
        cursor = Some(page["next"].as_str().expect("a next page").to_string());
    }
    let mut sorted = heights.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(sorted, heights, "newest first, each once: {heights:?}");
    assert_refused(
        node.try_get(&format!("/api/v1/accounts/{miner}/history?cursor=zz"))
            .unwrap(),
        400,
        "malformed",
    );
    assert_refused(
        node.try_get("/api/v1/accounts/cairndev1notanaddress")
            .unwrap(),
        400,
        "bad_address",
    );
    node.stop_cleanly();
}

/// The proof of `address` at `block` (`None`: the tip), checked with the core's verifier
/// against the header the node names at that height in `/api/v1/blocks`: the account or
/// `None`, and the proof's height.
fn proven_account(
    node: &Node,
    hrp: &str,
    address: &str,
    block: Option<&str>,
) -> (Option<u64>, u64) {
    let path = match block {
        Some(block) => format!("/api/v1/accounts/{address}/proof?block={block}"),
        None => format!("/api/v1/accounts/{address}/proof"),
    };
    let view: cairn::core::views::AccountProofView =
        serde_json::from_value(node.get(&path)).expect("a proof view");
    let trusted: cairn::core::primitives::BlockHash = node
        .get(&format!("/api/v1/blocks/{}", view.height))["hash"]
        .as_str()
        .expect("a hash")
        .parse()
        .expect("hex");
    let parsed = Address::from_bech32(address, hrp).expect("a Cairn address");
    let (header, account) =
        cairn::core::state::proof::verify_served(&view.proof, &parsed, &view.header, &trusted)
            .unwrap_or_else(|e| panic!("the proof of {address} does not verify: {e}"));
    assert_eq!(header.height, view.height);
    assert_eq!(
        account.map(|a| a.balance.as_units()),
        view.account.map(|a| a.balance)
    );
    (
        account.map(|a| a.balance.as_units()),
        u64::from(view.height),
    )
}

#[test]
fn account_proofs_verify_against_the_headers_they_name() {
    let dir = TestDir::new("tx-proofs").in_process();
    let spec = dir.write_spec();
    let hrp = spec.spec.hrp();
    let mut node = dir.start_node("node", &dir.path().join("node"), &spec, true);
    node.wait_for_height(4, CONFIRM);
    set_mining(&node, false);
    node.wait_for_still_tip();

    // An account with rewards, a funded dev account, an address never used.
    let miner = spec.miner_address.clone();
    let funded = dev_address(9).to_bech32(hrp).unwrap();
    let unused = Address([0x5a; 32]).to_bech32(hrp).unwrap();
    for address in [&miner, &funded] {
        let (balance, _) = proven_account(&node, hrp, address, None);
        let account = node.get(&format!("/api/v1/accounts/{address}"));
        assert_eq!(balance, account["balance"].as_u64(), "{address}");
        assert!(balance.unwrap() > 0);
    }
    assert_eq!(proven_account(&node, hrp, &unused, None).0, None);

    // At an earlier block, by height and by hash: the miner had less then.
    let (now, tip) = proven_account(&node, hrp, &miner, None);
    let (at_two, height) = proven_account(&node, hrp, &miner, Some("2"));
    assert_eq!(height, 2);
    assert!(
        at_two.unwrap() < now.unwrap(),
        "{at_two:?} at 2, {now:?} at {tip}"
    );
    let hash_of_two = node.get("/api/v1/blocks/2")["hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        proven_account(&node, hrp, &miner, Some(&hash_of_two)).0,
        at_two
    );

    // Mistakes get their codes.
    assert_refused(
        node.try_get(&format!("/api/v1/accounts/{miner}/proof?block=zz"))
            .unwrap(),
        400,
        "bad_request",
    );
    assert_refused(
        node.try_get(&format!("/api/v1/accounts/{miner}/proof?block=999999"))
            .unwrap(),
        404,
        "not_found",
    );
    assert_refused(
        node.try_get(&format!(
            "/api/v1/accounts/{miner}/proof?block={}",
            "ab".repeat(32)
        ))
        .unwrap(),
        404,
        "not_found",
    );
    assert_refused(
        node.try_get("/api/v1/accounts/cairndev1notanaddress/proof")
            .unwrap(),
        400,
        "bad_address",
    );
    node.stop_cleanly();
}
