//! `cairn-wallet`: parse the command line, run the command (`cairn_wallet::app`), print
//! its report as text or JSON. Errors print as `error: …` on stderr, with exit status 1.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use cairn_wallet::app::{
    default_wallet_dir, wait_options, App, SendArgs, SendEvent, DEFAULT_NODE_URL,
};
use cairn_wallet::input::{read_mnemonic, PassphraseSource};
use cairn_wallet::send::SendRequest;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

/// A wallet for Cairn: keys from a BIP39 mnemonic, kept in a passphrase-encrypted file;
/// balances, history and sending through a node's HTTP API.
///
/// The passphrase is read from --passphrase-file, else from the environment variable
/// CAIRN_WALLET_PASSPHRASE, else asked for on the terminal; never from the command line.
#[derive(Parser, Debug)]
#[command(name = "cairn-wallet", version, max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug)]
struct Common {
    /// The wallet directory, holding wallet.json [default: $HOME/.cairn-wallet]
    #[arg(long, global = true, env = "CAIRN_WALLET_DIR", value_name = "DIR")]
    wallet_dir: Option<PathBuf>,
    /// The node's HTTP API. Give it more than once to check balances with several nodes:
    /// the wallet follows the heaviest valid header chain among them (the first node is the
    /// one sends and history go to)
    #[arg(long, global = true, env = "CAIRN_NODE", value_name = "URL", default_value = DEFAULT_NODE_URL, value_delimiter = ',')]
    node: Vec<String>,
    /// The chain spec (TOML) balances are verified against: its genesis, difficulty and
    /// rules [default: the embedded dev chain]
    #[arg(long, global = true, env = "CAIRN_CHAIN_SPEC", value_name = "FILE")]
    chain_spec: Option<PathBuf>,
    /// Print machine-readable JSON on stdout instead of text
    #[arg(long, global = true)]
    json: bool,
    /// Read the passphrase from this file (its content, less one trailing newline)
    #[arg(long, global = true, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a new wallet: a fresh 24-word mnemonic, shown once, encrypted with a passphrase
    Init {
        /// Replace an existing wallet (its coins are lost unless you have its mnemonic)
        #[arg(long)]
        force: bool,
    },
    /// Recreate a wallet from its mnemonic (read from stdin, or asked for on the terminal)
    Restore {
        /// How many addresses to derive (indexes 0 to N-1)
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        addresses: u32,
        /// Replace an existing wallet (its coins are lost unless you have its mnemonic)
        #[arg(long)]
        force: bool,
    },
    /// Create a wallet holding the dev chain's 10 funded test accounts (public keys: dev only)
    ImportDev {
        /// Replace an existing wallet (its coins are lost unless you have its mnemonic)
        #[arg(long)]
        force: bool,
    },
    /// Show the current receive address, or derive the next one
    Address {
        /// Derive the next address, save it and make it the receive address (needs the
        /// passphrase)
        #[arg(long)]
        new: bool,
    },
    /// List the wallet's addresses with their index and path (and balances if the node answers)
    List,
    /// Show the balance of each address and the total, each proven against a block header
    /// of the heaviest valid chain among the nodes, with pending outgoing transfers
    Balance {
        /// How deep under the tip the block balances are proven at is (1: the tip)
        #[arg(long, value_name = "N", default_value_t = cairn_wallet::verify::DEFAULT_CONFIRMATIONS, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        confirmations: u32,
    },
    /// Show the transfers of the wallet's addresses (or of one address), newest first
    History {
        /// Only this address: a bech32m address or a wallet address index
        #[arg(long, value_name = "A")]
        address: Option<String>,
        /// At most this many entries
        #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
    },
    /// Send coins: fills nonce and fee, checks the balance, signs, submits
    Send(SendCommand),
    /// Show the public data of an address: address, index, path, x-only public key (no secrets)
    Export {
        /// The address index [default: the current receive address]
        #[arg(long, value_name = "I")]
        index: Option<u32>,
    },
}

