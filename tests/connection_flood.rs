//! End-to-end test of an idle-connection flood against a real `cairn` node on 127.0.0.1
//! (issue 11, item 6: "inbound lockout").
//!
//! Node A listens on a free loopback port. A flood of [`FLOOD_SOCKETS`] TCP connections from
//! another source address ([`FLOOD_SOURCE`], still loopback) connects to A's P2P port and
//! never sends a byte; each connection is held until A closes it and then opened again. While
//! the flood runs, honest node B starts with A as its bootnode and must be connected to A
//! (each lists the other in `GET /api/v1/peers`) within [`JOIN_DEADLINE`] of its start, and
//! A's API must still answer.
//!
//! The flood lives on its own thread and tokio runtime; it stops when the test drops it, and
//! by itself after [`FLOOD_LIMIT`] whatever happens. Both nodes are killed on drop.
#![allow(clippy::disallowed_methods)]

mod common;

use common::{Node, SocketTasks, TestDir};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// Idle connections the flood keeps open (or reopening) at once.
const FLOOD_SOCKETS: usize = 1_000;
/// Where the flood connects from: another host as far as A can tell (all of 127.0.0.0/8 is
/// loopback on Linux), so that A cannot tell the flood and B apart by port alone.
const FLOOD_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 9);
/// How long the flood runs before B starts, so that it already holds every slot it can.
const FLOOD_WARMUP: Duration = Duration::from_secs(3);
/// A flood connection that A closed is opened again after this pause. It bounds the
/// flood's own CPU use on a small test machine (at most 1,000 / 0.2 s = 5,000 connections a
/// second); the attack's strength is the number of sockets held, not how fast they churn.
const REOPEN_PAUSE: Duration = Duration::from_millis(200);
/// The flood stops by itself after this long, even if the test hangs.
const FLOOD_LIMIT: Duration = Duration::from_secs(120);
/// B must be connected to A within this time of its start.
const JOIN_DEADLINE: Duration = Duration::from_secs(10);
/// File descriptors this test process needs: the flood's sockets and some room.
const FDS_NEEDED: u64 = FLOOD_SOCKETS as u64 + 200;

/// What the flood has done so far.
#[derive(Default)]
struct FloodCounts {
    /// TCP connections established.
    opened: AtomicU64,
    /// Connections A closed (end of stream or a reset).
    closed_by_target: AtomicU64,
    /// Connection attempts that failed.
    failed: AtomicU64,
}

impl FloodCounts {
    fn summary(&self) -> String {
        format!(
            "{} connections opened, {} closed by the node, {} attempts failed",
            self.opened.load(Ordering::Relaxed),
            self.closed_by_target.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed)
        )
    }
}

/// An idle-connection flood on its own thread. Dropping it stops it and waits for its sockets
/// to close.
struct Flood {
    _tasks: SocketTasks,
    counts: Arc<FloodCounts>,
}

impl Flood {
    /// Starts `sockets` idle connections from `source` to `target`.
    fn start(source: Ipv4Addr, target: SocketAddr, sockets: usize) -> Flood {
        let counts = Arc::new(FloodCounts::default());
        let task_counts = Arc::clone(&counts);
        let tasks = SocketTasks::start("flood", FLOOD_LIMIT, move |tasks| {
            for _ in 0..sockets {
                tasks.spawn(hold_open(source, target, Arc::clone(&task_counts)));
            }
        });
        Flood {
            _tasks: tasks,
            counts,
        }
    }
}

/// One flood connection, forever: connect from `source`, never write, read until the target
/// closes it, pause, again.
async fn hold_open(source: Ipv4Addr, target: SocketAddr, counts: Arc<FloodCounts>) {
    let mut buffer = [0u8; 1024];
    loop {
        match connect_from(source, target).await {
            Ok(mut stream) => {
                counts.opened.fetch_add(1, Ordering::Relaxed);
                // Whatever the node sends is read and ignored; the flood answers nothing.
                while matches!(stream.read(&mut buffer).await, Ok(n) if n > 0) {}
                counts.closed_by_target.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                counts.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(REOPEN_PAUSE).await;
    }
}

/// A TCP connection to `target` from an ephemeral port of `source`.
async fn connect_from(
    source: Ipv4Addr,
    target: SocketAddr,
) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    tokio::time::timeout(Duration::from_secs(5), socket.connect(target))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// The `127.0.0.1:<port>` of a node's `/ip4/127.0.0.1/tcp/<port>/p2p/<id>` address.
fn p2p_socket(node: &Node) -> SocketAddr {
    let address = node.p2p_addr();
    let port = address
        .split('/')
        .skip_while(|part| *part != "tcp")
        .nth(1)
        .and_then(|port| port.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no TCP port in {address}"));
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

#[test]
fn an_idle_connection_flood_does_not_lock_out_an_honest_peer() {
    common::raise_own_open_files(FDS_NEEDED);
    let dir = TestDir::new("connection-flood");
    let spec = dir.write_spec();
    let a = dir.start_node("a", &dir.path().join("a"), &spec, false);

    let flood = Flood::start(FLOOD_SOURCE, p2p_socket(&a), FLOOD_SOCKETS);
    std::thread::sleep(FLOOD_WARMUP);
    let opened = flood.counts.opened.load(Ordering::Relaxed);
    assert!(
        opened >= FLOOD_SOCKETS as u64,
        "the flood should have connected every socket at least once: {}",
        flood.counts.summary()
    );
    eprintln!("flood after {FLOOD_WARMUP:?}: {}", flood.counts.summary());

    // B stays up to the end: A keeps serving under the flood with an honest peer connected.
    let (_b, _) = dir.join_node(
        "b",
        &spec,
        &a,
        JOIN_DEADLINE,
        &format!("while {FLOOD_SOCKETS} idle connections flood A"),
        || format!("; flood: {}", flood.counts.summary()),
    );

    let asked = Instant::now();
    let tip = a.tip();
    assert_eq!(tip["height"], 0, "A answers its tip under the flood: {tip}");
    eprintln!(
        "A's API answered in {:.2?} under the flood",
        asked.elapsed()
    );
    eprintln!("flood at the end: {}", flood.counts.summary());
    drop(flood);
}
