//! The `cairn` command line: help, `chain-spec`, `tip`, `block`, the checks of `node`'s
//! mining options, and the HTTP API's JSON errors.
#![allow(clippy::disallowed_methods)]

mod common;

use cairn::core::consensus::genesis::genesis_hash;
use cairn::core::consensus::ChainSpec;
use common::{arg, cairn, http_get, node_args, replace_once, test_spec_toml, TestDir};
use serde_json::Value;

/// The hash in a "# genesis hash: {64 hex}" first line.
fn shown_genesis_hash(stdout: &str) -> String {
    let hash = stdout
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("# genesis hash: "))
        .unwrap_or_else(|| panic!("no genesis hash line:\n{stdout}"));
    assert!(
        hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "not 64 hex digits: {hash:?}"
    );
    hash.to_string()
}

/// The hash at the end of `chain-spec check`'s "ok: …, genesis hash {hash}".
fn checked_genesis_hash(stdout: &str) -> String {
    assert!(stdout.starts_with("ok: "), "{stdout}");
    let hash = stdout.trim().rsplit(' ').next().expect("a last word");
    assert_eq!(hash.len(), 64, "{stdout}");
    hash.to_string()
}

/// The value of a "label   value" line of the CLI's text output.
fn text_field<'a>(stdout: &'a str, label: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(label).map(str::trim))
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{stdout}"))
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

#[test]
fn help_lists_the_commands_and_the_node_flags() {
    let help = cairn(["--help"]);
    for command in ["node", "chain-spec", "tip", "block", "verify", "peers"] {
        assert!(help.expect_ok().contains(command), "{command}:\n{help}");
    }
    let node_help = cairn(["node", "--help"]);
    for flag in [
        "--data-dir",
        "--chain",
        "--http",
        "--mine",
        "--threads",
        "--miner-address",
        "--listen",
        "--bootnode",
        "--no-mdns",
        "--external-address",
        "--max-peers",
        "--ban-secs",
    ] {
        assert!(node_help.expect_ok().contains(flag), "{flag}:\n{node_help}");
    }
}

#[test]
fn chain_spec_show_prints_the_spec_with_a_stable_genesis_hash() {
    let first = cairn(["chain-spec", "show", "dev"]);
    let hash = shown_genesis_hash(first.expect_ok());
    let again = cairn(["chain-spec", "show"]);
    assert_eq!(
        shown_genesis_hash(again.expect_ok()),
        hash,
        "dev is the default"
    );
    assert_eq!(first.stdout, again.stdout);

    // The output is the spec itself (the hash line is a TOML comment), and the hash is
    // the library's genesis hash of it.
    let shown = ChainSpec::from_toml(&first.stdout).expect("show prints a valid spec");
    assert_eq!(shown, ChainSpec::dev());
    assert_eq!(hash, genesis_hash(&ChainSpec::dev()).to_hex());
}

#[test]
fn chain_spec_check_accepts_a_valid_file_and_names_the_bad_field() {
    let dir = TestDir::new("check");
    let spec = dir.write_spec();
    let ok = cairn(["chain-spec", "check", spec.arg()]);
    let hash = checked_genesis_hash(ok.expect_ok());
    assert_eq!(hash, genesis_hash(&spec.spec).to_hex());
    let dev_hash = genesis_hash(&ChainSpec::dev()).to_hex();
    assert_ne!(hash, dev_hash, "the test spec has its own genesis");
    let shown = cairn(["chain-spec", "show", spec.arg()]);
    assert_eq!(shown_genesis_hash(shown.expect_ok()), hash);

    let text = test_spec_toml();
    let first_address = &spec.miner_address;
    let mut typo = first_address.clone();
    let last = typo.pop().expect("non-empty");
    typo.push(if last == 'q' { 'p' } else { 'q' });
    let cases = [
        (
            "zero block time",
            replace_once(
                &text,
                "ideal_block_time_secs = 1",
                "ideal_block_time_secs = 0",
            ),
            "consensus.ideal_block_time_secs",
        ),
        (
            "unclosed table",
            replace_once(&text, "[consensus]", "[consensus"),
            "TOML parse error",
        ),
        (
            "mistyped value",
            replace_once(&text, "chain_id = 7357", "chain_id = \"seven\""),
            "chain_id",
        ),
        (
            "unknown field",
            format!("colour = \"red\"\n{text}"),
            "unknown field `colour`",
        ),
        (
            "typo in an allocation address",
            replace_once(&text, first_address, &typo),
            "genesis.allocations.address",
        ),
        (
            "genesis easier than the pow limit",
            replace_once(&text, "bits = \"0x1f00ffff\"", "bits = \"0x2100ffff\""),
            "genesis.bits",
        ),
    ];
    for (name, broken, field) in cases {
        let path = dir.path().join(format!("{}.toml", name.replace(' ', "-")));
        std::fs::write(&path, broken).expect("write");
        let output = cairn(["chain-spec", "check", arg(&path)]);
        output.expect_failure(&[field, arg(&path)]);
    }
    cairn(["chain-spec", "check", arg(&dir.path().join("missing.toml"))])
        .expect_failure(&["missing.toml", "neither a file nor a built-in spec"]);
}

