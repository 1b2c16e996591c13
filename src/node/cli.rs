//! The `cairn` command line: argument types (clap) and what each command does. `main.rs`
//! parses and calls [`run`]; errors surface here as `anyhow` with context.
use crate::core::consensus::genesis::genesis_hash;
use crate::core::consensus::spec::BUILTIN_SPECS;
use crate::core::consensus::ChainSpec;
use crate::core::mempool::MempoolConfig;
use crate::core::primitives::Address;
use crate::core::views::ErrorView;
use crate::node::api::peers::{AdminDone, ConnectBody, PeerBody};
use crate::node::api::views::PeersView;
use crate::node::api::views::{BlockView, TipView};
use crate::node::chain::verify_best_chain;
use crate::node::cookie::{AdminToken, COOKIE_FILE};
use crate::node::net::{BlockRelay, Multiaddr};
use crate::node::store::Store;
use crate::node::SyncMode;
use crate::node::{ExplorerPlacement, MiningConfig, NetworkConfig, NodeConfig};
use anyhow::{anyhow, bail, Context};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The smallest mempool `--mempool-max-bytes` allows: room for a few transfers.
const MIN_MEMPOOL_BYTES: usize = 1024;

/// Cairn: a permissionless proof-of-work blockchain node.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, about, long_about = None)]
pub struct Cli {
    /// Log filter, e.g. `info`, `debug` or `cairn=debug` (also RUST_LOG).
    #[arg(long, global = true, default_value = "info", env = "RUST_LOG")]
    pub log: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node (mining with --mine).
    Node(NodeArgs),
    /// Show, check or create chain specs.
    #[command(subcommand)]
    ChainSpec(ChainSpecCommand),
    /// Show the tip of a running node's best chain.
    Tip(QueryArgs),
    /// Show a block of a running node by height or hash.
    Block {
        /// A height on the best chain, or a block hash (64 hex digits).
        id: String,
        /// Where the node is.
        #[command(flatten)]
        query: QueryArgs,
    },
    /// Check a stopped node's stored chain: replay every block from genesis and compare the
    /// resulting state with what is stored.
    Verify(ChainArgs),
    /// List a running node's peers and bans, or connect, disconnect, ban and unban peers.
    Peers(PeersArgs),
}

/// `cairn peers` options.
#[derive(Debug, Args)]
pub struct PeersArgs {
    /// What to do [default: list peers and bans].
    #[command(subcommand)]
    pub action: Option<PeersAction>,
    /// The node's HTTP API.
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://127.0.0.1:7371",
        global = true
    )]
    pub node: String,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// The node's admin cookie [default: <data-dir>/.cookie].
    #[arg(long, value_name = "FILE", global = true)]
    pub cookie: Option<PathBuf>,
    /// The node's data directory, where its cookie is [default: ~/.cairn/<chain id>].
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// The node's chain (names the default data directory).
    #[arg(long, value_name = "SPEC", default_value = "dev", global = true)]
    pub chain: String,
}

/// Admin actions on peers (they need the node's admin cookie).
#[derive(Debug, Subcommand)]
pub enum PeersAction {
    /// Dial a peer.
    Add {
        /// Its multiaddr, e.g. /ip4/192.168.1.5/tcp/7370/p2p/12D3KooW...
        address: String,
    },
    /// Close the connections to a peer.
    Remove {
        /// Its peer id.
        peer: String,
    },
    /// Disconnect a peer and refuse it for the ban time (kept across restarts).
    Ban {
        /// Its peer id.
        peer: String,
    },
    /// Lift a ban.
    Unban {
        /// Its peer id.
        peer: String,
    },
}

/// Which chain and where its data lives.
#[derive(Debug, Args)]
pub struct ChainArgs {
    /// Data directory [default: ~/.cairn/<chain id>].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Chain spec: a TOML file, or a built-in name (dev, testnet).
    #[arg(long, value_name = "SPEC", default_value = "dev")]
    pub chain: String,
}

