//! The `cairn-wallet` binary, run as a user would: temporary wallet directories, the
//! passphrase in `CAIRN_WALLET_PASSPHRASE`, and either no node (a free port nobody listens
//! on) or a fake node: a small HTTP server on 127.0.0.1:0 that answers the API calls the
//! wallet makes with canned JSON shaped as in docs/API.md, and records what is POSTed so the
//! test can check the signed transfer. End-to-end tests against a real node live in the
//! root crate's `tests/`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use cairn::core::consensus::genesis::{genesis, genesis_hash};
use cairn::core::consensus::ChainSpec;
use cairn::core::primitives::transfer::{Signature, Transfer};
use cairn::core::primitives::{Address, Amount, BlockHash};
use cairn::core::state::memory::MemoryState;
use cairn::core::state::prove;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_cairn-wallet");
const PASSPHRASE: &str = "a test passphrase";

fn dev_spec() -> ChainSpec {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../chain-spec/dev.toml"),
    )
    .unwrap();
    ChainSpec::from_toml(&text).unwrap()
}

/// The dev chain's funded addresses, as `chain-spec/dev.toml` lists them.
fn dev_allocations() -> Vec<String> {
    dev_spec()
        .file
        .genesis
        .allocations
        .iter()
        .map(|a| a.address.clone())
        .collect()
}

fn dev_genesis() -> BlockHash {
    genesis_hash(&dev_spec())
}

/// A port on 127.0.0.1 that nothing listens on.
fn dead_node() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}

struct Wallet {
    dir: tempfile::TempDir,
    node: String,
}

impl Wallet {
    fn new(node: &str) -> Self {
        Wallet {
            dir: tempfile::tempdir().unwrap(),
            node: node.to_string(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env("CAIRN_WALLET_DIR", self.dir.path())
            .env("CAIRN_NODE", &self.node)
            .env("CAIRN_WALLET_PASSPHRASE", PASSPHRASE)
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        run_with_deadline(self.command(args))
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "cairn-wallet {args:?} failed:\n{}",
            stderr(&output)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs with `--json` and expects success.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// Runs and expects failure; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            !output.status.success(),
            "cairn-wallet {args:?} should fail:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
        stderr(&output)
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `command`, killing it (and failing the test) if it takes over 60 s: a wallet that
/// waits for input that never comes must not hang the suite.
fn run_with_deadline(mut command: Command) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("cairn-wallet hung: {:?}", child.wait_with_output().unwrap());
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------
// The fake node.

/// What the fake node answers, and what it saw.
struct FakeState {
    balance: u64,
    pending_outgoing: u64,
    next_nonce: u64,
    suggested_fee_rate: u64,
    /// Answer submissions with this error (status, code, message).
    reject: Option<(u16, &'static str, &'static str)>,
    /// Bodies POSTed to /transactions.
    posted: Vec<Value>,
    /// Request lines seen.
    requests: Vec<String>,
    /// Polls of /transactions/{txid} so far.
    polls: u32,
    /// The poll from which a transfer reads as confirmed (`u32::MAX`: never).
    confirm_at_poll: u32,
    /// Answer polls with `404 not_found`, as a node does for a transfer it dropped.
    forget: bool,
    /// The height the node's transfer index reaches (its tip is at 1234).
    indexed_height: u64,
}

struct FakeNode {
    url: String,
    state: Arc<Mutex<FakeState>>,
}

impl FakeNode {
    fn start(balance: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(FakeState {
            balance,
            pending_outgoing: 0,
            next_nonce: 7,
            suggested_fee_rate: 2,
            reject: None,
            posted: Vec::new(),
            requests: Vec::new(),
            polls: 0,
            confirm_at_poll: 2,
            forget: false,
            indexed_height: 1234,
        }));
        let shared = state.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                thread::spawn(move || serve(stream, &state));
            }
        });
        FakeNode { url, state }
    }