#[test]
fn chain_spec_create_writes_a_spec_check_accepts_and_never_overwrites() {
    let dir = TestDir::new("create");
    let out = dir.path().join("x.toml");
    let create = |out: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "chain-spec",
            "create",
            "--name",
            "X",
            "--id",
            "x",
            "--chain-id",
            "9",
            "--out",
            arg(out),
        ];
        args.extend_from_slice(extra);
        cairn(args)
    };
    let created = create(&out, &[]);
    let written = created.expect_ok();
    assert!(
        written.starts_with(&format!("wrote {}", out.display())),
        "{created}"
    );
    let check = cairn(["chain-spec", "check", arg(&out)]);
    let hash = checked_genesis_hash(check.expect_ok());
    assert!(
        written.trim().ends_with(&hash),
        "create and check disagree:\n{created}\n{check}"
    );
    let text = std::fs::read_to_string(&out).expect("read");
    let spec = ChainSpec::from_toml(&text).expect("valid");
    assert_eq!(
        (
            spec.file.name.as_str(),
            spec.file.id.as_str(),
            spec.chain_id()
        ),
        ("X", "x", 9)
    );

    let again = create(&out, &["--message", "another"]);
    again.expect_failure(&["already exists", arg(&out)]);
    assert_eq!(
        std::fs::read_to_string(&out).expect("read"),
        text,
        "overwritten"
    );

    // With a message of its own the new chain gets a genesis of its own.
    let fresh = dir.path().join("fresh.toml");
    create(&fresh, &["--message", "a chain of its own"]).expect_ok();
    let fresh_hash = checked_genesis_hash(cairn(["chain-spec", "check", arg(&fresh)]).expect_ok());
    assert_ne!(fresh_hash, genesis_hash(&ChainSpec::dev()).to_hex());
}

#[test]
fn chain_spec_create_gets_a_genesis_of_its_own() {
    let dir = TestDir::new("create-genesis");
    let out = dir.path().join("x.toml");
    let args = ["chain-spec", "create", "--name", "X", "--id", "x"];
    cairn(
        args.iter()
            .copied()
            .chain(["--chain-id", "9", "--out", arg(&out)]),
    )
    .expect_ok();
    let hash = checked_genesis_hash(cairn(["chain-spec", "check", arg(&out)]).expect_ok());
    assert_ne!(
        hash,
        genesis_hash(&ChainSpec::dev()).to_hex(),
        "chain x (chain id 9) has the dev chain's genesis hash: a node would open a dev data \
         directory with it"
    );
}

#[test]
fn queries_fail_clearly_when_the_node_is_unreachable() {
    // A port that was free a moment ago: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind");
    let url = format!("http://{closed}");
    cairn(["tip", "--node", &url]).expect_failure(&["cannot reach the node", &url]);
    cairn(["block", "0", "--node", &url]).expect_failure(&["cannot reach the node", &url]);
}

