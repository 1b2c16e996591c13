//! `cairn-loadtest`: whole-process load tools for Cairn, one subject per file, apart from the
//! criterion benches in `benches/`. Each starts real `cairn node` processes on 127.0.0.1
//! through `cairn::node::harness` (the end-to-end tests' harness) and prints what it measured;
//! docs/BENCHMARKS.md records the runs and how to read them.
//!
//! - `api` ([`api`]): admission through `POST /api/v1/transactions` and the read calls'
//!   latency under concurrent clients, on one node.
//! - `net` ([`net`]): block propagation to eight followers, and sync of a fresh node from one
//!   and from three peers.
//!
//! ```text
//! cargo build --release -p cairn -p cairn-loadtest
//! target/release/cairn-loadtest api [admit|read]
//! target/release/cairn-loadtest net [latency|sync]
//! ```
#![allow(clippy::disallowed_methods)]

mod api;
mod machine;
mod net;
mod node;

use anyhow::{ensure, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "cairn-loadtest", version, about)]
struct Cli {
    /// The `cairn` binary to start [default: `cairn` beside this program, as
    /// `cargo build --release -p cairn -p cairn-loadtest` leaves it].
    #[arg(long, global = true, value_name = "PATH")]
    cairn: Option<PathBuf>,
    #[command(subcommand)]
    subject: Subject,
}

#[derive(Subcommand)]
enum Subject {
    /// The HTTP API: admission, then reads under load (knobs: API_BENCH_* in the environment,
    /// see docs/BENCHMARKS.md).
    Api {
        /// Only this part [default: both].
        part: Option<ApiPart>,
    },
    /// The network: block propagation to 8 followers, then sync from 1 and 3 peers (knobs:
    /// NET_BENCH_* and SYNC_* in the environment, see docs/BENCHMARKS.md).
    Net {
        /// Only this part [default: both].
        part: Option<NetPart>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ApiPart {
    /// Admission only (no confirmation, no reads).
    Admit,
    /// Reads; admission is one run at the last client count.
    Read,
}

#[derive(Clone, Copy, ValueEnum)]
enum NetPart {
    /// Block propagation only.
    Latency,
    /// Sync only.
    Sync,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let cairn = match cli.cairn {
        Some(path) => path,
        None => std::env::current_exe()
            .context("cannot find this program's path")?
            .with_file_name("cairn"),
    };
    ensure!(
        cairn.is_file(),
        "no cairn binary at {}: build it (`cargo build --release -p cairn -p cairn-loadtest`) \
         or name one with --cairn",
        cairn.display()
    );
    node::set_cairn_binary(cairn);
    match cli.subject {
        Subject::Api { part } => api::main(match part {
            None => "all",
            Some(ApiPart::Admit) => "admit",
            Some(ApiPart::Read) => "read",
        }),
        Subject::Net { part } => net::main(match part {
            None => "all",
            Some(NetPart::Latency) => "latency",
            Some(NetPart::Sync) => "sync",
        }),
    }
}