/// `cairn node` options.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Chain and data directory.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// Address of the HTTP API (port 0 picks a free port, written to <data-dir>/api.addr).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7371")]
    pub http: SocketAddr,
    /// Also answer HTTP requests whose Host header names HOST (repeatable; any port). The
    /// API answers to localhost, 127.0.0.1, [::1] and the --http address by default, and
    /// refuses other names (a defence against DNS rebinding).
    #[arg(long, value_name = "HOST")]
    pub allow_host: Vec<String>,
    /// Free space (MiB) to keep on the data directory's disk: below it the node stops taking
    /// in and mining blocks and accepting transfers (GET /api/v1/health says so), and goes
    /// on by itself once space is freed. 0 writes until a write fails.
    #[arg(long, value_name = "MIB", default_value_t = crate::node::disk::DEFAULT_RESERVE_BYTES / (1024 * 1024))]
    pub min_free_disk: u64,
    /// Do not serve the block explorer (by default at / of the --http address).
    #[arg(long, conflicts_with = "explorer_addr")]
    pub no_explorer: bool,
    /// Serve the block explorer at / of this address instead of the --http address (port 0
    /// picks a free port, written to <data-dir>/explorer.addr).
    #[arg(long, value_name = "ADDR")]
    pub explorer_addr: Option<SocketAddr>,
    /// Mine blocks.
    #[arg(long)]
    pub mine: bool,
    /// Mining threads [default: the number of CPU cores].
    #[arg(long, value_name = "N", requires = "mine")]
    pub threads: Option<usize>,
    /// Address paid by mined blocks [default on the dev chain: dev account 0].
    #[arg(long, value_name = "ADDR", requires = "mine")]
    pub miner_address: Option<String>,
    /// Where to listen for peers (repeatable) [default: /ip4/0.0.0.0/tcp/<the spec's p2p port, 7370 on dev>].
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<String>,
    /// A peer to connect to at start (repeatable), e.g. /ip4/10.0.0.2/tcp/7370/p2p/12D3KooW...
    #[arg(long, value_name = "MULTIADDR")]
    pub bootnode: Vec<String>,
    /// An address others can reach this node at, if not one it listens on (repeatable).
    #[arg(long, value_name = "MULTIADDR")]
    pub external_address: Vec<String>,
    /// Turn off local-network discovery (mDNS; on by default on the dev chain).
    #[arg(long)]
    pub no_mdns: bool,
    /// Most peer connections.
    #[arg(long, value_name = "N", default_value_t = crate::node::DEFAULT_MAX_PEERS)]
    pub max_peers: u32,
    /// How long a misbehaving peer stays banned, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = crate::node::DEFAULT_BAN_SECS)]
    pub ban_secs: u64,
    /// How this node announces the blocks it mines: `compact` (header and short transfer
    /// ids; peers fetch what they lack) or `full` (whole blocks, for comparison). Either way
    /// it takes both from peers.
    #[arg(long, value_enum, value_name = "FORM", default_value_t = BlockRelay::Compact)]
    pub block_relay: BlockRelay,
    /// How a fresh node syncs: `snapshot` takes every header, then the state of the block
    /// --snapshot-depth below the most-work header tip from peers (each part checked against
    /// that block's state root), then every block after it in full; `full` validates every
    /// block from genesis; `auto` takes a snapshot when the chain is at least 10,000 blocks
    /// long.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = SyncMode::Auto)]
    pub sync: SyncMode,
    /// How deep below the most-work header tip a snapshot's block is.
    #[arg(long, value_name = "BLOCKS", default_value_t = crate::node::DEFAULT_SNAPSHOT_DEPTH)]
    pub snapshot_depth: u32,
    /// The mempool's fee floor, in base units per byte of a transfer.
    #[arg(long, value_name = "UNITS", default_value_t = MempoolConfig::default().min_fee_rate)]
    pub min_fee_rate: u64,
    /// The mempool's size limit, in bytes of encoded transfers (the lowest fee rates are
    /// evicted beyond it).
    #[arg(long, value_name = "BYTES", default_value_t = MempoolConfig::default().max_bytes)]
    pub mempool_max_bytes: usize,
}

/// Where a running node's API is.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The node's HTTP API.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:7371")]
    pub node: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `cairn chain-spec` subcommands.
