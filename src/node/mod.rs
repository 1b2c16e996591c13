//! The async shell around `core`: storage (sled), the HTTP API (axum on tokio), mining
//! threads, the event loop, and the command line. It carries out what `core` decides and
//! never decides validity or chain order itself.
//!
//! ```text
//!   main.rs ─► cli ─► run(NodeConfig)
//!                        ├─ ChainManager (store + core rules) ◄── owned by the driver thread
//!                        ├─ MinerHandle (N threads) ── found blocks ──► driver
//!                        └─ HTTP API (tokio) ── reads the store
//! ```
pub mod api;
pub mod chain;
pub mod cli;
pub mod clock;
pub mod driver;
pub mod miner;
pub mod net;
pub mod store;

use crate::core::consensus::ChainSpec;
use crate::core::primitives::Address;
use anyhow::Context;
use chain::ChainManager;
use driver::{Driver, MiningSetup};
use miner::MinerHandle;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// File in the data directory holding the HTTP API's bound address (useful with port 0).
pub const API_ADDR_FILE: &str = "api.addr";

/// Everything `cairn node` needs.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Where the node keeps its data.
    pub data_dir: PathBuf,
    /// The chain.
    pub spec: ChainSpec,
    /// Where the HTTP API listens.
    pub http_addr: SocketAddr,
    /// Mining setup, if mining.
    pub mining: Option<MiningConfig>,
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
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let chain_dir = config.data_dir.join("chain");
    let chain = ChainManager::open(&chain_dir, config.spec.clone()).with_context(|| {
        format!(
            "cannot open the chain store in {} (is another node using this data directory?)",
            chain_dir.display()
        )
    })?;
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

    let api_state = api::ApiState {
        store: chain.store().clone(),
        spec: Arc::new(config.spec.clone()),
        genesis_hash,
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
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(async move {
        let shutdown = async {
            let _ = http_stopped.await;
        };
        if let Err(e) = axum::serve(listener, api::router(api_state))
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!("HTTP server failed: {e}");
        }
    });

    let (found_tx, found_rx) = std::sync::mpsc::channel();
    let mining = config.mining.as_ref().map(|m| {
        tracing::info!(
            "mining on {} threads, paying {}",
            m.threads,
            m.reward_address
                .to_bech32(config.spec.hrp())
                .unwrap_or_default()
        );
        MiningSetup {
            miner: MinerHandle::spawn(m.threads, found_tx.clone()),
            reward_address: m.reward_address,
            threads: m.threads,
        }
    });
    drop(found_tx);
    let shutdown = Arc::new(AtomicBool::new(false));
    let driver = Driver::new(chain, mining);
    let driver_shutdown = Arc::clone(&shutdown);
    let driver_thread = std::thread::Builder::new()
        .name("driver".into())
        .spawn(move || driver.run(found_rx, driver_shutdown))
        .context("cannot start the driver thread")?;

    runtime.block_on(wait_for_signal());
    tracing::info!("shutting down");
    shutdown.store(true, Ordering::Release);
    let _ = stop_http.send(());
    if driver_thread.join().is_err() {
        anyhow::bail!("the driver thread panicked");
    }
    let _ = runtime.block_on(server);
    tracing::info!("stopped cleanly");
    Ok(())
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
