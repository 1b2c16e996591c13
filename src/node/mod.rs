//! The async shell around `core`: storage (sled), the HTTP API (axum on tokio), mining
//! threads, the event loop, and the command line. It carries out what `core` decides and
//! never decides validity or chain order itself.
//!
//! ```text
//!   main.rs ─► cli ─► launch(NodeConfig) ─► NodeHandle (tests and tools launch it too)
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
#[cfg(feature = "test-utils")]
pub mod harness;
pub mod journal_writer;
pub mod launch;
pub mod metrics;
pub mod miner;
pub mod net;
pub mod pool_file;
pub mod pool_journal;
pub mod precheck;
pub mod store;
pub mod store_health;
pub mod threads;

use crate::core::consensus::ChainSpec;
use crate::core::mempool::{Mempool, MempoolConfig};
use crate::core::primitives::Address;
use crate::core::protocol::machine::SnapshotConfig;
pub use launch::{launch, NodeHandle};
use net::{BlockRelay, Multiaddr};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
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
    /// Snapshot sync's last progress report, while it fetches state.
    pub snapshot: Arc<RwLock<Option<crate::core::views::SnapshotFetchView>>>,
    /// The background fetch of the blocks below a snapshot: its last report.
    pub old_blocks: Arc<RwLock<Option<crate::core::views::OldBlocksView>>>,
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
    /// How mined blocks are announced.
    pub block_relay: BlockRelay,
    /// How a fresh node syncs: by snapshot, and when (`None`: every block in full).
    pub snapshot: Option<SnapshotConfig>,
}

/// How a fresh node syncs (`--sync`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncMode {
    /// By snapshot when the chain is at least `DEFAULT_SNAPSHOT_MIN_BLOCKS` long, else in
    /// full.
    #[default]
    Auto,
    /// Every block, validated from genesis.
    Full,
    /// By snapshot whenever the chain is longer than the snapshot depth.
    Snapshot,
}

impl SyncMode {
    /// The network logic's snapshot setting for this mode, with the pivot `depth` blocks
    /// below the most-work header tip.
    pub fn snapshot_config(self, depth: u32) -> Option<SnapshotConfig> {
        match self {
            SyncMode::Full => None,
            SyncMode::Auto => Some(SnapshotConfig {
                depth,
                min_blocks: DEFAULT_SNAPSHOT_MIN_BLOCKS.max(depth.saturating_add(1)),
            }),
            SyncMode::Snapshot => Some(SnapshotConfig {
                depth,
                min_blocks: depth.saturating_add(1),
            }),
        }
    }
}

/// Default of `--snapshot-depth`: the pivot of a snapshot is this many blocks below the
/// most-work header tip (a reorg deeper than this would leave a snapshot node stuck).
pub const DEFAULT_SNAPSHOT_DEPTH: u32 = 128;
/// Under `--sync auto`, a chain at least this many blocks ahead is synced by snapshot.
pub const DEFAULT_SNAPSHOT_MIN_BLOCKS: u32 = 10_000;

/// Default of `--max-peers`.
pub const DEFAULT_MAX_PEERS: u32 = 64;
/// Default of `--ban-secs`: a day.
pub const DEFAULT_BAN_SECS: u64 = 24 * 60 * 60;

impl NodeConfig {
    /// A node on `spec` in `data_dir`, reachable on loopback only, on ports the system picks
    /// (HTTP and P2P), without mDNS, with the explorer beside the API, not mining, every
    /// limit at its default: for tests and tools that start nodes in-process.
    pub fn loopback(data_dir: PathBuf, spec: ChainSpec) -> NodeConfig {
        NodeConfig {
            data_dir,
            spec,
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            explorer: ExplorerPlacement::WithApi,
            mining: None,
            network: NetworkConfig {
                listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("a valid multiaddr")],
                bootnodes: Vec::new(),
                external_addresses: Vec::new(),
                mdns: false,
                max_peers: DEFAULT_MAX_PEERS,
                ban_secs: DEFAULT_BAN_SECS,
                block_relay: BlockRelay::Compact,
                snapshot: SyncMode::Auto.snapshot_config(DEFAULT_SNAPSHOT_DEPTH),
            },
            mempool: MempoolConfig::default(),
            allow_hosts: Vec::new(),
            min_free_disk_bytes: disk::DEFAULT_RESERVE_BYTES,
        }
    }
}

/// `--mine` options.
#[derive(Clone, Debug)]
pub struct MiningConfig {
    /// Mining threads.
    pub threads: usize,
    /// Who the blocks pay.
    pub reward_address: Address,
}
