//! Nodes started in-process through `node::launch` (issue 13): the handle's addresses, its
//! event stream and its stop, with two nodes syncing over loopback inside one test process
//! (no `cairn` binary, no log scraping).
#![allow(clippy::disallowed_methods)]

mod common;

use cairn::core::primitives::Address;
use cairn::node::events::NodeEvent;
use cairn::node::{launch, MiningConfig, NodeConfig};
use common::{http_get, poll, TestDir};
use std::time::Duration;
use tokio::sync::broadcast::error::TryRecvError;

#[test]
fn two_launched_nodes_sync_stream_events_and_stop_cleanly() {
    let dir = TestDir::new("in-process");
    let spec = dir.write_spec();
    let reward_address = Address::from_bech32(&spec.miner_address, spec.spec.hrp())
        .expect("the spec's first account");

    let mut miner = NodeConfig::loopback(dir.path().join("a"), spec.spec.clone());
    miner.mining = Some(MiningConfig {
        threads: 1,
        reward_address,
    });
    let a = launch(miner).expect("node a starts");
    let a_p2p = a
        .wait_for_p2p_address(Duration::from_secs(10))
        .expect("node a listens for peers");
    assert!(a_p2p.contains(&a.peer_id().to_string()));
    assert_eq!(a.explorer_addr(), Some(a.api_addr()));

    let mut follower = NodeConfig::loopback(dir.path().join("b"), spec.spec.clone());
    follower.network.bootnodes = vec![a_p2p.parse().expect("a P2P address")];
    let b = launch(follower).expect("node b starts");
    let mut events = b.events();

    // b hears of every block it takes, through the handle's event stream.
    let mut highest = 0;
    poll("node b to take 3 blocks", Duration::from_secs(120), || {
        loop {
            match events.try_recv() {
                Ok(NodeEvent::Block(block)) => highest = highest.max(block.height),
                Ok(NodeEvent::Transfer(_)) | Err(TryRecvError::Lagged(_)) => {}
                Err(TryRecvError::Empty) => break,
                Err(e) => return Err(format!("event stream ended: {e}")),
            }
        }
        (highest >= 3)
            .then_some(())
            .ok_or(format!("at height {highest}"))
    });

    // Both serve their HTTP APIs on the addresses the handles report.
    let tip = |addr: std::net::SocketAddr| {
        let (status, body) =
            http_get(&format!("http://{addr}/api/v1/tip")).expect("the API answers");
        assert_eq!(status, 200);
        body["height"].as_u64().expect("a height")
    };
    assert!(tip(b.api_addr()) >= 3);
    assert!(tip(a.api_addr()) >= tip(b.api_addr()).min(3));

    let b_dir = b.data_dir().to_path_buf();
    b.stop().expect("node b stops cleanly");
    a.stop().expect("node a stops cleanly");
    // A stopped node released its store: it launches again on the same directory.
    let again = launch(NodeConfig::loopback(b_dir, spec.spec.clone())).expect("b starts again");
    assert!(tip(again.api_addr()) >= 3, "b kept what it synced");
    again.stop().expect("b stops again");
}
