//! Snapshot sync end to end (issue 15): a chain of 100,000 accounts and 2,000 blocks is built
//! in this process into a node's store; that node serves it; a fresh node started with
//! `--sync snapshot` takes every header, fetches the state of the block 100 below the tip in
//! pages checked against its state root, validates the blocks after it in full, and then
//! fetches the blocks below it in the background. It ends
//! on the same tip and state root as the node that validated everything, answers for
//! accounts and proves them, and `cairn verify` checks what it keeps. Nodes on 127.0.0.1,
//! free ports, temp directories, stopped on drop.
//!
//! A peer in the test process serves the same chain with one account altered in every state
//! page; the fresh node meets it first, bans it for the first page, and fetches the pages from
//! the honest node once it meets it.
//!
//! `CAIRN_SNAPSHOT_ACCOUNTS` and `CAIRN_SNAPSHOT_BLOCKS` make the chain larger;
//! `CAIRN_SNAPSHOT_COMPARE=N` also times N fresh nodes synced by snapshot and N in full, in
//! turn, from the same node (docs/BENCHMARKS.md, "Snapshot sync").
#![allow(clippy::disallowed_methods)]

mod common;

use cairn::core::chain::manager::ChainManager;
use cairn::core::consensus::ChainSpec;
use cairn::core::miner::template_on;
use cairn::core::primitives::transfer::UnsignedTransfer;
use cairn::core::primitives::{tagged_hash, Address, Amount};
use cairn::core::protocol::machine::Protocol;
use cairn::core::protocol::messages::{SyncRequest, SyncResponse, MAX_HEADERS};
use cairn::core::state::{SmtNode, StateView};
use cairn::core::testkit::solve;
use cairn::node::chain::open_chain;
use cairn::node::net::{self, NetCommand, NetEvent, PeerId};
use cairn::node::store::Store;
use common::{arg, cairn, poll, replace_once, test_spec_toml, unix_now, Node, TestDir, TestSpec};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// Blocks below the tip the snapshot is taken at.
const DEPTH: u32 = 100;