#[derive(Debug, Subcommand)]
pub enum ChainSpecCommand {
    /// Print a spec as TOML, with its genesis hash.
    Show {
        /// A spec file or built-in name.
        #[arg(default_value = "dev")]
        spec: String,
    },
    /// Check a spec file and print its genesis hash.
    Check {
        /// The spec file.
        file: PathBuf,
    },
    /// Write a new spec, based on a built-in one, with a fresh genesis.
    Create {
        /// Human-readable name of the new chain.
        #[arg(long)]
        name: String,
        /// Short id (used for data directories).
        #[arg(long)]
        id: String,
        /// Numeric chain id transfers carry.
        #[arg(long)]
        chain_id: u32,
        /// Spec to start from.
        #[arg(long, default_value = "dev")]
        base: String,
        /// Genesis time, Unix seconds [default: the base spec's].
        #[arg(long)]
        genesis_time: Option<u32>,
        /// Genesis message.
        #[arg(long)]
        message: Option<String>,
        /// Where to write it.
        #[arg(long, short)]
        out: PathBuf,
    },
}

/// Loads a spec from a file path or a built-in name.
pub fn load_spec(name_or_path: &str) -> anyhow::Result<ChainSpec> {
    let path = Path::new(name_or_path);
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read chain spec {}", path.display()))?;
        return ChainSpec::from_toml(&text)
            .with_context(|| format!("chain spec {} is invalid", path.display()));
    }
    if BUILTIN_SPECS.contains(&name_or_path) {
        return Ok(ChainSpec::builtin(name_or_path)?);
    }
    bail!(
        "chain spec {name_or_path:?} is neither a file nor a built-in spec ({})",
        BUILTIN_SPECS.join(", ")
    )
}

fn data_dir(args: &ChainArgs, spec: &ChainSpec) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &args.data_dir {
        return Ok(dir.clone());
    }
    let home =
        std::env::var_os("HOME").ok_or_else(|| anyhow!("HOME is not set: give --data-dir"))?;
    Ok(PathBuf::from(home).join(".cairn").join(&spec.file.id))
}

fn init_logging(filter: &str) {
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::util::SubscriberInitExt::try_init(log_dispatch(
        filter,
        std::io::stderr,
        ansi,
    ));
}

/// The node's log format (`--log FILTER`, an invalid filter meaning `info`), written to
/// `writer`: the CLI's global subscriber, and each in-process node's own in tests.
pub fn log_dispatch<W>(filter: &str, writer: W, ansi: bool) -> tracing::Dispatch
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .with_ansi(ansi)
            .with_target(false)
            .finish(),
    )
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    restore_default_sigpipe();
    init_logging(&cli.log);
    match cli.command {
        Command::Node(args) => run_node(args),
        Command::ChainSpec(command) => run_chain_spec(command),
        Command::Tip(query) => {
            let tip = get_json::<TipView>(&query.node, "/api/v1/tip");
            if query.json {
                // Exactly `GET /api/v1/tip`; the health is `GET /api/v1/health`.
                println!("{}", serde_json::to_string_pretty(&tip?)?);
                return Ok(());
            }
            // A node too old to have a health endpoint still shows its tip; a node whose
            // store is closed (after a write failed) cannot show its tip but still says why.
            let health = get_health(&query.node).ok();
            if let Ok(tip) = &tip {
                println!("chain       {}", tip.chain);
                println!("height      {}", tip.height);
                println!("hash        {}", tip.hash);
                println!("time        {}", tip.time);
                println!("bits        {}", tip.bits);
                println!("state root  {}", tip.state_root);
                println!("chain work  {}", tip.chain_work);
            }
            match &health {
                Some(h) if h.writable => println!("health      ok"),
                Some(h) => {
                    println!(
                        "health      DEGRADED: {}",
                        h.problem.as_deref().unwrap_or("the store cannot write")
                    );
                    println!("durable     up to height {}", h.height);
                }
                None => {}
            }
            tip.map(drop)
        }
        Command::Block { id, query } => {
            let block: BlockView = get_json(&query.node, &format!("/api/v1/blocks/{id}"))?;
            if query.json {
                println!("{}", serde_json::to_string_pretty(&block)?);
            } else {
                print_block(&block);
            }
            Ok(())
        }
        Command::Peers(args) => run_peers(args),
        Command::Verify(args) => {
            let spec = load_spec(&args.chain)?;
            let dir = data_dir(&args, &spec)?;
            if !dir.join("chain").is_dir() {
                bail!("no chain store in {}: nothing to verify", dir.display());
            }
            let store = Store::open(&dir.join("chain")).with_context(|| {
                format!("cannot open {} (is a node running on it?)", dir.display())
            })?;
            let report = verify_best_chain(&store, &spec, |height, of| {
                tracing::info!("verified {height} of {of} blocks");
            })
            .context("the stored chain failed verification")?;
            match report.snapshot_height {
                None => println!(
                    "ok: {} blocks from genesis to {} verified, {} accounts match the replay",
                    report.height, report.tip, report.accounts
                ),
                Some(base) => println!(
                    "ok: bootstrapped by snapshot at height {base}: headers from genesis to it verified, its state read in full, and {} blocks after it to {} verified; {} accounts match the replay",
                    report.height - base,
                    report.tip,
                    report.accounts
                ),
            }
            Ok(())
        }
    }
}