    fn posted(&self) -> Vec<Value> {
        self.state.lock().unwrap().posted.clone()
    }
}

fn info_json(indexed_height: u64) -> Value {
    json!({
        "chain": "Cairn Dev", "chain_id": 1337, "genesis_hash": dev_genesis().to_hex(),
        "symbol": "dCAIRN", "decimals": 8, "address_prefix": "cairndev",
        "height": 1234, "tip": "00".repeat(32), "tip_time": 1795300000, "bits": "0x1d09f3a2",
        "difficulty": 12.5, "mempool_count": 3, "mempool_bytes": 510,
        "peers": 4, "syncing": false, "indexed_height": indexed_height, "version": "0.1.0",
        "min_fee_rate": 1, "max_memo_bytes": 80
    })
}

/// The transfer a submission body describes (the same decoding a node does).
fn transfer_of(body: &Value) -> Transfer {
    let address =
        |key: &str| Address::from_bech32(body[key].as_str().unwrap(), "cairndev").unwrap();
    let signature: [u8; 64] = hex::decode(body["signature"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    Transfer {
        chain_id: body["chain_id"].as_u64().unwrap() as u32,
        from: address("from"),
        to: address("to"),
        amount: Amount::from_units(body["amount"].as_u64().unwrap()),
        fee: Amount::from_units(body["fee"].as_u64().unwrap()),
        nonce: body["nonce"].as_u64().unwrap(),
        memo: hex::decode(body["memo_hex"].as_str().unwrap()).unwrap(),
        signature: Signature(signature),
    }
}

fn route(method: &str, path: &str, body: &[u8], state: &Mutex<FakeState>) -> (u16, Value) {
    let mut state = state.lock().unwrap();
    state.requests.push(format!("{method} {path}"));
    let not_found = || {
        (
            404,
            json!({"error": {"code": "not_found", "message": format!("no route {path}")}}),
        )
    };
    let path_only = path.split('?').next().unwrap();
    let parts: Vec<&str> = path_only.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("GET", ["api", "v1", "info"]) => (200, info_json(state.indexed_height)),
        ("GET", ["api", "v1", "fees"]) => {
            let rate = state.suggested_fee_rate;
            (
                200,
                json!({"min_fee_rate": 1, "suggested_fee_rate": rate, "typical_size": 164,
                       "min_fee": 164, "suggested_fee": rate * 164}),
            )
        }
        ("GET", ["api", "v1", "accounts", address]) => {
            if Address::from_bech32(address, "cairndev").is_err() {
                return (
                    400,
                    json!({"error": {"code": "bad_address", "message": "bad address"}}),
                );
            }
            (
                200,
                json!({"address": address, "balance": state.balance, "nonce": 3,
                       "next_nonce": state.next_nonce, "pending": 1,
                       "pending_outgoing": state.pending_outgoing}),
            )
        }
        // The dev chain as it starts: its genesis alone, and proofs of its real state (a
        // fake balance could not be proven: the wallet would refuse it).
        ("GET", ["api", "v1", "headers"]) => {
            let (block, _) = genesis(&ChainSpec::dev());
            (
                200,
                json!({"from": 0, "tip_height": 0,
                       "headers": [block.header.to_hex()]}),
            )
        }
        ("GET", ["api", "v1", "accounts", address, "proof"]) => {
            let spec = ChainSpec::dev();
            let (block, change) = genesis(&spec);
            let mut tree = MemoryState::default();
            tree.insert_pages(change.new_pages);
            let parsed = Address::from_bech32(address, "cairndev").unwrap();
            let proof = prove(&tree, block.header.state_root.0, &parsed).unwrap();
            (
                200,
                json!({"address": address, "block_hash": block.header.hash().to_hex(),
                       "height": 0, "header": block.header.to_hex(),
                       "state_root": block.header.state_root.to_hex(), "account": null,
                       "proof": proof.to_view()}),
            )
        }
        ("GET", ["api", "v1", "accounts", address, "history"]) => (
            200,
            json!({"address": address, "items": [
                {"kind": "reward", "txid": null, "height": 40, "block_hash": "11".repeat(32),
                 "time": 1795299990, "confirmations": 4, "from": null, "to": address,
                 "amount": 5000000200u64, "fee": 0, "nonce": null, "memo": "", "memo_hex": ""}],
                "pending": [], "next": null}),
        ),
        ("POST", ["api", "v1", "transactions"]) => {
            let body: Value = serde_json::from_slice(body).unwrap();
            state.posted.push(body.clone());
            if let Some((status, code, message)) = state.reject {
                return (status, json!({"error": {"code": code, "message": message}}));
            }
            let txid = transfer_of(&body).txid();
            (
                200,
                json!({"txid": txid.to_hex(), "status": "pending", "replaced": null}),
            )
        }
        ("GET", ["api", "v1", "transactions", txid]) => {
            state.polls += 1;
            if state.forget {
                return not_found();
            }
            let confirmed = state.polls >= state.confirm_at_poll;
            (
                200,
                json!({"txid": txid, "status": if confirmed { "confirmed" } else { "pending" },
                       "confirmations": if confirmed { 1 } else { 0 },
                       "block_hash": if confirmed { Value::String("22".repeat(32)) } else { Value::Null },
                       "height": if confirmed { json!(1235) } else { Value::Null },
                       "time": null, "fee_rate": 2.0,
                       "transfer": {"txid": txid, "from": "", "to": "", "amount": 0, "fee": 0,
                                    "nonce": 0, "memo": "", "memo_hex": ""}}),
            )
        }
        _ => not_found(),
    }
}

/// Reads one HTTP/1.1 request, answers it, closes the connection.
fn serve(stream: TcpStream, state: &Mutex<FakeState>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut content_length = 0usize;
    let mut chunked = false;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => content_length = value.trim().parse().unwrap(),
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0u8; size + 2];
            reader.read_exact(&mut chunk).unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(content_length, 0);
        reader.read_exact(&mut body).unwrap();
    }
    let mut words = request_line.split_whitespace();
    let (method, path) = (words.next().unwrap(), words.next().unwrap());
    let (status, answer) = route(method, path, &body, state);
    let text = answer.to_string();
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{text}",
        text.len()
    );
}

