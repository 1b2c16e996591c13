//! Starting and stopping a node in-process: [`launch`] builds everything a node runs (store,
//! network, HTTP listeners, miner, driver) and returns a [`NodeHandle`]: its addresses, its
//! live events, and [`NodeHandle::stop`]. The CLI launches one and waits for a signal; tests
//! and load tools launch as many as they like in one process.
//!
//! ```text
//!   launch(NodeConfig) ─► store ─► runtime ─► swarm task ─► HTTP listeners ─► miner threads
//!                         ─► journal thread ─► driver thread  ══► NodeHandle
//!   NodeHandle::stop ─► driver stops (miner, journal, final flush) ─► HTTP drains ─► swarm
//! ```
//!
//! Every thread of a node logs to the `tracing` subscriber that was the default where
//! `launch` was called (see [`super::threads`]), and so does its stop: several nodes in one
//! process can each have their own log.
//!
//! # Invariants
//! - `launch` returns only once the HTTP API serves and the pending transfers of an earlier
//!   run are back in the pool.
//! - A handle stops its node exactly once: by `stop`, or when it is dropped.
use super::api;
use super::chain::open_chain;
use super::cookie::AdminToken;
use super::driver::{Driver, DriverEvent, MiningThreads, ShutdownError};
use super::events::NodeEvent;
use super::miner::MinerHandle;
use super::net::{self, NetConfig, PeerId};
use super::{
    clock, disk, driver, events, explorer, journal_writer, metrics, pool_journal, store, threads,
    ExplorerPlacement, NodeConfig, NodeShared, API_ADDR_FILE, EXPLORER_ADDR_FILE,
};
use crate::core::mempool::Mempool;
use crate::core::protocol::machine::{Protocol, ProtocolConfig};
use anyhow::Context;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// A running node.
pub struct NodeHandle {
    api_addr: SocketAddr,
    explorer_addr: Option<SocketAddr>,
    peer_id: PeerId,
    shared: NodeShared,
    data_dir: PathBuf,
    /// Where its logs go.
    log: tracing::Dispatch,
    /// What `stop` stops (taken by it).
    running: Option<Running>,
    /// Dropped last: the tasks above run on it.
    runtime: tokio::runtime::Runtime,
}

struct Running {
    shutdown: Arc<AtomicBool>,
    stop_http: tokio::sync::watch::Sender<bool>,
    driver_thread: std::thread::JoinHandle<Result<(), ShutdownError>>,
    servers: Vec<tokio::task::JoinHandle<()>>,
    net_task: tokio::task::JoinHandle<()>,
}

impl NodeHandle {
    /// Where the HTTP API listens.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// Where the block explorer is served, if it is.
    pub fn explorer_addr(&self) -> Option<SocketAddr> {
        self.explorer_addr
    }

    /// The node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Its data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Its P2P addresses (with `/p2p/<peer id>`), once the network listens.
    pub fn p2p_addresses(&self) -> Vec<String> {
        self.shared
            .peers
            .read()
            .map(|view| view.listen_addresses.clone())
            .unwrap_or_default()
    }