fn run_node(args: NodeArgs) -> anyhow::Result<()> {
    let node = crate::node::launch(node_config(args)?)?;
    node.block_on(wait_for_signal());
    tracing::info!("shutting down");
    node.stop()
}

/// What `cairn node ARGS` would run: the node and its log filter.
pub struct NodeCommandLine {
    /// The node.
    pub config: NodeConfig,
    /// `--log` (or `RUST_LOG`).
    pub log_filter: String,
}

/// Parses the arguments after `cairn node` as the binary does: tests and tools launch
/// in-process nodes with the arguments they would give the binary.
pub fn parse_node_command_line<I, S>(args: I) -> anyhow::Result<NodeCommandLine>
where
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString> + Clone,
{
    let command_line = ["cairn".into(), "node".into()]
        .into_iter()
        .chain(args.into_iter().map(Into::into));
    let cli = Cli::try_parse_from(command_line)?;
    match cli.command {
        Command::Node(args) => Ok(NodeCommandLine {
            config: node_config(args)?,
            log_filter: cli.log,
        }),
        other => bail!("not a `cairn node` command line: {other:?}"),
    }
}

/// Checks `cairn node` options and turns them into the node's configuration.
pub fn node_config(args: NodeArgs) -> anyhow::Result<NodeConfig> {
    let spec = load_spec(&args.chain.chain)?;
    let data_dir = data_dir(&args.chain, &spec)?;
    let mining = if args.mine {
        let reward_address = match &args.miner_address {
            Some(text) => Address::from_bech32(text, spec.hrp()).with_context(|| {
                format!("--miner-address {text} is not an address of this chain")
            })?,
            None => spec.default_miner_address().ok_or_else(|| {
                anyhow!("--mine on chain {:?} needs --miner-address", spec.file.id)
            })?,
        };
        let threads = args.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        if threads == 0 {
            bail!("--threads must be at least 1");
        }
        Some(MiningConfig {
            threads,
            reward_address,
        })
    } else {
        None
    };
    let network = network_config(&args, &spec)?;
    if args.mempool_max_bytes < MIN_MEMPOOL_BYTES {
        bail!("--mempool-max-bytes must be at least {MIN_MEMPOOL_BYTES} (a few transfers)");
    }
    Ok(NodeConfig {
        data_dir,
        spec,
        http_addr: args.http,
        explorer: match (args.no_explorer, args.explorer_addr) {
            (true, _) => ExplorerPlacement::Off,
            (false, Some(address)) => ExplorerPlacement::At(address),
            (false, None) => ExplorerPlacement::WithApi,
        },
        mining,
        network,
        mempool: MempoolConfig {
            min_fee_rate: args.min_fee_rate,
            max_bytes: args.mempool_max_bytes,
            ..MempoolConfig::default()
        },
        allow_hosts: args.allow_host,
        min_free_disk_bytes: args.min_free_disk.saturating_mul(1024 * 1024),
    })
}

fn parse_multiaddrs(flag: &str, texts: &[String]) -> anyhow::Result<Vec<Multiaddr>> {
    texts
        .iter()
        .map(|text| {
            text.trim().parse::<Multiaddr>().map_err(|e| {
                anyhow!("{flag} {text:?} is not a multiaddr ({e}); e.g. /ip4/127.0.0.1/tcp/7370")
            })
        })
        .collect()
}

