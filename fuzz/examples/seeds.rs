//! Writes the seed corpus, `corpus/<target>/<name>`, from real values: blocks mined on
//! `testkit`'s test chain, its transfers, sync messages between its nodes, the built-in chain
//! specs, keystores made by the wallet and the answers a node gives. Deterministic except
//! for the keystores' random salt and nonce:
//!
//! ```text
//! cd fuzz && cargo run --example seeds
//! ```
use cairn::core::consensus::spec::{DEV_SPEC_TOML, TESTNET_SPEC_TOML};
use cairn::core::consensus::target::Work;
use cairn::core::primitives::transfer::UnsignedTransfer;
use cairn::core::primitives::{codec, Amount, Block, Header, Transfer};
use cairn::core::protocol::compact::{BlockAnnouncement, CompactBlock};
use cairn::core::protocol::messages::{Status, SyncRequest, SyncResponse};
use cairn::core::testkit::{test_address, test_keypair, TestChain};
use cairn::core::views::{SubmitTransferRequest, TransferView};
use cairn_wallet::chain::ChainParams;
use cairn_wallet::keys::{parse_mnemonic, DEV_MNEMONIC};
use cairn_wallet::keystore::{CreateOptions, KdfParams, Keystore};
use serde::Serialize;
use std::path::Path;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("corpus directory");
    std::fs::write(dir.join(name), bytes).expect("seed file");
}

fn encoded<T: Serialize>(value: &T) -> Vec<u8> {
    codec::encode(value).expect("encodes")
}

/// An answer for `wallet_answers`: the selector byte, then the JSON body.
fn answer(selector: u8, json: &str) -> Vec<u8> {
    let mut bytes = vec![selector];
    bytes.extend_from_slice(json.as_bytes());
    bytes
}

