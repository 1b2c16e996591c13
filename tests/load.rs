//! A load test with real `cairn` processes: three nodes (two mining, so branches compete),
//! fifty funded accounts sending transfers at a steady rate for a minute through all three
//! nodes. Afterwards every accepted transfer is confirmed on every node, the three agree on
//! the tip, and the balances add up exactly: the sum over every account that ever held coins
//! equals the genesis allocations plus the subsidies of the blocks mined (fees move coins
//! from senders to miners, and none appear or vanish).
//!
//! `CAIRN_LOAD_SECS` (default 60) and `CAIRN_LOAD_RATE` (transfers per second, default 50)
//! change the load.
#![allow(clippy::disallowed_methods)]

mod common;

use cairn::core::consensus::genesis::genesis_hash;
use cairn::core::primitives::transfer::UnsignedTransfer;
use cairn::core::primitives::{Address, Amount, BlockHash};
use common::{bootnode_args, poll, transfer_json, Node, TestDir};
use secp256k1::Keypair;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Senders funded for the load (dev accounts 10..60 of the dev mnemonic).
const SENDERS: u32 = 50;
/// Dev accounts funded at genesis.
const GENESIS_ACCOUNTS: u32 = 10;
const FEE: u64 = 300;

struct Account {
    keypair: Keypair,
    address: Address,
    nonce: u64,
}

fn account(index: u32) -> Account {
    let keypair = cairn_wallet::keys::dev_keypair(index);
    let address = cairn::core::testkit::address_of(&keypair);
    Account {
        keypair,
        address,
        nonce: 0,
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} is a number")))
        .unwrap_or(default)
}

/// Signs and submits a transfer from `from` through `node`; returns the txid if accepted.
fn send(
    node: &Node,
    spec: &cairn::core::consensus::ChainSpec,
    genesis: &BlockHash,
    from: &mut Account,
    to: Address,
    amount: u64,
) -> Result<String, Value> {
    let transfer = UnsignedTransfer {
        chain_id: spec.chain_id(),
        to,
        amount: Amount::from_units(amount),
        fee: Amount::from_units(FEE),
        nonce: from.nonce,
        memo: b"load".to_vec(),
    }
    .sign(&from.keypair, genesis, &[3; 32]);
    let (status, answer) = node.post("/api/v1/transactions", &transfer_json(spec, &transfer));
    if status == 200 {
        from.nonce += 1;
        Ok(answer["txid"].as_str().expect("txid").to_string())
    } else {
        Err(answer)
    }
}

fn confirmed_everywhere(nodes: &[&Node], txids: &BTreeSet<String>) -> Result<(), String> {
    for node in nodes {
        for txid in txids {
            let (status, body) = node
                .try_get(&format!("/api/v1/transactions/{txid}"))
                .map_err(|e| e.to_string())?;
            if status != 200 || body["status"] != "confirmed" {
                return Err(format!("{txid} on {}: {status} {body}", node.url()));
            }
        }
    }
    Ok(())
}

#[test]
fn fifty_accounts_for_a_minute_through_three_nodes_lose_nothing() {
    let seconds = env_u64("CAIRN_LOAD_SECS", 60);
    let rate = env_u64("CAIRN_LOAD_RATE", 50);
    let dir = TestDir::new("load").in_process();
    let spec = dir.write_spec();
    let s = &spec.spec;
    let genesis = genesis_hash(s);
    let a = dir.start_node("a", &dir.path().join("a"), &spec, true);
    let b = dir.start_node_with(
        "b",
        &dir.path().join("b"),
        &spec,
        true,
        &bootnode_args(&[&a]),
    );
    let c = dir.start_node_with(
        "c",
        &dir.path().join("c"),
        &spec,
        false,
        &bootnode_args(&[&a, &b]),
    );
    let nodes = [&a, &b, &c];

    // Fund the senders: five from each genesis account.
    let mut funders: Vec<Account> = (0..GENESIS_ACCOUNTS).map(account).collect();
    let mut senders: Vec<Account> = (GENESIS_ACCOUNTS..GENESIS_ACCOUNTS + SENDERS)
        .map(account)
        .collect();
    let mut funding = BTreeSet::new();
    for (i, sender) in senders.iter().enumerate() {
        let funder = &mut funders[i % GENESIS_ACCOUNTS as usize];
        let txid = send(&a, s, &genesis, funder, sender.address, 1_000 * 100_000_000)
            .unwrap_or_else(|e| panic!("funding refused: {e}"));
        funding.insert(txid);
    }
    poll(
        "the funding confirmed everywhere",
        Duration::from_secs(120),
        || confirmed_everywhere(&nodes, &funding),
    );

    // The load: every tick, `rate` transfers round-robin over senders and nodes, to random
    // accounts of the whole set.
    let mut rng = common::XorShift::from_env_or_clock();
    let everyone: Vec<Address> = funders
        .iter()
        .chain(senders.iter())
        .map(|a| a.address)
        .collect();
    let mut accepted = BTreeSet::new();
    let mut refused = Vec::new();
    let start = Instant::now();
    let mut next_sender = 0usize;
    let mut sent = 0u64;
    while start.elapsed() < Duration::from_secs(seconds) {
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due {
            let sender = &mut senders[next_sender % SENDERS as usize];
            let node = nodes[(sent % 3) as usize];
            let to = everyone[rng.range(0, everyone.len() as u64) as usize];
            match send(node, s, &genesis, sender, to, rng.range(1, 1_000_000)) {
                Ok(txid) => {
                    accepted.insert(txid);
                }
                Err(answer) => refused.push(answer),
            }
            next_sender += 1;
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let load_secs = start.elapsed().as_secs_f64();
    eprintln!(
        "load: {sent} transfers in {load_secs:.1} s ({:.1}/s), {} accepted, {} refused",
        sent as f64 / load_secs,
        accepted.len(),
        refused.len()
    );
    assert!(refused.is_empty(), "refused: {refused:?}");
    assert_eq!(accepted.len() as u64, sent);

    // Everything accepted is confirmed on every node, and the nodes agree.
    let settle = Instant::now();
    poll(
        "every accepted transfer confirmed on every node",
        Duration::from_secs(180),
        || confirmed_everywhere(&nodes, &accepted),
    );
    eprintln!(
        "all confirmed on all nodes {:.1} s after the load",
        settle.elapsed().as_secs_f64()
    );
    for miner in [&a, &b] {
        miner.admin(
            "/api/v1/admin/mining",
            &serde_json::json!({ "enabled": false }),
        );
    }
    let tip = poll("one tip on all nodes", Duration::from_secs(60), || {
        let tips: Vec<Value> = nodes.iter().map(|n| n.tip()).collect();
        if tips.iter().all(|t| t["hash"] == tips[0]["hash"]) {
            Ok(tips[0].clone())
        } else {
            Err(format!("{tips:?}"))
        }
    });

    // Balances add up exactly, on every node.
    let height = tip["height"].as_u64().expect("height") as u32;
    let allocations: u64 = s
        .allocations
        .iter()
        .map(|(_, amount)| amount.as_units())
        .sum();
    let subsidies: u64 = (1..=height).map(|h| s.subsidy_at(h).as_units()).sum();
    for node in nodes {
        let total: u64 = everyone
            .iter()
            .map(|address| node.balance(s, address))
            .sum();
        assert_eq!(
            total,
            allocations + subsidies,
            "on {}: balances of all {} accounts vs allocations + subsidies up to height {height}",
            node.url(),
            everyone.len()
        );
        let pool = node.get("/api/v1/mempool");
        assert_eq!(pool["count"], 0, "nothing left pending: {pool}");
    }
}