#[derive(Args, Debug)]
struct SendCommand {
    /// The recipient's address (bech32m, with the node's chain prefix)
    #[arg(long, value_name = "ADDR")]
    to: String,
    /// The amount in coins, e.g. 12.5
    #[arg(long, value_name = "X")]
    amount: String,
    /// The fee in coins [default: the node's suggested fee rate × the transfer's size]
    #[arg(long, value_name = "F")]
    fee: Option<String>,
    /// Send from this address index [default: 0]
    #[arg(long, value_name = "I")]
    from_index: Option<u32>,
    /// A memo carried by the transfer (UTF-8, at most 80 bytes); public on the chain
    #[arg(long, value_name = "TEXT")]
    memo: Option<String>,
    /// Wait until the transfer has --confirmations confirmations, printing progress
    #[arg(long)]
    wait: bool,
    /// Confirmations to wait for with --wait (its block counts as one)
    #[arg(long, value_name = "N", default_value_t = 1, requires = "wait",
          value_parser = clap::value_parser!(u64).range(1..))]
    confirmations: u64,
    /// Give up waiting after this many seconds (the transfer may still confirm later)
    #[arg(long, value_name = "S", default_value_t = 300, requires = "wait")]
    timeout: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.common.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if json {
                let body = serde_json::json!({ "error": format!("{error:#}") });
                println!("{body}");
            }
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a report: JSON on stdout, or its text on stdout and its notes on stderr.
fn print<T: Serialize + std::fmt::Display>(
    json: bool,
    report: &T,
    notes: &[String],
) -> anyhow::Result<()> {
    for note in notes {
        eprintln!("note: {note}");
    }
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let common = cli.common;
    let wallet_dir = match common.wallet_dir {
        Some(dir) => dir,
        None => default_wallet_dir()
            .context("no wallet directory: HOME is not set; pass --wallet-dir DIR")?,
    };
    let mut nodes = common.node.into_iter();
    let mut app = App::new(
        wallet_dir,
        nodes.next().unwrap_or_else(|| DEFAULT_NODE_URL.to_string()),
        PassphraseSource::new(common.passphrase_file),
    );
    app.more_nodes = nodes.collect();
    app.chain_spec = common.chain_spec;
    let json = common.json;
    match cli.command {
        Command::Init { force } => {
            let report = app.init(force)?;
            print(json, &report, &report.notes)?;
        }
        Command::Restore { addresses, force } => {
            let phrase = read_mnemonic()?;
            let report = app.restore(&phrase, addresses, force)?;
            print(json, &report, &report.notes)?;
        }
        Command::ImportDev { force } => {
            let report = app.import_dev(force)?;
            print(json, &report, &report.notes)?;
        }
        Command::Address { new } => {
            let report = app.address(new)?;
            print(json, &report, &report.notes)?;
        }
        Command::List => {
            let report = app.list()?;
            print(json, &report, &report.notes)?;
        }
        Command::Balance { confirmations } => {
            app.confirmations = confirmations;
            let report = app.balance()?;
            print(json, &report, &report.notes)?;
        }
        Command::History { address, limit } => {
            let report = app.history(address.as_deref(), limit)?;
            print(json, &report, &report.notes)?;
        }
        Command::Send(send) => {
            let args = SendArgs {
                request: SendRequest {
                    to: send.to,
                    amount: send.amount,
                    fee: send.fee,
                    memo: send.memo.unwrap_or_default().into_bytes(),
                },
                from_index: send.from_index,
                wait: send
                    .wait
                    .then(|| wait_options(send.confirmations, send.timeout)),
            };
            // Progress goes to stderr, so stdout stays the report (or its JSON).
            let report = app.send(&args, |event| match event {
                SendEvent::Submitted { txid } => eprintln!("submitted {txid}"),
                SendEvent::Progress(progress) => eprintln!("{progress}"),
            })?;
            print(json, &report, &report.notes)?;
        }
        Command::Export { index } => {
            let report = app.export(index)?;
            print(json, &report, &report.notes)?;
        }
    }
    Ok(())
}
