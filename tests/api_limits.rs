//! End-to-end tests of the HTTP server's limits against slow clients (issue 12, item 3):
//! [`SLOW_CLIENTS`] (or [`SLOW_CLIENTS_OVER_1024`]) TCP connections that send part of a request head and stop, and one request
//! whose body is declared as 1 MiB and never sent, against a real `cairn` node on 127.0.0.1.
//! While they are held, the node's API must answer a new client within [`ANSWER_WITHIN`] and
//! an honest peer must connect to it; and the node must close every one of them within
//! [`RELEASE_DEADLINE`]. Once with the machine's open-file limit, once with the node under
//! `ulimit -n 1024` (soft and hard), where the API and the libp2p listener share 1,024 file
//! descriptors.
//!
//! The slow clients live on their own thread and tokio runtime and stop when the test drops
//! them; every node is killed on drop.
#![allow(clippy::disallowed_methods)]

mod common;

use common::{poll, raise_own_open_files, Node, SocketTasks, TestDir};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Connections that send a partial request head and stop.
const SLOW_CLIENTS: usize = 1_000;
/// As many under `ulimit -n 1024`: more than the node's file descriptors, as in the issue's
/// report (1,100 stopped the API and the libp2p listener).
const SLOW_CLIENTS_OVER_1024: usize = 1_100;
/// What each of them sends: a request line and a header, without the blank line that ends
/// the head.
const PARTIAL_HEAD: &[u8] = b"GET /api/v1/tip HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow";
/// A complete request head declaring a 1 MiB body, of which nothing follows.
const UNSENT_BODY_HEAD: &[u8] = b"POST /api/v1/transactions HTTP/1.1\r\nHost: 127.0.0.1\r\n\
Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n";
/// A new API client must be answered within this, while the slow clients are held.
const ANSWER_WITHIN: Duration = Duration::from_secs(1);
/// The honest peer must be connected within this of its start.
const JOIN_DEADLINE: Duration = Duration::from_secs(15);
/// The node must have closed every slow client within this of their start.
const RELEASE_DEADLINE: Duration = Duration::from_secs(25);
/// The slow clients give up by themselves after this long, even if the test hangs.
const CLIENTS_LIMIT: Duration = Duration::from_secs(90);

/// What the slow clients have seen so far.
#[derive(Default)]
struct SlowCounts {
    /// Connections established (and their bytes written).
    connected: AtomicU64,
    /// Connection attempts that failed.
    failed: AtomicU64,
    /// Connections the node closed.
    closed_by_node: AtomicU64,
}

impl SlowCounts {
    fn connected(&self) -> u64 {
        self.connected.load(Ordering::Relaxed)
    }

    fn settled(&self) -> u64 {
        self.connected() + self.failed.load(Ordering::Relaxed)
    }

    fn held(&self) -> u64 {
        self.connected() - self.closed_by_node.load(Ordering::Relaxed)
    }

    fn summary(&self) -> String {
        format!(
            "{} connected, {} failed to connect, {} closed by the node, {} still held",
            self.connected(),
            self.failed.load(Ordering::Relaxed),
            self.closed_by_node.load(Ordering::Relaxed),
            self.held()
        )
    }
}

/// The slow clients, on their own thread. Dropping them closes their sockets.
struct SlowClients {
    _tasks: SocketTasks,
    counts: Arc<SlowCounts>,
    started: Instant,
}

impl SlowClients {
    /// Opens `clients` partial requests and one unsent body to `target`.
    fn start(target: SocketAddr, clients: usize) -> SlowClients {
        let counts = Arc::new(SlowCounts::default());
        let task_counts = Arc::clone(&counts);
        let tasks = SocketTasks::start("slow-clients", CLIENTS_LIMIT, move |tasks| {
            tasks.spawn(hold(target, UNSENT_BODY_HEAD, Arc::clone(&task_counts)));
            for _ in 0..clients {
                tasks.spawn(hold(target, PARTIAL_HEAD, Arc::clone(&task_counts)));
            }
        });
        SlowClients {
            _tasks: tasks,
            counts,
            started: Instant::now(),
        }
    }
}

