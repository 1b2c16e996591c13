//! The async shell around `core`: storage (sled), the HTTP API (axum on tokio), mining
//! threads, the event loop, and the command line. It carries out what `core` decides and
//! never decides validity or chain order itself.
//!
//! ```text
//!   main.rs ─► cli ─► run(NodeConfig)
//!                        ├─ driver thread: ChainManager (store + core rules)
//!                        │                 + Protocol (core network logic) + Mempool
//!                        ├─ MinerHandle (N threads) ── found blocks ──► driver
//!                        ├─ swarm task (libp2p on tokio) ◄── commands ── driver
//!                        │                               ── events ────► driver
//!                        └─ HTTP API (tokio) ── reads the store and NodeShared;
//!                                               submissions and admin calls ──► driver, swarm
//! ```
pub mod api;
pub mod chain;
pub mod cli;
pub mod clock;
pub mod cookie;
pub mod disk;
pub mod driver;
pub mod events;
pub mod explorer;
pub mod journal_writer;
pub mod metrics;
pub mod miner;
pub mod net;
pub mod pool_file;
pub mod pool_journal;
pub mod precheck;
pub mod store;
pub mod store_health;

use crate::core::consensus::ChainSpec;
use crate::core::mempool::{Mempool, MempoolConfig};
use crate::core::primitives::Address;
use crate::core::protocol::machine::{Protocol, ProtocolConfig};
use anyhow::Context;
use chain::open_chain;
use cookie::AdminToken;
use driver::{Driver, DriverEvent, MiningSetup};
use miner::MinerHandle;
use net::{Multiaddr, NetConfig, PeerId};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// File in the data directory holding the HTTP API's bound address (useful with port 0).
pub const API_ADDR_FILE: &str = "api.addr";

/// What the driver shares with its readers (the HTTP API, the explorer): the driver is the
/// only writer of each part.
#[derive(Clone)]
pub struct NodeShared {
    /// The pending transfers.
    pub mempool: Arc<RwLock<Mempool>>,
    /// New tips and transfers, for live listeners.
    pub events: events::EventBus,
    /// Prometheus metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// The network as the driver last saw it.
    pub peers: Arc<RwLock<api::views::PeersView>>,
    /// The miner's state.
    pub mining: Arc<RwLock<api::views::MiningView>>,
    /// Whether sync is downloading blocks.
    pub syncing: Arc<AtomicBool>,
    /// Whether the store writes (`GET /api/v1/health`).
    pub health: Arc<RwLock<api::views::HealthView>>,
}

/// Everything `cairn node` needs.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Where the node keeps its data.
    pub data_dir: PathBuf,
    /// The chain.
    pub spec: ChainSpec,
    /// Where the HTTP API listens.
    pub http_addr: SocketAddr,
    /// Where the block explorer is served.
    pub explorer: ExplorerPlacement,
    /// Mining setup, if mining.
    pub mining: Option<MiningConfig>,
    /// Peer-to-peer setup.
    pub network: NetworkConfig,
    /// Mempool limits and fee policy.
    pub mempool: MempoolConfig,
    /// `Host` names the HTTP API answers to besides loopback and its own address
    /// (`--allow-host`).
    pub allow_hosts: Vec<String>,
    /// Free space to keep on the data directory's disk (`--min-free-disk`).
    pub min_free_disk_bytes: u64,
}

/// Where the block explorer is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExplorerPlacement {
    /// Not at all (`--no-explorer`).
    Off,
    /// At `/` of the HTTP API's address (the default).
    WithApi,
    /// At `/` of its own address (`--explorer-addr`), with the read-only API routes its
    /// pages use for live updates; the API's address then serves the API only.
    At(SocketAddr),
}

/// File in the data directory holding the explorer's bound address, when it has its own.
pub const EXPLORER_ADDR_FILE: &str = "explorer.addr";

/// Peer-to-peer options.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// Where to listen.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start (the spec's and `--bootnode`s).
    pub bootnodes: Vec<Multiaddr>,
    /// Addresses others can reach this node at.
    pub external_addresses: Vec<Multiaddr>,
    /// Local-network discovery.
    pub mdns: bool,
    /// Most connections.
    pub max_peers: u32,
    /// How long a misbehaving peer stays banned.
    pub ban_secs: u64,
}

/// `--mine` options.
#[derive(Clone, Debug)]
pub struct MiningConfig {
    /// Mining threads.
    pub threads: usize,
    /// Who the blocks pay.
    pub reward_address: Address,
}

/// Runs a node until Ctrl-C or SIGTERM.
pub fn run(config: NodeConfig) -> anyhow::Result<()> {
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

    let runtime = tokio::runtime::Builder::new_multi_thread()
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
    tracing::info!("node identity {}", net.local_peer_id());

    let token = AdminToken::create(&config.data_dir).context("cannot write the admin cookie")?;
    let shared = NodeShared {
        mempool: Arc::new(RwLock::new(Mempool::new(
            config.mempool,
            genesis_hash,
            config.spec.chain_id(),
        ))),
        events: events::EventBus::default(),
        metrics: Arc::new(metrics::Metrics::new()),
        peers: Arc::new(RwLock::new(api::views::PeersView::default())),
        mining: Arc::new(RwLock::new(api::views::MiningView::default())),
        syncing: Arc::new(AtomicBool::new(false)),
        health: Arc::new(RwLock::new(api::views::HealthView::default())),
    };
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
            "mining on {} threads, paying {}",
            m.threads,
            m.reward_address
                .to_bech32(config.spec.hrp())
                .unwrap_or_default()
        );
        let found = events_tx.clone();
        MiningSetup {
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
    let driver_thread = std::thread::Builder::new()
        .name("driver".into())
        .spawn(move || driver.run(events_rx, driver_shutdown))
        .context("cannot start the driver thread")?;

    runtime.block_on(wait_for_signal());
    tracing::info!("shutting down");
    shutdown.store(true, Ordering::Release);
    let _ = stop_http.send(true);
    let stopped = driver_thread.join();
    for server in servers {
        let _ = runtime.block_on(server);
    }
    net_task.abort();
    AdminToken::remove(&config.data_dir);
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

/// Resolves on Ctrl-C or SIGTERM.
async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