fn main() {
    // A chain: genesis, two empty blocks, then a block with two transfers (one with a memo).
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let empty = chain.extend(&genesis, 2, test_address(0));
    let with_memo = UnsignedTransfer {
        chain_id: chain.spec.chain_id(),
        to: test_address(2),
        amount: Amount::from_units(5),
        fee: Amount::from_units(300),
        nonce: 0,
        memo: b"seed".to_vec(),
    }
    .sign(&test_keypair(1), &genesis, &[7; 32]);
    let transfers = vec![
        chain.transfer(&test_keypair(0), test_address(3), 1_000, 200, 0),
        with_memo,
    ];
    let full = chain.mine(&empty[1].hash(), transfers.clone(), test_address(1));
    let blocks: Vec<Block> = [chain.block(&genesis).clone()]
        .into_iter()
        .chain(empty.iter().cloned())
        .chain([full.clone()])
        .collect();

    for (i, block) in blocks.iter().enumerate() {
        write("header", &format!("header-{i}"), &encoded(&block.header));
        write("block", &format!("block-{i}"), &encoded(block));
        let full = BlockAnnouncement::Full(block.clone());
        write("gossip", &format!("block-{i}"), &encoded(&full));
        let compact = BlockAnnouncement::Compact(CompactBlock::of(block));
        write("gossip", &format!("compact-block-{i}"), &encoded(&compact));
    }
    for (i, transfer) in transfers.iter().enumerate() {
        write("transfer", &format!("transfer-{i}"), &encoded(transfer));
        write("gossip", &format!("transfer-{i}"), &encoded(transfer));
    }
    write("mempool_file", "empty", &encoded(&Vec::<Transfer>::new()));
    write("mempool_file", "two", &encoded(&transfers));
    let mut records = Vec::new();
    for transfer in &transfers {
        cairn::core::mempool::journal_records::encode_record(transfer, &mut records)
            .expect("a transfer encodes as a record");
    }
    write("mempool_journal", "empty", &[]);
    write("mempool_journal", "two", &records);
    write("mempool_journal", "torn", &records[..records.len() - 3]);

    let status = Status {
        genesis,
        tip: full.hash(),
        height: full.header.height,
        chain_work: Work::default(),
    };
    let hashes: Vec<_> = blocks.iter().map(Block::hash).collect();
    let requests = [
        ("status", SyncRequest::Status(status.clone())),
        (
            "get-headers",
            SyncRequest::GetHeaders {
                locator: vec![hashes[1], genesis],
                max: 2_000,
            },
        ),
        (
            "get-blocks",
            SyncRequest::GetBlocks {
                hashes: hashes[1..].to_vec(),
            },
        ),
        (
            "get-block-transfers",
            SyncRequest::GetBlockTransfers {
                block: full.hash(),
                indexes: vec![0, 1],
            },
        ),
    ];
    for (name, request) in &requests {
        write("sync_request", name, &encoded(request));
    }
    let headers: Vec<Header> = blocks.iter().map(|b| b.header).collect();
    let responses = [
        ("status", SyncResponse::Status(status)),
        ("headers", SyncResponse::Headers(headers)),
        ("blocks", SyncResponse::Blocks(blocks[2..].to_vec())),
        (
            "block-transfers",
            SyncResponse::BlockTransfers(transfers.clone()),
        ),
    ];
    for (name, response) in &responses {
        write("sync_response", name, &encoded(response));
    }

    write("chain_spec", "dev.toml", DEV_SPEC_TOML.as_bytes());
    write("chain_spec", "testnet.toml", TESTNET_SPEC_TOML.as_bytes());
    write("chain_spec", "test.toml", chain.spec.to_toml().as_bytes());

    // The API's bodies.
    let hrp = chain.spec.hrp().to_string();
    for (i, transfer) in transfers.iter().enumerate() {
        let request = SubmitTransferRequest::from_transfer(transfer, &hrp).expect("valid prefix");
        let json = serde_json::to_string_pretty(&request).expect("JSON");
        write("api_bodies", &format!("submit-{i}.json"), json.as_bytes());
    }
    write("api_bodies", "mining.json", br#"{"enabled": true}"#);
    write(
        "api_bodies",
        "connect.json",
        br#"{"address": "/ip4/127.0.0.1/tcp/27370/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"}"#,
    );
    write(
        "api_bodies",
        "peer.json",
        br#"{"peer": "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"}"#,
    );

    // The node's answers, as the wallet reads them (selector byte first, see the target).
    let genesis_hex = genesis.to_hex();
    let tip_hex = full.hash().to_hex();
    let info = format!(
        r#"{{"chain": "Cairn Test", "chain_id": 4242, "genesis_hash": "{genesis_hex}",
"symbol": "TEST", "decimals": 8, "address_prefix": "{hrp}", "height": 3, "tip": "{tip_hex}",
"tip_time": 1767225630, "bits": "0x207fffff", "difficulty": 1.0, "mempool_count": 2,
"mempool_bytes": 332, "peers": 1, "syncing": false, "version": "0.1.0", "min_fee_rate": 1,
"max_memo_bytes": 80}}"#
    );
    write("wallet_answers", "info", &answer(0, &info));
    let account = format!(
        r#"{{"address": "{}", "balance": 100000000000000, "nonce": 3, "next_nonce": 5,
"pending": 2, "pending_outgoing": 400000400}}"#,
        test_address(0).to_bech32(&hrp).expect("valid prefix")
    );
    write("wallet_answers", "account", &answer(1, &account));
    write(
        "wallet_answers",
        "fees",
        &answer(
            2,
            r#"{"min_fee_rate": 1, "suggested_fee_rate": 2, "typical_size": 164, "min_fee": 164, "suggested_fee": 328}"#,
        ),
    );
    let view = serde_json::to_string(&TransferView::new(&chain.spec, &transfers[1])).expect("JSON");
    let txid = transfers[1].txid().to_hex();
    let transaction = format!(
        r#"{{"txid": "{txid}", "status": "confirmed", "confirmations": 1, "block_hash": "{tip_hex}",
"height": 3, "time": 1767225630, "fee_rate": 1.807, "transfer": {view}}}"#
    );
    write("wallet_answers", "transaction", &answer(3, &transaction));
    let history = format!(
        r#"{{"address": "a", "items": [{{"kind": "reward", "txid": null, "height": 3,
"block_hash": "{tip_hex}", "time": 1767225630, "confirmations": 1, "from": null, "to": "a",
"amount": 5000000500, "fee": 0, "nonce": null, "memo": "", "memo_hex": ""}}],
"pending": [{view}], "next": "0000000300000001"}}"#
    );
    write("wallet_answers", "history", &answer(4, &history));
    let submitted = format!(r#"{{"txid": "{txid}", "status": "pending", "replaced": null}}"#);
    write("wallet_answers", "submitted", &answer(5, &submitted));

    // Keystores made by the wallet, with and without a recorded chain.
    let scratch = std::env::temp_dir().join(format!("cairn-fuzz-seeds-{}", std::process::id()));
    let mnemonic = parse_mnemonic(DEV_MNEMONIC).expect("the dev mnemonic parses");
    for (name, chain) in [
        ("plain.json", None),
        ("with-chain.json", Some(ChainParams::dev())),
    ] {
        let options = CreateOptions {
            kdf: KdfParams::INSECURE_FOR_TESTS,
            addresses: 2,
            overwrite: true,
            created: 1_795_300_000,
            chain,
        };
        Keystore::create(&scratch, &mnemonic, "seed passphrase", options).expect("a keystore");
        let bytes = std::fs::read(Keystore::file_path(&scratch)).expect("the keystore file");
        write("keystore", name, &bytes);
    }
    let _ = std::fs::remove_dir_all(&scratch);

    // State tree scripts: five bytes an update, a set top bit ends a batch.
    let mut script = Vec::new();
    for i in 0u8..24 {
        let end = if i % 8 == 7 { 0x80 } else { 0 };
        script.extend_from_slice(&[
            i.wrapping_mul(37) & 0x03 | end,
            i % 3,
            i,
            i.wrapping_mul(11),
            i,
        ]);
    }
    write("state_tree", "batches", &script);
    write(
        "state_tree",
        "deep",
        &[0, 5, 1, 9, 0, 0, 5, 2, 9, 0, 0x80, 5, 3, 7, 1],
    );
}