/// One slow client: connects, writes `bytes`, then reads (and ignores) whatever comes until
/// the node closes the connection. It never finishes its request and never reconnects.
async fn hold(target: SocketAddr, bytes: &'static [u8], counts: Arc<SlowCounts>) {
    let connect = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(target),
    );
    let mut stream = match connect.await {
        Ok(Ok(stream)) => stream,
        _ => {
            counts.failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    counts.connected.fetch_add(1, Ordering::Relaxed);
    let _ = stream.write_all(bytes).await;
    let mut buffer = [0u8; 1024];
    while matches!(stream.read(&mut buffer).await, Ok(n) if n > 0) {}
    counts.closed_by_node.fetch_add(1, Ordering::Relaxed);
}

/// The node's cap on HTTP connections, from its log line `HTTP: at most N connections`.
fn http_connection_cap(node: &Node) -> u64 {
    let log = std::fs::read_to_string(&node.log).expect("the node's log");
    log.lines()
        .find_map(|line| {
            let (_, rest) = line.split_once("HTTP: at most ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no `HTTP: at most N connections` in {}", node.log.display()))
}

/// `GET /api/v1/tip` on a new connection, which must be answered `200` within
/// [`ANSWER_WITHIN`]; returns how long it took.
fn tip_within_deadline(node: &Node, clients: &SlowClients) -> Duration {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(ANSWER_WITHIN))
        .build()
        .into();
    let asked = Instant::now();
    let url = format!("{}/api/v1/tip", node.url());
    match agent.get(&url).call() {
        Ok(response) if response.status() == 200 => asked.elapsed(),
        Ok(response) => panic!("GET {url} answered {}", response.status()),
        Err(e) => panic!(
            "GET {url} was not answered within {ANSWER_WITHIN:?} while the slow clients are \
             held ({e}); slow clients: {}",
            clients.counts.summary()
        ),
    }
}

/// The attack of `slow_clients` slow clients on node A (with `open_files` as its limit, if
/// given); then honest node B joins with A as its bootnode.
fn slow_clients_do_not_starve_the_node(name: &str, slow_clients: usize, open_files: Option<u64>) {
    // One attack at a time: two floods of a thousand connections in parallel on a 2-core
    // machine measure each other, not the node (the 1 s deadline flaked in CI so).
    static ONE_ATTACK_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_ATTACK_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    raise_own_open_files(slow_clients as u64 + 300);
    let dir = TestDir::new(name);
    let spec = dir.write_spec();
    let a_dir = dir.path().join("a");
    let a = match open_files {
        Some(limit) => dir.start_node_with_open_files("a", &a_dir, &spec, &[], limit),
        None => dir.start_node("a", &a_dir, &spec, false),
    };

    let clients = SlowClients::start(a.api, slow_clients);
    poll(
        "every slow client to connect or fail",
        Duration::from_secs(20),
        || {
            let settled = clients.counts.settled();
            if settled > slow_clients as u64 {
                Ok(())
            } else {
                Err(clients.counts.summary())
            }
        },
    );
    // Every attempt has connected, but connected means queued in the kernel's accept queue:
    // wait until the node has taken each one in (it holds at most its cap and has closed the
    // rest), so that the honest request below meets the attack held, not the kernel's full
    // accept queue (a dropped SYN alone costs the client 1 s, the whole deadline).
    let cap = http_connection_cap(&a);
    poll(
        "the node to take in the flood (hold at most its cap)",
        RELEASE_DEADLINE,
        || match clients.counts.held() {
            held if held <= cap => Ok(()),
            _ => Err(format!("cap {cap}: {}", clients.counts.summary())),
        },
    );
    eprintln!(
        "slow clients after {:.2?}: {}",
        clients.started.elapsed(),
        clients.counts.summary()
    );
    assert!(
        clients.counts.connected() >= slow_clients as u64,
        "the slow clients should connect: {}",
        clients.counts.summary()
    );

    for _ in 0..3 {
        let took = tip_within_deadline(&a, &clients);
        eprintln!("A answered GET /api/v1/tip in {took:.2?} with the slow clients held");
    }

    let (b, _) = dir.join_node(
        "b",
        &spec,
        &a,
        JOIN_DEADLINE,
        "while the slow clients are held",
        String::new,
    );

    poll(
        "the node to close every slow client",
        RELEASE_DEADLINE.saturating_sub(clients.started.elapsed()),
        || match clients.counts.held() {
            0 => Ok(()),
            _ => Err(clients.counts.summary()),
        },
    );
    eprintln!(
        "every slow client closed by the node within {:.2?} of its start",
        clients.started.elapsed()
    );
    tip_within_deadline(&a, &clients);
    drop(clients);
    b.stop_cleanly();
    a.stop_cleanly();
}

#[test]
fn slow_clients_are_cut_off_and_do_not_starve_the_node() {
    slow_clients_do_not_starve_the_node("api-slow-clients", SLOW_CLIENTS, None);
}

#[test]
fn slow_clients_do_not_starve_a_node_under_ulimit_1024() {
    slow_clients_do_not_starve_the_node(
        "api-slow-clients-1024",
        SLOW_CLIENTS_OVER_1024,
        Some(1024),
    );
}