    /// Waits up to `timeout` for the first P2P address.
    pub fn wait_for_p2p_address(&self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(address) = self.p2p_addresses().into_iter().next() {
                return Some(address);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// New tips and admitted transfers from now on.
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<NodeEvent> {
        self.shared.events.subscribe()
    }

    /// What the node shares with its readers (mempool, views, metrics).
    pub fn shared(&self) -> &NodeShared {
        &self.shared
    }

    /// Runs `future` on the node's runtime until it completes (the CLI waits for a signal
    /// this way).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Stops the node: the driver stops the miner, writes the pool's journal and flushes
    /// the store; the HTTP servers drain; the network stops. Fails if the store could not
    /// be made durable, or the driver panicked.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.stop_running()
    }

    fn stop_running(&mut self) -> anyhow::Result<()> {
        let log = self.log.clone();
        tracing::dispatcher::with_default(&log, || self.stop_logged())
    }

    fn stop_logged(&mut self) -> anyhow::Result<()> {
        let Some(running) = self.running.take() else {
            return Ok(());
        };
        running.shutdown.store(true, Ordering::Release);
        let _ = running.stop_http.send(true);
        let stopped = running.driver_thread.join();
        for server in running.servers {
            let _ = self.runtime.block_on(server);
        }
        running.net_task.abort();
        AdminToken::remove(&self.data_dir);
        match stopped {
            Err(_) => anyhow::bail!("the driver thread panicked"),
            Ok(Err(e)) => {
                tracing::error!("{e}");
                Err(e.into())
            }
            Ok(Ok(())) => {
                tracing::info!("stopped cleanly");
                Ok(())
            }
        }
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        if let Err(e) = self.stop_running() {
            tracing::warn!("node stopped on drop: {e}");
        }
    }
}

/// Starts a node: opens its store, starts its network, HTTP listeners, miner and driver,
/// and returns once it serves. Stop it with [`NodeHandle::stop`] (dropping the handle stops
/// it too).
pub fn launch(config: NodeConfig) -> anyhow::Result<NodeHandle> {
    let http_limits = match api::server::raise_open_file_limit() {
        Ok(files) => {
            tracing::info!(
                "open-file limit {} (was {}, hard limit {})",
                files.now,
                files.before,
                files.hard
            );
            api::server::HttpLimits::for_open_files(files.now)
        }
        Err(e) => {
            tracing::warn!("cannot read or raise the open-file limit: {e}");
            api::server::HttpLimits::for_open_files(1024)
        }
    };
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    // Address files of an earlier run would point at old ports.
    let _ = std::fs::remove_file(config.data_dir.join(driver::P2P_ADDR_FILE));
    let _ = std::fs::remove_file(config.data_dir.join(EXPLORER_ADDR_FILE));
    let chain_dir = config.data_dir.join("chain");
    let chain =
        open_chain(&chain_dir, config.spec.clone()).map_err(|e| store_open_error(&chain_dir, e))?;
    let genesis_hash = chain.genesis_hash();
    let tip = chain.tip().clone();
    tracing::info!(
        "chain {} (genesis {}), tip at height {} ({}), data in {}",
        config.spec.file.name,
        genesis_hash,
        tip.height(),
        tip.hash(),
        config.data_dir.display()
    );

    let runtime = threads::carry_dispatch(&mut tokio::runtime::Builder::new_multi_thread())
        .worker_threads(2)
        .enable_all()
        .thread_name("cairn-io")
        .build()
        .context("cannot start the async runtime")?;

    // Bans survive restarts: the store keeps them, and both the logic and the swarm
    // start out refusing those peers.
    let now_ms = clock::unix_now_ms();
    let mut bans = Vec::new();
    let mut ban_reasons = BTreeMap::new();
    for (bytes, record) in chain
        .store()
        .bans()
        .context("cannot read the stored bans")?
    {
        match PeerId::from_bytes(&bytes) {
            Ok(peer) if record.until_ms > now_ms => {
                bans.push((peer, record.until_ms));
                ban_reasons.insert(peer, record.reason);
            }
            Ok(_) => {
                let _ = chain.store().remove_ban(&bytes);
            }
            Err(_) => tracing::warn!("ignoring a stored ban with an unreadable peer id"),
        }
    }
    let protocol_config = ProtocolConfig {
        policy: crate::core::protocol::peers::PeerPolicyConfig {
            ban_duration_secs: config.network.ban_secs,
            ..Default::default()
        },
        snapshot: config.network.snapshot,
        ..ProtocolConfig::default()
    };
    let protocol = Protocol::new(protocol_config, bans.clone());

    let (events_tx, events_rx) = std::sync::mpsc::channel::<DriverEvent>();
    let mut net_config = NetConfig::new(
        config.data_dir.clone(),
        genesis_hash,
        config.spec.max_block_bytes(),
    );
    net_config.listen = config.network.listen.clone();
    net_config.bootnodes = config.network.bootnodes.clone();
    net_config.external_addresses = config.network.external_addresses.clone();
    net_config.mdns = config.network.mdns;
    net_config.max_connections = config.network.max_peers;
    net_config.block_relay = config.network.block_relay;
    let metrics = Arc::new(metrics::Metrics::new());
    net_config.traffic = net::Traffic {
        received: metrics.p2p_received_bytes.clone(),
        sent: metrics.p2p_sent_bytes.clone(),
    };
    net_config.banned = bans.iter().map(|(peer, _)| *peer).collect();
    let net_events = events_tx.clone();
    let (net, net_task) = {
        let _entered = runtime.enter();
        net::start(
            net_config,
            Box::new(move |event| {
                let _ = net_events.send(DriverEvent::Net(event));
            }),
        )
        .context("cannot start the peer-to-peer network")?
    };
    let peer_id = net.local_peer_id();
    tracing::info!("node identity {peer_id}");

    let token = AdminToken::create(&config.data_dir).context("cannot write the admin cookie")?;
    let shared = NodeShared {
        mempool: Arc::new(RwLock::new(
            Mempool::new(config.mempool, genesis_hash, config.spec.chain_id())
                .with_signature_cache(chain.signature_cache().clone()),
        )),
        events: events::EventBus::default(),
        metrics,
        peers: Arc::new(RwLock::new(api::views::PeersView::default())),
        mining: Arc::new(RwLock::new(api::views::MiningView::default())),
        syncing: Arc::new(AtomicBool::new(false)),
        snapshot: Arc::new(RwLock::new(None)),
        old_blocks: Arc::new(RwLock::new(None)),
        health: Arc::new(RwLock::new(api::views::HealthView::default())),
    };
    let handle_shared = shared.clone();
    let api_state = api::ApiState {
        store: chain.store().clone(),
        spec: Arc::new(config.spec.clone()),
        genesis_hash,
        shared: shared.clone(),
        driver: events_tx.clone(),
        admin: api::AdminHandles {
            token,
            net: net.clone(),
        },
    };
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(config.http_addr))
        .with_context(|| format!("cannot listen for HTTP on {}", config.http_addr))?;
    let bound = listener
        .local_addr()
        .context("cannot read the HTTP address")?;
    std::fs::write(config.data_dir.join(API_ADDR_FILE), bound.to_string())
        .context("cannot write the API address file")?;
    tracing::info!("HTTP API listening on http://{bound}/api/v1/tip");
    warn_if_beyond_loopback("the HTTP API", bound);
    let explorer_router = || {
        let view = Arc::new(explorer::NodeExplorer::new(api_state.clone()));
        cairn_explorer::router(view, cairn_explorer::ExplorerConfig::default())
    };
    let mut app = api::router(api_state.clone());
    let mut listeners = Vec::new();
    let mut bound_ips = vec![bound.ip()];
    let mut explorer_addr = matches!(config.explorer, ExplorerPlacement::WithApi).then_some(bound);
    match config.explorer {
        ExplorerPlacement::Off => {}
        ExplorerPlacement::WithApi => {
            app = app.merge(explorer_router());
            tracing::info!("block explorer at http://{bound}/");
        }
        ExplorerPlacement::At(address) => {
            let explorer_listener = runtime
                .block_on(tokio::net::TcpListener::bind(address))
                .with_context(|| format!("cannot listen for the explorer on {address}"))?;
            let explorer_bound = explorer_listener
                .local_addr()
                .context("cannot read the explorer's address")?;
            std::fs::write(
                config.data_dir.join(EXPLORER_ADDR_FILE),
                explorer_bound.to_string(),
            )
            .context("cannot write the explorer address file")?;
            tracing::info!("block explorer at http://{explorer_bound}/");
            warn_if_beyond_loopback("the block explorer", explorer_bound);
            bound_ips.push(explorer_bound.ip());
            explorer_addr = Some(explorer_bound);
            let explorer_app =
                explorer_router().merge(api::explorer_feed_router(api_state.clone()));
            listeners.push((explorer_listener, explorer_app));
        }
    }
    listeners.push((listener, app));
    let hosts = api::server::HostAllowlist::new(bound_ips, &config.allow_hosts)
        .map_err(|e| anyhow::anyhow!(e))?;
    let http = api::server::HttpServer::new(http_limits, hosts);
    tracing::info!(
        "HTTP: at most {} connections, {} s for a request head (and between requests), {} s \
         for a body; answering to Host {}",
        http_limits.max_connections,
        http_limits.header_timeout.as_secs(),
        http_limits.body_timeout.as_secs(),
        http.hosts().names().collect::<Vec<_>>().join(", ")
    );

