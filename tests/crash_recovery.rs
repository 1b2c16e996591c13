//! Crash safety: SIGKILL a mining node at random moments, over and over on the same data
//! directory. Each restart must open cleanly and lose at most the block being written, and
//! `cairn verify` (a full replay from genesis) must accept the store every time. The same
//! for a node syncing a chain and catching its transfer index up behind the tip.
#![allow(clippy::disallowed_methods)]

mod common;

use common::{bootnode_args, poll, premine, verify, TestDir, XorShift};
use std::time::{Duration, Instant};

const ROUNDS: u32 = 20;
/// Kill delays after the API comes up, in milliseconds.
const KILL_AFTER_MS: (u64, u64) = (50, 1500);

#[test]
fn kill_9_at_random_moments_leaves_a_store_that_reopens_and_verifies() {
    let mut rng = XorShift::from_env_or_clock();
    let dir = TestDir::new("crash");
    let spec = dir.write_spec();
    let data = dir.path().join("data");

    // The highest height the API reported before a kill. The chain manager flushes after
    // every block it connects, so at most the block being written can be lost.
    let mut max_reported = 0u64;
    let mut start_heights = Vec::new();
    for round in 1..=ROUNDS {
        let node = dir.start_node(&format!("round-{round:02}"), &data, &spec, true);
        let (start_height, start_hash) = node.startup_tip();
        eprintln!(
            "round {round}: reopened at height {start_height} \
             ({max_reported} was the highest reported before the kill)"
        );
        assert!(
            start_height + 1 >= max_reported,
            "round {round}: reopened at height {start_height}, but height {max_reported} had \
             been reported before the kill"
        );
        start_heights.push(start_height);
        // The tip it reopened at is served, on the best chain (it may have moved on already).
        let block = node.block(start_height);
        assert_eq!(block["hash"], start_hash.as_str(), "round {round}: {block}");
        assert_eq!(block["best_chain"], true, "round {round}: {block}");

        // Watch the tip until the random moment, then SIGKILL.
        let delay = Duration::from_millis(rng.range(KILL_AFTER_MS.0, KILL_AFTER_MS.1));
        let kill_at = Instant::now() + delay;
        while let Some(left) = kill_at.checked_duration_since(Instant::now()) {
            if let Ok((200, tip)) = node.try_get("/api/v1/tip") {
                max_reported = max_reported.max(tip["height"].as_u64().expect("height"));
            }
            std::thread::sleep(left.min(Duration::from_millis(10)));
        }
        node.kill9();

        // Now and then, check the store exactly as the crash left it.
        if round % 5 == 0 {
            let (height, _) = verify(&data, &spec);
            assert!(
                height + 1 >= max_reported,
                "round {round}: verified height {height}, but {max_reported} was reported"
            );
        }
    }

    // After all that, the node still starts, mines on, and stops cleanly.
    let mut node = dir.start_node("final", &data, &spec, true);
    let (start_height, _) = node.startup_tip();
    assert!(start_height + 1 >= max_reported);
    node.wait_for_height(start_height + 3, Duration::from_secs(60));
    node.stop_cleanly();
    let (height, _) = verify(&data, &spec);
    eprintln!("start heights per round: {start_heights:?}; final height {height}");
    assert!(
        height > u64::from(ROUNDS),
        "the chain made too little progress over {ROUNDS} crashes: height {height}"
    );
    assert!(
        start_heights.windows(2).filter(|w| w[1] > w[0]).count() >= ROUNDS as usize / 2,
        "the chain should grow across most restarts: {start_heights:?}"
    );
}

/// Rounds of the sync test.
const SYNC_ROUNDS: u32 = 8;
/// Blocks the served chain has.
const SERVED_BLOCKS: u32 = 2_000;

/// kill -9 while a fresh node syncs a chain and while its index stage catches up behind the
/// tip: every restart opens and `cairn verify` accepts the store as the crash left it (chain,
/// state, and the transfer index holding exactly the blocks up to its marker); in the end
/// the node has the whole chain, indexed.
#[test]
fn kill_9_during_sync_and_index_catch_up_leaves_a_store_that_verifies() {
    let mut rng = XorShift::from_env_or_clock();
    let dir = TestDir::new("crash-sync");
    let spec = dir.write_spec();
    let served = dir.path().join("served");
    let served_tip = premine(&served, &spec, SERVED_BLOCKS);
    let server = dir.start_node("server", &served, &spec, false);
    let data = dir.path().join("syncer");
    let mut index_seen_behind = false;
    for round in 1..=SYNC_ROUNDS {
        let node = dir.start_node_with(
            &format!("sync-{round:02}"),
            &data,
            &spec,
            false,
            &bootnode_args(&[&server]),
        );
        let delay = Duration::from_millis(rng.range(KILL_AFTER_MS.0, KILL_AFTER_MS.1 / 3));
        let kill_at = Instant::now() + delay;
        let mut last_seen = (0, 0);
        while let Some(left) = kill_at.checked_duration_since(Instant::now()) {
            if let Ok((200, info)) = node.try_get("/api/v1/info") {
                let (height, indexed) = (&info["height"], &info["indexed_height"]);
                last_seen = (height.as_u64().unwrap_or(0), indexed.as_u64().unwrap_or(0));
                index_seen_behind |= last_seen.1 < last_seen.0;
            }
            std::thread::sleep(left.min(Duration::from_millis(5)));
        }
        node.kill9();
        let (height, _) = verify(&data, &spec);
        eprintln!(
            "round {round}: killed after {delay:?} (last seen: height {}, indexed to {}), \
             verified at height {height}",
            last_seen.0, last_seen.1
        );
    }
    let node = dir.start_node_with("final", &data, &spec, false, &bootnode_args(&[&server]));
    poll("synced and indexed", Duration::from_secs(120), || {
        let info = node.get("/api/v1/info");
        let synced = info["tip"].as_str() == Some(served_tip.as_str());
        if synced && info["indexed_height"] == info["height"] {
            Ok(())
        } else {
            Err(format!(
                "at {} indexed to {}",
                info["height"], info["indexed_height"]
            ))
        }
    });
    node.stop_cleanly();
    let (height, hash) = verify(&data, &spec);
    assert_eq!((height, hash), (u64::from(SERVED_BLOCKS), served_tip));
    assert!(
        index_seen_behind,
        "the index never lagged the tip: the index stage was not exercised"
    );
}