fn env_or(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The process-test spec with the easiest target, so that thousands of blocks are built in
/// seconds (blocks on schedule keep it there).
fn write_spec(dir: &Path) -> TestSpec {
    let text = replace_once(&test_spec_toml(), "0x1f00ffff", "0x207fffff");
    let spec = ChainSpec::from_toml(&text).expect("the edited spec is valid");
    let path = dir.join("snapshot.toml");
    std::fs::write(&path, &text).expect("cannot write the spec");
    let (address, _) = spec.allocations[0];
    TestSpec {
        miner_address: address.to_bech32(spec.hrp()).expect("valid prefix"),
        path,
        spec,
    }
}

/// The address of test account `i`.
fn account(i: u32) -> Address {
    Address(tagged_hash("cairn/test-snapshot-sync", &[&i.to_be_bytes()]))
}

/// Builds the chain into `data_dir`: its first blocks pay `accounts` accounts from the dev
/// accounts (2,000 transfers a block), the rest are empty, `blocks` in all, on schedule up
/// to now.
fn build_chain(data_dir: &Path, spec: &ChainSpec, accounts: u32, blocks: u32) {
    let mut chain: ChainManager<Store> =
        open_chain(&data_dir.join("chain"), spec.clone()).expect("a fresh store");
    let genesis = chain.genesis_hash();
    let dev: Vec<_> = (0..10).map(cairn_wallet::keys::dev_keypair).collect();
    let (miner, _) = spec.allocations[0];
    let start = unix_now() - u64::from(blocks) - 5;
    let mut paid = 0u32;
    let mut nonces = [0u64; 10];
    for n in 1..=blocks {
        let mut transfers = Vec::new();
        while paid < accounts && transfers.len() < 2_000 {
            let sender = (paid % 10) as usize;
            transfers.push(
                UnsignedTransfer {
                    chain_id: spec.chain_id(),
                    to: account(paid),
                    amount: Amount::from_units(1_000 + u64::from(paid)),
                    fee: Amount::from_units(10),
                    nonce: nonces[sender],
                    memo: Vec::new(),
                }
                .sign(&dev[sender], &genesis, &[7; 32]),
            );
            nonces[sender] += 1;
            paid += 1;
        }
        let mut block = template_on(&chain, miner, start + u64::from(n), u64::from(n), transfers)
            .expect("a template")
            .block;
        solve(&mut block.header);
        chain
            .submit_block(block, unix_now())
            .expect("the built block is valid");
    }
    chain.store().flush().expect("flushed");
}

fn info(node: &Node) -> serde_json::Value {
    node.get("/api/v1/info")
}

/// A peer in this process that serves the chain in `data_dir` honestly (statuses, headers,
/// blocks) except for its state pages, in each of which one account's nonce is raised. It
/// dials `target`. Stopped when the runtime is dropped.
fn start_liar(runtime: &Runtime, data_dir: &Path, spec: &TestSpec, target: &Node) {
    let chain: ChainManager<Store> =
        open_chain(&data_dir.join("chain"), spec.spec.clone()).expect("the liar's store");
    let status = Protocol::<PeerId>::status(&chain);
    let config = common::test_peer_net_config(data_dir, status.genesis, spec, target);
    let (sender, mut events) = tokio::sync::mpsc::unbounded_channel();
    let _entered = runtime.enter();
    let (net, _service) = net::start(
        config,
        Box::new(move |event| {
            let _ = sender.send(event);
        }),
    )
    .expect("the liar's network starts");
    runtime.spawn(async move {
        while let Some(event) = events.recv().await {
            let NetEvent::InboundRequest { id, request, .. } = event else {
                continue;
            };
            let response = match request {
                SyncRequest::Status(_) => SyncResponse::Status(status.clone()),
                SyncRequest::GetHeaders { locator, max } => SyncResponse::Headers(
                    chain
                        .headers_after(&locator, (max as usize).min(MAX_HEADERS))
                        .expect("the liar's store reads")
                        .unwrap_or_default(),
                ),
                SyncRequest::GetBlocks { hashes } => SyncResponse::Blocks(
                    hashes
                        .iter()
                        .filter_map(|hash| chain.block(hash).expect("the liar's store reads"))
                        .collect(),
                ),
                SyncRequest::GetStatePages { tops } => SyncResponse::StatePages(
                    tops.iter()
                        .map(|top| {
                            let page = chain.store().smt_page(top).expect("reads");
                            let mut nodes: Vec<SmtNode> = page
                                .map(|p| p.nodes().cloned().collect())
                                .unwrap_or_default();
                            if let Some(SmtNode::Leaf { account, .. }) = nodes
                                .iter_mut()
                                .find(|node| matches!(node, SmtNode::Leaf { .. }))
                            {
                                account.nonce += 1;
                            }
                            nodes
                        })
                        .collect(),
                ),
                _ => {
                    net.send(NetCommand::Refuse { id });
                    continue;
                }
            };
            net.send(NetCommand::Respond { id, response });
        }
    });
}

/// The reason of the first ban `node` records, once it has one.
fn first_ban(node: &Node) -> String {
    poll("a ban", Duration::from_secs(120), || {
        let view = node.peers();
        view["bans"]
            .as_array()
            .and_then(|bans| bans.first())
            .map(|ban| ban["reason"].as_str().unwrap_or_default().to_string())
            .ok_or_else(|| format!("bans: {}", view["bans"]))
    })
}

/// Waits until `node` is on `tip`.
fn wait_for_tip(node: &Node, tip: &serde_json::Value) {
    poll("the tip", Duration::from_secs(600), || {
        let now = node.tip();
        if now["hash"] == tip["hash"] {
            Ok(())
        } else {
            Err(format!("at height {}", now["height"]))
        }
    });
}

/// For docs/BENCHMARKS.md: fresh nodes synced from `source` by snapshot and in full, in
/// turn, `runs` times each: seconds to the tip and bytes received.
fn compare_sync_modes(
    dir: &TestDir,
    spec: &TestSpec,
    source: &Node,
    tip: &serde_json::Value,
    runs: u32,
) {
    for run in 1..=runs {
        for mode in ["snapshot", "full"] {
            let name = format!("{mode}-{run}");
            let started = Instant::now();
            let node = dir.start_node_with(
                &name,
                &dir.path().join(&name),
                spec,
                false,
                &[
                    "--bootnode".to_string(),
                    source.p2p_addr(),
                    "--sync".to_string(),
                    mode.to_string(),
                    "--snapshot-depth".to_string(),
                    DEPTH.to_string(),
                ],
            );
            wait_for_tip(&node, tip);
            eprintln!(
                "compare: {mode} sync, run {run}: on the tip in {:.2} s, {:.2} MB received",
                started.elapsed().as_secs_f64(),
                received_bytes(&node) as f64 / 1e6
            );
            node.stop_cleanly();
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("readable") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copied");
        }
    }
}

/// Bytes `node` received from peers (its metrics).
fn received_bytes(node: &Node) -> u64 {
    let text = common::http_agent()
        .get(format!("{}/metrics", node.url()))
        .call()
        .expect("metrics")
        .body_mut()
        .read_to_string()
        .expect("text");
    text.lines()
        .find_map(|line| line.strip_prefix("cairn_p2p_received_bytes_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no received bytes in the metrics:\n{text}"))
}

#[test]
fn a_fresh_node_bootstraps_by_snapshot_and_ends_where_a_full_node_is() {
    let accounts = env_or("CAIRN_SNAPSHOT_ACCOUNTS", 100_000);
    let blocks = env_or("CAIRN_SNAPSHOT_BLOCKS", 2_000);
    let dir = TestDir::new("snapshot-sync");
    let spec = write_spec(dir.path());
    let source_dir = dir.path().join("source");
    let started = Instant::now();
    build_chain(&source_dir, &spec.spec, accounts, blocks);
    eprintln!(
        "built {blocks} blocks paying {accounts} accounts in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The liar serves a copy of the same chain.
    let liar_dir = dir.path().join("liar");
    copy_dir(&source_dir, &liar_dir);
    let source = dir.start_node("source", &source_dir, &spec, false);
    let tip = source.tip();
    assert_eq!(tip["height"], blocks);

    // The fresh node meets the liar first: its headers are honest, its pages are not.
    let fresh_dir = dir.path().join("fresh");
    let fresh = dir.start_node_with(
        "fresh",
        &fresh_dir,
        &spec,
        false,
        &[
            "--sync".to_string(),
            "snapshot".to_string(),
            "--snapshot-depth".to_string(),
            DEPTH.to_string(),
        ],
    );
    let runtime = Runtime::new().expect("a tokio runtime");
    start_liar(&runtime, &liar_dir, &spec, &fresh);
    let reason = first_ban(&fresh);
    assert!(reason.contains("state page"), "{reason}");
    assert_eq!(fresh.tip()["height"], 0, "nothing adopted from the liar");
    drop(runtime);

    // Then the honest node: the pages are fetched from it.
    let started = Instant::now();
    fresh.admin(
        "/api/v1/admin/peers/connect",
        &serde_json::json!({ "address": source.p2p_addr() }),
    );
    wait_for_tip(&fresh, &tip);
    let bytes = received_bytes(&fresh);
    eprintln!(
        "the fresh node reached the tip by snapshot {:.1} s after meeting an honest peer, \
         {:.1} MB received",
        started.elapsed().as_secs_f64(),
        bytes as f64 / 1e6
    );
    // The same tip and state root as the node that validated every block.
    let hash = tip["hash"].as_str().unwrap();
    assert_eq!(
        fresh.block(hash)["header"]["state_root"],
        source.block(hash)["header"]["state_root"]
    );
    assert_eq!(info(&fresh)["snapshot_height"], blocks - DEPTH);
    assert!(info(&source).get("snapshot_height").is_none());
    let log = std::fs::read_to_string(&fresh.log).unwrap();
    assert!(log.contains("snapshot adopted"), "{log}");
    // Accounts answer alike, and their proofs check.
    for i in [0, accounts / 2, accounts - 1] {
        let address = account(i).to_bech32(spec.spec.hrp()).unwrap();
        let path = format!("/api/v1/accounts/{address}");
        assert_eq!(fresh.get(&path)["balance"], source.get(&path)["balance"]);
        // Checked against the hash of the block the node that validated everything has.
        let view: cairn::core::views::AccountProofView =
            serde_json::from_value(fresh.get(&format!("{path}/proof"))).unwrap();
        let trusted = source.block(view.height)["hash"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let checked = cairn::core::state::proof::verify_served(
            &view.proof,
            &account(i),
            &view.header,
            &trusted,
        );
        let (_, found) = checked.unwrap_or_else(|e| panic!("account {i}: {e}"));
        assert_eq!(
            found.map(|a| a.balance.as_units()),
            Some(1_000 + u64::from(i))
        );
    }
    // The blocks below the snapshot follow in the background, checked against their headers.
    poll(
        "the blocks below the snapshot",
        Duration::from_secs(300),
        || {
            let old = &info(&fresh)["old_blocks"];
            if old["through"] == blocks - DEPTH {
                Ok(())
            } else {
                Err(format!("old blocks: {old}"))
            }
        },
    );
    for height in [1, 25, blocks - DEPTH] {
        assert_eq!(fresh.block(height), source.block(height), "block {height}");
    }
    if let Ok(runs) = std::env::var("CAIRN_SNAPSHOT_COMPARE") {
        compare_sync_modes(&dir, &spec, &source, &tip, runs.parse().unwrap_or(3));
    }
    fresh.stop_cleanly();
    source.stop_cleanly();
    // `cairn verify` checks the headers to the snapshot, its state, and the blocks after.
    let output = cairn([
        "verify",
        "--data-dir",
        arg(&fresh_dir),
        "--chain",
        spec.arg(),
    ]);
    let stdout = output.expect_ok();
    assert!(
        stdout.contains(&format!(
            "bootstrapped by snapshot at height {}",
            blocks - DEPTH
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{DEPTH} blocks after it")),
        "{stdout}"
    );
}