    let mining = config.mining.as_ref().map(|m| {
        tracing::info!(
            "mining on {} threads with the {} kernel, paying {}",
            m.threads,
            crate::core::miner::search::Kernel::detect().describe(),
            m.reward_address
                .to_bech32(config.spec.hrp())
                .unwrap_or_default()
        );
        let found = events_tx.clone();
        MiningThreads {
            miner: MinerHandle::spawn(m.threads, move |block| {
                found.send(DriverEvent::Mined(block)).is_ok()
            }),
            reward_address: m.reward_address,
            threads: m.threads,
        }
    });
    let shutdown = Arc::new(AtomicBool::new(false));
    let (journal, saved) = pool_journal::PoolJournal::open(&config.data_dir)
        .context("cannot open the mempool journal")?;
    let journal = journal_writer::JournalWriter::spawn(
        journal,
        driver::on_journal_commit(net.clone(), Arc::clone(&shared.mempool)),
    )
    .context("cannot start the mempool journal's thread")?;
    drop(events_tx);
    let disk = disk::DiskGuard::new(&config.data_dir, config.min_free_disk_bytes);
    let mut driver = Driver::new(
        chain,
        protocol,
        net,
        mining,
        config.data_dir.clone(),
        ban_reasons,
        shared,
        disk,
        journal,
    );
    driver.restore_mempool(saved);
    // The API serves once the pending transfers are back: it never says "unknown" of a
    // transfer it accepted before a restart.
    let (stop_http, http_stopped) = tokio::sync::watch::channel(false);
    let servers: Vec<_> = listeners
        .into_iter()
        .map(|(listener, app)| {
            let serving = Arc::clone(&http).serve(listener, app, http_stopped.clone());
            runtime.spawn(serving)
        })
        .collect();
    let driver_shutdown = Arc::clone(&shutdown);
    let driver_thread = threads::spawn("driver", move || driver.run(events_rx, driver_shutdown))
        .context("cannot start the driver thread")?;