// ---------------------------------------------------------------------------------------
// Without a node.

#[test]
fn init_then_address_then_export() {
    let wallet = Wallet::new(&dead_node());
    let created = wallet.json(&["init"]);
    let mnemonic = created["mnemonic"].as_str().unwrap();
    assert_eq!(mnemonic.split_whitespace().count(), 24);
    let first = created["addresses"][0]["address"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(first.starts_with("cairndev1"), "{first}");
    assert_eq!(created["addresses"].as_array().unwrap().len(), 1);

    // The keystore does not hold the mnemonic in the clear.
    let file = std::fs::read_to_string(wallet.dir.path().join("wallet.json")).unwrap();
    assert!(!file.contains(mnemonic));

    // `address` shows the same address, and the text output is just the address.
    assert_eq!(wallet.ok(&["address"]).trim(), first);

    // `export` shows public data only, consistent with the address.
    let export = wallet.json(&["export"]);
    assert_eq!(export["address"], first.as_str());
    assert_eq!(export["index"], 0);
    assert_eq!(export["path"], "m/44'/7370'/0'/0/0");
    let xonly = export["xonly"].as_str().unwrap();
    assert_eq!(
        hex::encode(Address::from_bech32(&first, "cairndev").unwrap().0),
        xonly
    );
    let text = wallet.ok(&["export"]);
    assert!(!text.to_lowercase().contains("mnemonic"));
    assert!(export.get("mnemonic").is_none());

    // Restoring the mnemonic elsewhere gives the same address.
    let restored = Wallet::new(&wallet.node);
    let mut command = restored.command(&["--json", "restore"]);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("  {}\n", mnemonic.to_uppercase()).as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["addresses"][0]["address"], first.as_str());
    assert!(value["mnemonic"].is_null());

    // `address --new` derives index 1, saves it, and makes it the receive address.
    let new = wallet.json(&["address", "--new"]);
    assert_eq!(new["index"], 1);
    assert_eq!(new["path"], "m/44'/7370'/0'/0/1");
    assert_eq!(
        wallet.ok(&["address"]).trim(),
        new["address"].as_str().unwrap()
    );
    assert_eq!(
        wallet.json(&["export", "--index", "0"])["address"],
        first.as_str()
    );
    let missing = wallet.fails(&["export", "--index", "5"]);
    assert!(missing.contains("no address 5"), "{missing}");
}

