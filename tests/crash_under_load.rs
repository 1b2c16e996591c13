//! Crash safety under load: a mining node takes a steady stream of transfers from four
//! client threads and is killed with SIGKILL at random instants, over and over on the same
//! data directory. After every restart, every transfer the API ever accepted is still
//! pending or confirmed, every transfer it ever reported confirmed still is, and the tip is
//! at least as high as any it reported; `cairn verify` accepts the store.
//!
//! `CAIRN_CRASH_ROUNDS` (default 20) sets the number of kills (docs/BENCHMARKS.md records a
//! 100-round run); `CAIRN_TEST_SEED` replays a run's kill instants.
#![allow(clippy::disallowed_methods)]

mod common;

use common::{dev_transfer, http_post, transfer_json, verify, Node, TestDir, XorShift};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Kill delays after the API comes up, in milliseconds.
const KILL_AFTER_MS: (u64, u64) = (200, 2500);
/// Dev accounts that send, one per client thread.
const SENDERS: [u32; 4] = [1, 2, 3, 4];
const FEE: u64 = 200;

/// What the API has said, across every round.
#[derive(Default)]
struct Ledger {
    /// Transfers answered 200 (or 409 `already_confirmed` for a resubmission).
    accepted: BTreeSet<String>,
    /// Transfers reported confirmed.
    confirmed: BTreeSet<String>,
    /// The highest tip reported.
    max_height: u64,
}

/// The node the clients talk to: its API URL, or `None` while it is down.
type Target = Arc<Mutex<Option<String>>>;

/// A client thread: submits the transfers of dev account `sender`, nonce after nonce, to
/// whichever node is up; a request whose answer was lost is sent again, identical.
fn client(
    sender: u32,
    spec: cairn::core::consensus::ChainSpec,
    target: Target,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
) {
    let to = spec.allocations[0].0;
    let mut nonce = 0;
    while !stop.load(Ordering::Relaxed) {
        let Some(url) = target.lock().expect("not poisoned").clone() else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let transfer = dev_transfer(&spec, sender, to, 1_000, FEE, nonce);
        let body = transfer_json(&spec, &transfer).to_string();
        let answer = http_post(
            &format!("{url}/api/v1/transactions"),
            body.as_bytes(),
            "application/json",
            None,
        );
        match answer {
            Ok((200, _)) => {}
            Ok((409, answer)) if answer["error"]["code"] == "already_confirmed" => {}
            // The node is stopping, busy, not yet serving, or holds as many of this sender's
            // transfers as it takes: try the same transfer again.
            Ok((429 | 503, _)) | Err(_) => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Ok((422, answer)) if answer["error"]["code"] == "nonce_too_far_ahead" => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Ok((status, answer)) => {
                panic!("sender {sender} nonce {nonce}: unexpected {status} {answer}")
            }
        }
        ledger
            .lock()
            .expect("not poisoned")
            .accepted
            .insert(transfer.txid().to_hex());
        nonce += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Reads the tip and the status of each accepted transfer not yet seen confirmed.
fn observe(node: &Node, ledger: &Mutex<Ledger>) {
    if let Ok((200, tip)) = node.try_get("/api/v1/tip") {
        let height = tip["height"].as_u64().expect("height");
        let mut ledger = ledger.lock().expect("not poisoned");
        ledger.max_height = ledger.max_height.max(height);
    }
    let unconfirmed: Vec<String> = {
        let ledger = ledger.lock().expect("not poisoned");
        ledger
            .accepted
            .difference(&ledger.confirmed)
            .cloned()
            .collect()
    };
    for txid in unconfirmed {
        if let Ok((200, status)) = node.try_get(&format!("/api/v1/transactions/{txid}")) {
            if status["status"] == "confirmed" {
                ledger.lock().expect("not poisoned").confirmed.insert(txid);
            }
        }
    }
}

/// After a restart: nothing the API said before the kill was taken back.
fn assert_nothing_lost(round: u32, node: &Node, ledger: &Mutex<Ledger>) {
    let (height, _) = node.startup_tip();
    let ledger = ledger.lock().expect("not poisoned");
    assert!(
        height >= ledger.max_height,
        "round {round}: reopened at height {height}, but {} had been reported",
        ledger.max_height
    );
    for txid in &ledger.accepted {
        let (code, status) = node
            .try_get(&format!("/api/v1/transactions/{txid}"))
            .expect("the API answers");
        assert_eq!(
            code, 200,
            "round {round}: accepted transfer {txid} was lost"
        );
        if ledger.confirmed.contains(txid) {
            assert_eq!(
                status["status"], "confirmed",
                "round {round}: {txid} was confirmed, now {status}"
            );
        }
    }
}

#[test]
fn kill_9_under_a_stream_of_transfers_loses_no_accepted_or_confirmed_transfer() {
    let rounds: u32 = std::env::var("CAIRN_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut rng = XorShift::from_env_or_clock();
    let dir = TestDir::new("crash-load");
    let spec = dir.write_spec();
    let data = dir.path().join("data");
    let target: Target = Arc::new(Mutex::new(None));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = SENDERS
        .iter()
        .map(|&sender| {
            let (spec, target, ledger, stop) = (
                spec.spec.clone(),
                Arc::clone(&target),
                Arc::clone(&ledger),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || client(sender, spec, target, ledger, stop))
        })
        .collect();
    // The clients stop even if an assertion below fails.
    struct StopOnDrop(Arc<AtomicBool>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let _stop_clients = StopOnDrop(Arc::clone(&stop));

    for round in 1..=rounds {
        let node = dir.start_node(&format!("round-{round:03}"), &data, &spec, true);
        assert_nothing_lost(round, &node, &ledger);
        *target.lock().expect("not poisoned") = Some(node.url());
        let delay = Duration::from_millis(rng.range(KILL_AFTER_MS.0, KILL_AFTER_MS.1));
        let kill_at = Instant::now() + delay;
        while Instant::now() < kill_at {
            observe(&node, &ledger);
            std::thread::sleep(Duration::from_millis(50));
        }
        node.kill9();
        *target.lock().expect("not poisoned") = None;
        if round % 5 == 0 {
            let (height, _) = verify(&data, &spec);
            let reported = ledger.lock().expect("not poisoned").max_height;
            assert!(
                height >= reported,
                "round {round}: verified {height} < {reported}"
            );
        }
        let ledger = ledger.lock().expect("not poisoned");
        eprintln!(
            "round {round}: killed after {delay:?}; {} accepted, {} confirmed, tip {}",
            ledger.accepted.len(),
            ledger.confirmed.len(),
            ledger.max_height
        );
    }

    // A last start: everything is still there, mining goes on, it stops cleanly.
    let node = dir.start_node("final", &data, &spec, true);
    assert_nothing_lost(rounds + 1, &node, &ledger);
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("a client thread panicked");
    }
    node.stop_cleanly();
    verify(&data, &spec);
    let ledger = ledger.lock().expect("not poisoned");
    assert!(
        ledger.accepted.len() > rounds as usize,
        "too few transfers went through: {}",
        ledger.accepted.len()
    );
    assert!(
        !ledger.confirmed.is_empty(),
        "no transfer was ever confirmed"
    );
}