    Ok(NodeHandle {
        api_addr: bound,
        explorer_addr,
        peer_id,
        shared: handle_shared,
        data_dir: config.data_dir,
        log: tracing::dispatcher::get_default(tracing::Dispatch::clone),
        running: Some(Running {
            shutdown,
            stop_http,
            driver_thread,
            servers,
            net_task,
        }),
        runtime,
    })
}

/// Warns that `what`, bound to `address`, can be reached from other machines.
fn warn_if_beyond_loopback(what: &str, address: SocketAddr) {
    if !address.ip().is_loopback() {
        tracing::warn!(
            "{what} is bound to {address}, beyond this machine's loopback: anyone who can \
             reach it can read the chain and the mempool and submit transfers (admin calls \
             still need the cookie). Put it behind a firewall or a reverse proxy, or bind it \
             to 127.0.0.1; requests must name an allowed host (--allow-host)"
        );
    }
}

/// The startup error for a chain store in `dir` that did not open, saying what to do.
fn store_open_error(dir: &std::path::Path, e: store::StoreError) -> anyhow::Error {
    let shown = dir.display();
    let text = e.to_string();
    if e.is_corrupt() {
        anyhow::anyhow!(
            "the chain store in {shown} is corrupt ({text}). Move the directory aside (e.g. \
             `mv {shown} {shown}.corrupt`) and start the node again to download the chain from \
             peers; `cairn verify --data-dir <data-dir>` checks a store without changing it"
        )
    } else if matches!(e, store::StoreError::Locked(_)) {
        anyhow::anyhow!(
            "cannot open the chain store in {shown}: another node is using this data \
             directory ({text})"
        )
    } else {
        anyhow::anyhow!("cannot open the chain store in {shown}: {text}")
    }
}
