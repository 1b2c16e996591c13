//! The `cairn node` process: clean shutdown on SIGTERM, restart at the stored tip, and the
//! data directory guarded against a second node and against another chain.
#![allow(clippy::disallowed_methods)]

mod common;

use common::{arg, cairn, mining_args, node_args, verify, TestDir};
use std::path::Path;
use std::time::Duration;

const MINING_TIMEOUT: Duration = Duration::from_secs(60);

/// The last "mined block {hash} at height {height}" line of a node log.
fn last_mined_block(log: &Path) -> Option<(u64, String)> {
    let text = std::fs::read_to_string(log).expect("cannot read the node log");
    text.lines().rev().find_map(|line| {
        let rest = line.split_once("mined block ")?.1;
        let (hash, rest) = rest.split_once(" at height ")?;
        let height = rest.split_whitespace().next()?.parse().ok()?;
        Some((height, hash.to_string()))
    })
}

#[test]
fn restart_resumes_at_the_stored_tip_and_keeps_mining() {
    let dir = TestDir::new("restart");
    let spec = dir.write_spec();
    let data = dir.path().join("data");

    // Run 1: mine past height 20, then SIGTERM (exit 0, "stopped cleanly").
    let mut node = dir.start_node("1-mining", &data, &spec, true);
    let seen = node.wait_for_height(20, MINING_TIMEOUT);
    let seen_height = seen["height"].as_u64().expect("height");
    let log = node.log.clone();
    node.stop_cleanly();

    // The node mines until it stops, so the API may have shown an older tip than the final
    // one. The stored tip is what `verify` replays to; it must be the last block the node
    // logged as mined: nothing acknowledged was lost on a clean stop.
    let (height, hash) = verify(&data, &spec);
    assert!(height >= seen_height, "verified {height} < seen {seen}");
    assert_eq!(
        last_mined_block(&log),
        Some((height, hash.clone())),
        "the stored tip is not the last block the node logged as mined"
    );

    // Run 2, not mining, so nothing moves: the tip right after start is the stored one.
    let node = dir.start_node("2-idle", &data, &spec, false);
    assert_eq!(node.startup_tip(), (height, hash.clone()));
    let recorded = node.tip();
    assert_eq!(recorded["height"], height, "{recorded}");
    assert_eq!(recorded["hash"], hash, "{recorded}");
    let at_tip = node.block(height);
    for field in ["hash", "state_root", "chain_work"] {
        assert_eq!(
            recorded[field], at_tip[field],
            "{field}: {recorded} vs {at_tip}"
        );
    }
    // The tip seen over the API before the stop is unchanged on the best chain.
    let old = node.block(seen_height);
    for field in ["hash", "state_root", "chain_work"] {
        assert_eq!(old[field], seen[field], "{field}: {old} vs {seen}");
    }
    assert_eq!(old["best_chain"], true, "{old}");
    node.stop_cleanly();

    // Run 3, mining again: opens at the same tip and builds on it.
    let mut node = dir.start_node("3-mining", &data, &spec, true);
    assert_eq!(node.startup_tip(), (height, hash.clone()));
    let grown = node.wait_for_height(height + 5, MINING_TIMEOUT);
    let old = node.block(height);
    for field in ["hash", "state_root", "chain_work"] {
        assert_eq!(old[field], recorded[field], "{field}: {old} vs {recorded}");
    }
    assert_eq!(old["best_chain"], true, "{old}");
    assert!(
        old["next_hash"].is_string(),
        "block {height} has a successor: {old}"
    );
    node.stop_cleanly();
    let (final_height, _) = verify(&data, &spec);
    assert!(final_height >= grown["height"].as_u64().expect("height"));
}

#[test]
fn data_dir_is_refused_to_a_second_node_and_to_another_chain() {
    let dir = TestDir::new("datadir");
    let spec = dir.write_spec();
    let data = dir.path().join("data");
    let mut node = dir.start_node("first", &data, &spec, true);
    let before = node.wait_for_height(3, MINING_TIMEOUT);

    let mut second_args = node_args(&data, &spec);
    second_args.extend(mining_args(&spec));
    let second = cairn(second_args);
    second.expect_failure(&["data directory", arg(&data)]);
    let verify_running = cairn(["verify", "--data-dir", arg(&data), "--chain", spec.arg()]);
    verify_running.expect_failure(&["is a node running on it?"]);

    // The first node did not notice: same API address, still mining.
    let addr_file = data.join(cairn::node::API_ADDR_FILE);
    let addr = std::fs::read_to_string(&addr_file).expect("api.addr");
    assert_eq!(
        addr.trim(),
        node.api.to_string(),
        "api.addr was overwritten"
    );
    node.wait_for_height(
        before["height"].as_u64().expect("height") + 2,
        MINING_TIMEOUT,
    );
    node.stop_cleanly();

    // A data directory of another chain (another genesis) is refused, naming --data-dir.
    let other = cairn([
        "node",
        "--data-dir",
        arg(&data),
        "--chain",
        "dev",
        "--http",
        "127.0.0.1:0",
    ]);
    other.expect_failure(&["--data-dir", "genesis"]);
    verify(&data, &spec);
}