#[test]
fn init_refuses_to_overwrite_without_force() {
    let wallet = Wallet::new(&dead_node());
    let first = wallet.json(&["import-dev"]);
    let error = wallet.fails(&["init"]);
    assert!(
        error.contains("already exists") && error.contains("--force"),
        "{error}"
    );
    assert_eq!(
        wallet.json(&["export"])["address"],
        first["addresses"][0]["address"]
    );
    let replaced = wallet.json(&["init", "--force"]);
    assert_ne!(
        replaced["addresses"][0]["address"],
        first["addresses"][0]["address"]
    );
}

#[test]
fn import_dev_derives_the_dev_chain_accounts() {
    let wallet = Wallet::new(&dead_node());
    let created = wallet.json(&["import-dev"]);
    let derived: Vec<String> = created["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["address"].as_str().unwrap().to_string())
        .collect();
    let allocations = dev_allocations();
    assert_eq!(allocations.len(), 10);
    assert_eq!(derived, allocations);

    // `list` works offline and shows the same addresses, with their paths, without balances.
    let list = wallet.json(&["list"]);
    assert_eq!(list["node_reachable"], false);
    let listed = list["addresses"].as_array().unwrap();
    for (i, entry) in listed.iter().enumerate() {
        assert_eq!(entry["index"], i);
        assert_eq!(entry["address"], allocations[i].as_str());
        assert_eq!(entry["path"], format!("m/44'/7370'/0'/0/{i}"));
        assert!(entry["balance"].is_null());
    }
}

#[test]
fn wrong_passphrase_is_reported() {
    let wallet = Wallet::new(&dead_node());
    wallet.ok(&["import-dev"]);
    let output = run_with_deadline({
        let mut command = wallet.command(&["address", "--new"]);
        command.env("CAIRN_WALLET_PASSPHRASE", "not the passphrase");
        command
    });
    assert!(!output.status.success());
    let error = stderr(&output);
    assert!(error.contains("wrong passphrase"), "{error}");
    // Nothing changed.
    assert_eq!(
        wallet.json(&["list"])["addresses"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
}

#[test]
fn passphrase_file_is_read() {
    let wallet = Wallet::new(&dead_node());
    let file = wallet.dir.path().join("pw.txt");
    std::fs::write(&file, "from a file\n").unwrap();
    let mut command = wallet.command(&["--passphrase-file", file.to_str().unwrap(), "import-dev"]);
    command.env_remove("CAIRN_WALLET_PASSPHRASE");
    assert!(run_with_deadline(command).status.success());
    // The file's passphrase (without its newline) unlocks it; the environment's does not.
    let mut command = wallet.command(&[
        "--passphrase-file",
        file.to_str().unwrap(),
        "address",
        "--new",
    ]);
    command.env_remove("CAIRN_WALLET_PASSPHRASE");
    let output = run_with_deadline(command);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(wallet
        .fails(&["address", "--new"])
        .contains("wrong passphrase"));
}

#[test]
fn no_passphrase_and_no_terminal_fails_at_once() {
    let wallet = Wallet::new(&dead_node());
    let mut command = wallet.command(&["init"]);
    command.env_remove("CAIRN_WALLET_PASSPHRASE");
    let output = run_with_deadline(command);
    assert!(!output.status.success());
    let error = stderr(&output);
    assert!(
        error.contains("no terminal") && error.contains("CAIRN_WALLET_PASSPHRASE"),
        "{error}"
    );
    assert!(!wallet.dir.path().join("wallet.json").exists());
}

#[test]
fn balance_without_a_node_says_node_unreachable() {
    let node = dead_node();
    let wallet = Wallet::new(&node);
    wallet.ok(&["import-dev"]);
    let output = wallet.run(&["balance"]);
    assert!(!output.status.success());
    assert_ne!(output.status.code(), Some(0));
    let error = stderr(&output);
    assert!(error.contains("node unreachable"), "{error}");
    assert!(error.contains(&node) && error.contains("--node"), "{error}");
}

#[test]
fn commands_without_a_wallet_say_how_to_make_one() {
    let wallet = Wallet::new(&dead_node());
    let error = wallet.fails(&["address"]);
    assert!(
        error.contains("no wallet at") && error.contains("cairn-wallet init"),
        "{error}"
    );
}

#[test]
fn every_command_has_help() {
    for command in [
        "init",
        "restore",
        "import-dev",
        "address",
        "list",
        "balance",
        "history",
        "send",
        "export",
    ] {
        let output = run_with_deadline({
            let mut c = Command::new(BIN);
            c.args([command, "--help"]);
            c
        });
        assert!(output.status.success(), "{command}");
        let text = String::from_utf8(output.stdout).unwrap();
        for flag in ["--wallet-dir", "--node", "--json", "--passphrase-file"] {
            assert!(text.contains(flag), "{command} --help lacks {flag}");
        }
    }
    let output = run_with_deadline({
        let mut c = Command::new(BIN);
        c.args(["send", "--help"]);
        c
    });
    let text = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--to",
        "--amount",
        "--fee",
        "--from-index",
        "--memo",
        "--wait",
        "--confirmations",
        "--timeout",
    ] {
        assert!(text.contains(flag), "send --help lacks {flag}");
    }
}

// ---------------------------------------------------------------------------------------
// With the fake node.

#[test]
fn send_fills_nonce_and_suggested_fee_and_signs_for_the_chain() {
    let node = FakeNode::start(1_000_000 * 100_000_000);
    let wallet = Wallet::new(&node.url);
    wallet.ok(&["import-dev"]);
    let to = &dev_allocations()[1];
    let report = wallet.json(&["send", "--to", to, "--amount", "1.5", "--memo", "hi"]);

    let posted = node.posted();
    assert_eq!(posted.len(), 1);
    let transfer = transfer_of(&posted[0]);
    assert!(transfer.has_valid_signature(&dev_genesis()));
    assert!(!transfer.has_valid_signature(&BlockHash([0u8; 32])));
    assert_eq!(transfer.chain_id, 1337);
    assert_eq!(posted[0]["from"], dev_allocations()[0].as_str());
    assert_eq!(posted[0]["to"], to.as_str());
    assert_eq!(transfer.amount, Amount::from_units(150_000_000));
    assert_eq!(transfer.nonce, 7, "the account's next_nonce");
    assert_eq!(transfer.memo, b"hi");
    // suggested_fee_rate (2) × (164 + 2 memo bytes).
    assert_eq!(transfer.fee, Amount::from_units(2 * 166));
    assert_eq!(transfer.encoded_size(), 166);

    assert_eq!(report["txid"], transfer.txid().to_hex());
    assert_eq!(report["nonce"], 7);
    assert_eq!(report["fee"]["units"], 332);
    assert_eq!(report["fee"]["coins"], "0.00000332");
    assert_eq!(report["amount"]["coins"], "1.50000000");
    assert_eq!(report["fee_rate"], 2);
}

#[test]
fn send_with_a_fee_and_wait_follows_it_into_a_block() {
    let node = FakeNode::start(1_000_000 * 100_000_000);
    let wallet = Wallet::new(&node.url);
    wallet.ok(&["import-dev"]);
    let to = &dev_allocations()[2];
    let output = wallet.run(&[
        "send",
        "--to",
        to,
        "--amount",
        "3",
        "--fee",
        "0.00001",
        "--from-index",
        "4",
        "--wait",
        "--timeout",
        "20",
    ]);
    let progress = stderr(&output);
    assert!(output.status.success(), "{progress}");
    assert!(
        progress.contains("pending in the mempool… 0 s"),
        "{progress}"
    );
    assert!(
        progress.contains("confirmed in block 1235 (1 confirmation)"),
        "{progress}"
    );
    let transfer = transfer_of(&node.posted()[0]);
    assert_eq!(transfer.fee, Amount::from_units(1000));
    assert_eq!(node.posted()[0]["from"], dev_allocations()[4].as_str());
    assert!(transfer.has_valid_signature(&dev_genesis()));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains(&transfer.txid().to_hex()), "{stdout}");
    assert!(stdout.contains("3.00000000 dCAIRN"), "{stdout}");
}

#[test]
fn wait_gives_up_after_the_timeout_or_when_the_node_forgets() {
    let node = FakeNode::start(1_000_000 * 100_000_000);
    node.state.lock().unwrap().confirm_at_poll = u32::MAX;
    let wallet = Wallet::new(&node.url);
    wallet.ok(&["import-dev"]);
    let to = &dev_allocations()[1];
    let started = Instant::now();
    let error = wallet.fails(&[
        "send",
        "--to",
        to,
        "--amount",
        "1",
        "--wait",
        "--timeout",
        "2",
    ]);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(error.contains("pending in the mempool… 1 s"), "{error}");
    assert!(
        error.contains("has 0 of 1 confirmations after 2 s (--timeout)"),
        "{error}"
    );
    // The transfer was sent all the same.
    assert_eq!(node.posted().len(), 1);

    node.state.lock().unwrap().forget = true;
    let error = wallet.fails(&["send", "--to", to, "--amount", "1", "--wait"]);
    assert!(error.contains("no longer known to the node"), "{error}");
}

#[test]
fn send_refuses_mistyped_and_foreign_addresses() {
    let node = FakeNode::start(1_000_000 * 100_000_000);
    let wallet = Wallet::new(&node.url);
    wallet.ok(&["import-dev"]);
    let mut typo = dev_allocations()[1].clone();
    let last = typo.pop().unwrap();
    typo.push(if last == 'q' { 'p' } else { 'q' });
    let error = wallet.fails(&["send", "--to", &typo, "--amount", "1"]);
    assert!(error.contains("bad recipient address"), "{error}");
    assert!(error.contains(&typo), "{error}");

    let foreign = Address::from_bech32(&dev_allocations()[1], "cairndev")
        .unwrap()
        .to_bech32("cairntest")
        .unwrap();
    let error = wallet.fails(&["send", "--to", &foreign, "--amount", "1"]);
    assert!(error.contains("belongs to another chain"), "{error}");
    assert!(error.contains("\"cairndev\""), "{error}");

    let error = wallet.fails(&[
        "send",
        "--to",
        &dev_allocations()[1],
        "--amount",
        "1.000000001",
    ]);
    assert!(error.contains("at most 8 decimal places"), "{error}");
    assert!(node.posted().is_empty());
}

#[test]
fn send_checks_funds_locally() {
    // 1 coin, 0.25 of it pending.
    let node = FakeNode::start(100_000_000);
    node.state.lock().unwrap().pending_outgoing = 25_000_000;
    let wallet = Wallet::new(&node.url);
    wallet.ok(&["import-dev"]);
    let error = wallet.fails(&["send", "--to", &dev_allocations()[1], "--amount", "0.75"]);
    assert!(error.contains("insufficient funds"), "{error}");
    assert!(error.contains("0.75000000 dCAIRN available"), "{error}");
    assert!(error.contains("needs 0.75000328 dCAIRN"), "{error}");
    assert!(node.posted().is_empty());
}

#[test]
fn node_rejections_are_explained() {
    let node = FakeNode::start(1_000_000 * 100_000_000);
    node.state.lock().unwrap().reject = Some((422, "fee_too_low", "fee 1 is below 164"));
    let wallet = Wallet::new(&node.url);
    wallet.ok(&["import-dev"]);
    let error = wallet.fails(&[
        "send",
        "--to",
        &dev_allocations()[1],
        "--amount",
        "1",
        "--fee",
        "0.00000001",
    ]);
    assert!(error.contains("fee_too_low"), "{error}");
    assert!(error.contains("pass a higher --fee"), "{error}");
    assert!(error.contains("fee 1 is below 164"), "{error}");

    node.state.lock().unwrap().reject = Some((409, "replacement_underpriced", "bump it"));
    let error = wallet.fails(&["send", "--to", &dev_allocations()[1], "--amount", "1"]);
    assert!(error.contains("not high enough to replace"), "{error}");
}

#[test]
fn balance_list_and_history_read_the_node() {
    let node = FakeNode::start(250_000_000);
    node.state.lock().unwrap().pending_outgoing = 50_000_000;
    let wallet = Wallet::new(&node.url);
    wallet.ok(&["import-dev"]);
    // Balances are proven (here: the dev chain's genesis allocations, whatever the node's
    // `/accounts` says); what is pending is the node's word.
    let allocated = ChainSpec::dev().allocations[0].1.as_units();
    let balance = wallet.json(&["balance"]);
    assert_eq!(balance["addresses"].as_array().unwrap().len(), 10);
    assert_eq!(balance["addresses"][0]["balance"]["units"], allocated);
    assert_eq!(
        balance["addresses"][0]["available"]["units"],
        allocated - 50_000_000
    );
    assert_eq!(balance["total"]["units"], allocated * 10);
    assert_eq!(balance["symbol"], "dCAIRN");
    assert_eq!(balance["verified"]["height"], 0);
    assert_eq!(balance["verified"]["confirmations"], 1);
    assert_eq!(
        balance["verified"]["hash"],
        genesis_hash(&ChainSpec::dev()).to_hex()
    );
    let text = wallet.ok(&["balance"]);
    assert!(
        text.contains("proven at height 0") && text.contains("1 confirmation"),
        "{text}"
    );

    let list = wallet.json(&["list"]);
    assert_eq!(list["node_reachable"], true);
    assert_eq!(list["addresses"][3]["balance"]["units"], allocated);

    let history = wallet.json(&["history", "--address", "2", "--limit", "5"]);
    let entries = history["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["kind"], "reward");
    assert_eq!(entries[0]["address"], dev_allocations()[2].as_str());
    assert_eq!(entries[0]["amount"]["coins"], "50.00000200");
    let requests = node.state.lock().unwrap().requests.clone();
    assert!(
        requests.iter().any(|r| r.ends_with("/history?limit=5")),
        "{requests:?}"
    );
    let error = wallet.fails(&["history", "--address", "cairndev1notanaddress"]);
    assert!(error.contains("invalid address"), "{error}");

    // A node whose transfer index is still catching up after sync: said once, plainly.
    assert!(!balance["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap_or("").contains("indexing")));
    node.state.lock().unwrap().indexed_height = 1000;
    let history = wallet.json(&["history", "--address", "2"]);
    let notes = history["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|n| n
            .as_str()
            .unwrap_or("")
            .contains("still indexing transfers (height 1000 of 1234)")),
        "{notes:?}"
    );
}
