//! The wallet end to end: real `cairn` nodes and the real `cairn-wallet` binary. A wallet of
//! the dev accounts sends through node 1, node 2 mines the transfer, `send --wait` returns
//! once it is confirmed, and both nodes report the same balances and history; then the
//! wallet's clear errors for what a user gets wrong.
#![allow(clippy::disallowed_methods)]

mod common;

use common::{bootnode_args, poll, run_captured, CliOutput, Node, TestDir, CAIRN};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

const PASSPHRASE: &str = "correct horse battery staple";

/// The `cairn-wallet` binary beside `cairn` (`cargo test --workspace` builds both); built
/// here with the same profile and target directory if this test runs alone.
fn wallet_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let binary = Path::new(CAIRN).with_file_name("cairn-wallet");
        let profile_dir = Path::new(CAIRN)
            .parent()
            .expect("the binary has a directory");
        let mut build = Command::new(env!("CARGO"));
        build
            .args(["build", "-p", "cairn-wallet", "--bin", "cairn-wallet"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env(
                "CARGO_TARGET_DIR",
                profile_dir.parent().expect("a target directory"),
            );
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        // Always ask cargo: it is quick when the binary is current, and never tests a stale one.
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building cairn-wallet failed");
        assert!(binary.exists(), "no {}", binary.display());
        binary
    })
}

/// Runs `cairn-wallet --wallet-dir dir --node url args…` with `passphrase` in the
/// environment and no terminal.
fn wallet_with(dir: &Path, node: &str, passphrase: &str, args: &[&str]) -> CliOutput {
    let mut command = Command::new(wallet_binary());
    command
        .arg("--wallet-dir")
        .arg(dir)
        .args(["--node", node])
        .args(args)
        .env("CAIRN_WALLET_PASSPHRASE", passphrase)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    run_captured(command, Duration::from_secs(120))
}

fn wallet(dir: &Path, node: &str, args: &[&str]) -> CliOutput {
    wallet_with(dir, node, PASSPHRASE, args)
}

fn ok(output: CliOutput, what: &str) -> String {
    assert!(output.status.success(), "{what} failed:\n{output}");
    output.stdout
}

fn fails(output: CliOutput, what: &str, needles: &[&str]) {
    assert!(!output.status.success(), "{what} should fail:\n{output}");
    let text = output.stderr.to_lowercase();
    for needle in needles {
        assert!(
            text.contains(needle),
            "{what}: {needle:?} not in:\n{output}"
        );
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

fn history(node: &Node, address: &str) -> Value {
    node.get(&format!("/api/v1/accounts/{address}/history"))["items"].clone()
}

#[test]
fn a_wallet_sends_through_one_node_and_both_agree_once_confirmed() {
    let dir = TestDir::new("wallet-e2e");
    let spec = dir.write_spec();
    let n1 = dir.start_node("n1", &dir.path().join("n1"), &spec, false);
    let n2 = dir.start_node_with(
        "n2",
        &dir.path().join("n2"),
        &spec,
        true,
        &bootnode_args(&[&n1]),
    );
    poll(
        "n1 and n2 connected",
        Duration::from_secs(30),
        || match n1.peers()["peers"].as_array().map(Vec::len) {
            Some(n) if n > 0 => Ok(()),
            other => Err(format!("{other:?} peers")),
        },
    );
    let dev_wallet = dir.path().join("dev-wallet");
    let new_wallet = dir.path().join("new-wallet");
    let node1 = n1.url();

    // The dev wallet holds the funded accounts; a new wallet gets a fresh mnemonic.
    let imported = json(&ok(
        wallet(&dev_wallet, &node1, &["--json", "import-dev"]),
        "import-dev",
    ));
    assert_eq!(
        imported["addresses"].as_array().map(Vec::len),
        Some(10),
        "{imported}"
    );
    ok(wallet(&new_wallet, &node1, &["init"]), "init");
    let address = json(&ok(
        wallet(&new_wallet, &node1, &["--json", "address"]),
        "address",
    ));
    let to = address["address"].as_str().expect("an address").to_string();

    // Send through n1 and wait: n2 mines it.
    let sent = ok(
        wallet(
            &dev_wallet,
            &node1,
            &[
                "send", "--to", &to, "--amount", "12.5", "--memo", "hello", "--wait",
            ],
        ),
        "send --wait",
    );
    assert!(
        sent.to_lowercase().contains("confirmed"),
        "send --wait reports the confirmation:\n{sent}"
    );
    let on_n1 = n1.get(&format!("/api/v1/accounts/{to}"));
    assert_eq!(on_n1["balance"], 1_250_000_000u64, "{on_n1}");
    // n2 mined it, so it has it; both agree on balances and history.
    poll("n1 and n2 on one tip", Duration::from_secs(30), || {
        let (t1, t2) = (n1.tip(), n2.tip());
        if t1["hash"] == t2["hash"] {
            Ok(())
        } else {
            Err(format!("{t1} vs {t2}"))
        }
    });
    assert_eq!(n2.get(&format!("/api/v1/accounts/{to}")), on_n1);
    let sender = imported["addresses"][0]["address"]
        .as_str()
        .expect("dev address 0")
        .to_string();
    for address in [&to, &sender] {
        assert_eq!(
            history(&n1, address),
            history(&n2, address),
            "history of {address}"
        );
    }
    let received = &history(&n2, &to)[0];
    assert_eq!(received["kind"], "received", "{received}");
    assert_eq!(received["memo"], "hello");

    // The new wallet sees its coins through the other node, in coins.
    // Proven against the wallet's own check of n2's header chain, from the test chain's spec.
    let spec_path = spec.path.to_str().expect("a UTF-8 path");
    let balance = ok(
        wallet(
            &new_wallet,
            &n2.url(),
            &["--chain-spec", spec_path, "balance", "--confirmations", "1"],
        ),
        "balance",
    );
    assert!(balance.contains("12.5"), "balance in coins:\n{balance}");
    assert!(balance.contains("proven at height"), "{balance}");
    let listed = ok(wallet(&new_wallet, &n2.url(), &["history"]), "history");
    assert!(listed.contains("12.5"), "history:\n{listed}");

    // Clear errors.
    fails(
        wallet(
            &new_wallet,
            &node1,
            &["send", "--to", &sender, "--amount", "1000000"],
        ),
        "sending more than the balance",
        &["insufficient"],
    );
    let mut bad = to.clone();
    bad.pop();
    bad.push(if to.ends_with('q') { 'p' } else { 'q' });
    fails(
        wallet(
            &dev_wallet,
            &node1,
            &["send", "--to", &bad, "--amount", "1"],
        ),
        "a mistyped address",
        &["address"],
    );
    fails(
        wallet(
            &dev_wallet,
            &node1,
            &["send", "--to", &to, "--amount", "1", "--fee", "0.00000001"],
        ),
        "a fee below the floor",
        &["fee"],
    );
    fails(
        wallet_with(
            &dev_wallet,
            &node1,
            "not the passphrase",
            &["send", "--to", &to, "--amount", "1"],
        ),
        "a wrong passphrase",
        &["passphrase"],
    );
    n2.stop_cleanly();
    n1.stop_cleanly();
    fails(
        wallet(&new_wallet, &node1, &["balance"]),
        "a stopped node",
        &["reach"],
    );
}