/// Serves `answers` (path, status, JSON body), one request per connection, on a free port
/// of 127.0.0.1 until the test ends; returns its URL.
fn fake_node(answers: Vec<(&'static str, u16, Value)>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let path = request_line.split(' ').nth(1).unwrap_or("");
            let (status, body) = answers
                .iter()
                .find(|(p, ..)| *p == path)
                .map_or((404, Value::Null), |(_, s, b)| (*s, b.clone()));
            let body = body.to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn tip_of_a_node_whose_store_is_closed_says_why() {
    let url = fake_node(vec![
        (
            "/api/v1/tip",
            503,
            serde_json::json!({ "error": { "code": "unavailable", "message": "the store is closed after a write failure" } }),
        ),
        (
            "/api/v1/health",
            503,
            serde_json::json!({
                "status": "degraded", "writable": false,
                "problem": "the store cannot write (I/O failure: No space left on device)",
                "since": 9, "height": 7, "disk_available_bytes": 0, "disk_reserve_bytes": 0
            }),
        ),
    ]);
    let shown = cairn(["tip", "--node", &url]);
    shown.expect_failure(&["503", "the store is closed after a write failure"]);
    assert!(
        shown
            .stdout
            .contains("health      DEGRADED: the store cannot write (I/O failure")
            && shown.stdout.contains("durable     up to height 7"),
        "{shown}"
    );
    // --json prints exactly the tip, so it has nothing to print.
    let json = cairn(["tip", "--node", &url, "--json"]);
    json.expect_failure(&["503"]);
    assert!(json.stdout.is_empty(), "{json}");
}

#[test]
fn tip_and_block_show_a_running_node() {
    let dir = TestDir::new("query");
    let spec = dir.write_spec();
    let data = dir.path().join("data");
    // Mine a few blocks, then serve them from a node that does not mine: nothing moves.
    dir.mine_to("mining", &data, &spec, 5);
    let node = dir.start_node("idle", &data, &spec, false);
    let tip = node.tip();
    let height = tip["height"].as_u64().expect("height");
    let tip_hash = tip["hash"].as_str().expect("hash");
    assert!(height >= 5, "{tip}");
    let url = node.url();

    let text = cairn(["tip", "--node", &url]);
    assert_eq!(text_field(text.expect_ok(), "height"), height.to_string());
    assert_eq!(text_field(&text.stdout, "hash"), tip_hash);
    assert_eq!(text_field(&text.stdout, "health"), "ok");
    let tip_json = cairn(["tip", "--node", &url, "--json"]);
    assert_eq!(
        json(tip_json.expect_ok()),
        tip,
        "cairn tip --json = GET /api/v1/tip"
    );

    let genesis = cairn(["block", "0", "--node", &url, "--json"]);
    let genesis = json(genesis.expect_ok());
    assert_eq!(genesis["height"], 0);
    assert_eq!(genesis["hash"], tip["genesis_hash"], "{genesis}");
    assert_eq!(genesis["hash"], node.block(0)["hash"]);
    assert_eq!(
        genesis["hash"].as_str(),
        Some(genesis_hash(&spec.spec).to_hex().as_str())
    );

    let by_hash = cairn(["block", tip_hash, "--node", &url]);
    assert_eq!(text_field(by_hash.expect_ok(), "block"), tip_hash);
    assert_eq!(text_field(&by_hash.stdout, "height"), height.to_string());
    let by_hash_json = cairn(["block", tip_hash, "--node", &url, "--json"]);
    assert_eq!(json(by_hash_json.expect_ok()), node.block(tip_hash));

    cairn(["block", "99999999", "--node", &url])
        .expect_failure(&["404", "no block at height 99999999"]);
    cairn(["block", "nothex", "--node", &url])
        .expect_failure(&["400", "neither a height nor a 64-hex-digit block hash"]);
    let unknown = "ab".repeat(32);
    cairn(["block", &unknown, "--node", &url]).expect_failure(&["404", "no block with hash"]);
}

#[test]
fn api_errors_are_json_with_a_code() {
    let dir = TestDir::new("http");
    let spec = dir.write_spec();
    let node = dir.start_node("idle", &dir.path().join("data"), &spec, false);
    let cases = [
        ("/api/v1/nope", 404, "not_found"),
        ("/nope", 404, "not_found"),
        ("/api/v1/blocks/nothex", 400, "bad_request"),
        ("/api/v1/blocks/4294967296", 400, "bad_request"),
        ("/api/v1/blocks/99999999", 404, "not_found"),
        (
            &format!("/api/v1/blocks/{}", "00".repeat(32)),
            404,
            "not_found",
        ),
    ];
    for (path, status, code) in cases {
        let (got, body) = http_get(&format!("{}{path}", node.url())).expect("the node answers");
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}: {body}"
        );
        assert!(body["error"]["message"].is_string(), "{path}: {body}");
    }
}

#[test]
fn mining_options_are_checked_before_the_node_starts() {
    let dir = TestDir::new("mining-options");
    let spec = dir.write_spec();
    let data = dir.path().join("data");
    let node = |extra: &[&str]| {
        let mut args = node_args(&data, &spec);
        args.push("--mine");
        args.extend_from_slice(extra);
        cairn(args)
    };
    node(&[]).expect_failure(&["--miner-address", "proctest"]);

    let (address, _) = spec.spec.allocations[0];
    let other_chain = address.to_bech32("cairntest").expect("valid prefix");
    node(&["--miner-address", &other_chain]).expect_failure(&[
        "--miner-address",
        &other_chain,
        "belongs to another chain",
    ]);
    let mut typo = spec.miner_address.clone();
    typo.replace_range(12..13, if &typo[12..13] == "x" { "y" } else { "x" });
    node(&["--miner-address", &typo]).expect_failure(&["--miner-address", "invalid address"]);
    node(&["--threads", "0", "--miner-address", &spec.miner_address])
        .expect_failure(&["--threads"]);
}

#[test]
fn network_options_and_admin_calls_fail_clearly() {
    let dir = TestDir::new("netflags");
    let spec = dir.write_spec();
    let data = dir.path().join("data");
    // A bad multiaddr is named with its flag, before anything starts.
    let mut args = node_args(&data, &spec);
    args.extend(["--bootnode", "not-a-multiaddr"]);
    cairn(&args).expect_failure(&["--bootnode", "not-a-multiaddr", "multiaddr"]);
    let mut args = node_args(&data, &spec);
    let listen = args.len() - 2;
    args[listen] = "/ip4/127.0.0.1/udp/0";
    cairn(&args).expect_failure(&["listen"]);
    // Admin calls need the running node's cookie.
    let missing = dir.path().join("no-such-cookie");
    cairn([
        "peers",
        "ban",
        "12D3KooWA7xP3vfC74NsqXGHk5HvW9euGsnvBJ3mdAKZGaAZwpEs",
        "--cookie",
        arg(&missing),
    ])
    .expect_failure(&["cookie", "no-such-cookie"]);
    // Listing needs a node.
    cairn(["peers", "--node", "http://127.0.0.1:1"]).expect_failure(&["cannot reach the node"]);
}