fn network_config(args: &NodeArgs, spec: &ChainSpec) -> anyhow::Result<NetworkConfig> {
    let mut listen = parse_multiaddrs("--listen", &args.listen)?;
    if listen.is_empty() {
        listen.push(
            format!("/ip4/0.0.0.0/tcp/{}", spec.file.network.p2p_port)
                .parse()
                .context("the spec's p2p port makes no multiaddr")?,
        );
    }
    let mut bootnodes =
        parse_multiaddrs("a bootnode of the chain spec", &spec.file.network.bootnodes)?;
    bootnodes.extend(parse_multiaddrs("--bootnode", &args.bootnode)?);
    if args.max_peers == 0 {
        bail!("--max-peers must be at least 1");
    }
    Ok(NetworkConfig {
        listen,
        bootnodes,
        external_addresses: parse_multiaddrs("--external-address", &args.external_address)?,
        mdns: spec.file.network.mdns && !args.no_mdns,
        max_peers: args.max_peers,
        ban_secs: args.ban_secs,
        block_relay: args.block_relay,
        snapshot: args.sync.snapshot_config(args.snapshot_depth),
    })
}

fn run_chain_spec(command: ChainSpecCommand) -> anyhow::Result<()> {
    match command {
        ChainSpecCommand::Show { spec } => {
            let spec = load_spec(&spec)?;
            println!("# genesis hash: {}", genesis_hash(&spec));
            print!("{}", spec.to_toml());
        }
        ChainSpecCommand::Check { file } => {
            if !file.is_file() {
                let name = file.display().to_string();
                if BUILTIN_SPECS.contains(&name.as_str()) {
                    bail!("{name:?} is a built-in spec, checked when it is built: `chain-spec check` takes a file (see `chain-spec show {name}`)");
                }
                bail!("chain spec {name:?} is neither a file nor a built-in spec: `chain-spec check` takes a file");
            }
            let spec = load_spec(
                file.to_str()
                    .ok_or_else(|| anyhow!("spec path is not UTF-8"))?,
            )?;
            println!(
                "ok: {} ({}), genesis hash {}",
                spec.file.name,
                spec.file.id,
                genesis_hash(&spec)
            );
        }
        ChainSpecCommand::Create {
            name,
            id,
            chain_id,
            base,
            genesis_time,
            message,
            out,
        } => {
            let mut file = load_spec(&base)?.file;
            file.name = name;
            file.id = id;
            file.chain_id = chain_id;
            if let Some(time) = genesis_time {
                file.genesis.time = time;
            }
            if let Some(message) = message {
                file.genesis.message = message;
            }
            let spec = ChainSpec::from_file(file).context("the new spec is invalid")?;
            if out.exists() {
                bail!("{} already exists: not overwriting it", out.display());
            }
            std::fs::write(&out, spec.to_toml())
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "wrote {}: genesis hash {}",
                out.display(),
                genesis_hash(&spec)
            );
        }
    }
    Ok(())
}

fn run_peers(args: PeersArgs) -> anyhow::Result<()> {
    let Some(action) = args.action else {
        let view: PeersView = get_json(&args.node, "/api/v1/peers")?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&view)?);
            return Ok(());
        }
        println!("peer id     {}", view.peer_id);
        for address in &view.listen_addresses {
            println!("listening   {address}");
        }
        println!("peers       {}", view.peers.len());
        for peer in &view.peers {
            println!(
                "  {}  {:8} {}  height {}  score {}  {}",
                peer.peer_id,
                peer.direction,
                peer.address,
                peer.height.map_or("?".to_string(), |h| h.to_string()),
                peer.score,
                peer.agent.as_deref().unwrap_or("")
            );
        }
        println!("bans        {}", view.bans.len());
        for ban in &view.bans {
            println!(
                "  {}  until {} (unix)  {}",
                ban.peer_id, ban.until, ban.reason
            );
        }
        return Ok(());
    };
    let cookie = match &args.cookie {
        Some(path) => path.clone(),
        None => {
            let spec = load_spec(&args.chain)?;
            let chain_args = ChainArgs {
                data_dir: args.data_dir.clone(),
                chain: args.chain.clone(),
            };
            data_dir(&chain_args, &spec)?.join(COOKIE_FILE)
        }
    };
    let token = AdminToken::read(&cookie).with_context(|| {
        "admin calls need the running node's cookie: give --data-dir (or --cookie)".to_string()
    })?;
    let (path, body) = match action {
        PeersAction::Add { address } => ("connect", serde_json::to_value(ConnectBody { address })?),
        PeersAction::Remove { peer } => ("disconnect", serde_json::to_value(PeerBody { peer })?),
        PeersAction::Ban { peer } => ("ban", serde_json::to_value(PeerBody { peer })?),
        PeersAction::Unban { peer } => ("unban", serde_json::to_value(PeerBody { peer })?),
    };
    let done: AdminDone = post_json(
        &args.node,
        &format!("/api/v1/admin/peers/{path}"),
        &token,
        &body,
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&done)?);
    } else {
        println!("ok: {}", done.result);
    }
    Ok(())
}

fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .build()
        .into()
}

fn post_json<T: serde::de::DeserializeOwned>(
    node: &str,
    path: &str,
    token: &AdminToken,
    body: &serde_json::Value,
) -> anyhow::Result<T> {
    let url = format!("{}{}", node.trim_end_matches('/'), path);
    let response = http_agent()
        .post(&url)
        .header("Authorization", &format!("Bearer {}", token.as_str()))
        .send_json(body)
        .with_context(|| format!("cannot reach the node at {node} (is it running? see --node)"))?;
    read_json_response(node, &url, response)
}

fn get_json<T: serde::de::DeserializeOwned>(node: &str, path: &str) -> anyhow::Result<T> {
    let url = format!("{}{}", node.trim_end_matches('/'), path);
    let response = http_agent()
        .get(&url)
        .call()
        .with_context(|| format!("cannot reach the node at {node} (is it running? see --node)"))?;
    read_json_response(node, &url, response)
}

/// `GET /api/v1/health`, whose body is the same whether the node is healthy (`200`) or not
/// (`503`).
fn get_health(node: &str) -> anyhow::Result<crate::core::views::HealthView> {
    let url = format!("{}/api/v1/health", node.trim_end_matches('/'));
    let mut response = http_agent()
        .get(&url)
        .call()
        .with_context(|| format!("cannot reach the node at {node}"))?;
    response
        .body_mut()
        .read_json()
        .with_context(|| format!("the node at {node} has no health endpoint"))
}

fn read_json_response<T: serde::de::DeserializeOwned>(
    node: &str,
    url: &str,
    mut response: ureq::http::Response<ureq::Body>,
) -> anyhow::Result<T> {
    let status = response.status();
    let body: serde_json::Value = response
        .body_mut()
        .read_json()
        .with_context(|| format!("the node at {node} sent a response that is not JSON"))?;
    if !status.is_success() {
        match serde_json::from_value::<ErrorView>(body) {
            Ok(ErrorView { error }) => bail!("node answered {status}: {}", error.message),
            Err(_) => bail!("node answered {status} without an error body"),
        }
    }
    serde_json::from_value(body).with_context(|| format!("unexpected JSON from {url}"))
}

fn print_block(block: &BlockView) {
    println!("block       {}", block.hash);
    println!("height      {}", block.height);
    println!("parent      {}", block.prev_hash);
    println!("time        {}", block.time);
    println!("bits        {}", block.bits);
    println!("nonce       {}", block.nonce);
    println!("tx root     {}", block.tx_root);
    println!("state root  {}", block.state_root);
    println!("chain work  {}", block.chain_work);
    println!(
        "best chain  {} ({} confirmations)",
        block.best_chain, block.confirmations
    );
    println!(
        "reward      {} units to {}",
        block.reward, block.reward_address
    );
    println!("size        {} bytes", block.size);
    println!("transfers   {}", block.transfers.len());
    for transfer in &block.transfers {
        println!(
            "  {}  {} -> {}  amount {}  fee {}",
            transfer.txid, transfer.from, transfer.to, transfer.amount, transfer.fee
        );
    }
}

/// Like other Unix tools, die quietly when the reader of our output goes away
/// (`cairn chain-spec show | head -1`) instead of panicking on a broken pipe.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to the default at start-up, before any threads
    // exist, has no memory-safety preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
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
