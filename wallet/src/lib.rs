//! Cairn wallet: keys, an encrypted keystore, a node client, and sending coins.
//!
//! The wallet holds the user's keys and talks to a node over its HTTP API (docs/API.md);
//! the node never sees a private key. The binary `cairn-wallet` (`src/main.rs`) only parses
//! arguments and prints: every command is a method of [`app::App`].
//!
//! ```text
//!   mnemonic (BIP39) ── seed ── BIP32 m/44'/7370'/0'/0/i ── key pair i ── address i
//!        │                                                      │
//!        └─ sealed in wallet.json (argon2id + XChaCha20-Poly1305)│
//!                                                               ▼
//!   send:  GET /info, /accounts/{from}, /fees ─> UnsignedTransfer ─> BIP340 sign
//!          ─> POST /transactions ─> GET /transactions/{txid} until confirmed
//! ```
//!
//! Modules: [`keys`] and [`bip32`] derive keys; [`signing`] signs (BIP340, checked against
//! the official vectors); [`keystore`] owns the wallet file; [`client`] the HTTP calls;
//! [`chain`] what the wallet knows of a chain; [`send`] builds, checks and submits
//! transfers; [`input`] reads the passphrase and mnemonic; [`app`] runs the commands and
//! [`report`] is what they answer.
//!
//! Assumptions: one BIP39 mnemonic per wallet, without a BIP39 passphrase; addresses are
//! derived in order from index 0; the node is trusted for balances and nonces (not for
//! keys: the wallet signs locally and checks the recipient's address itself).
pub mod app;
pub mod bip32;
pub mod chain;
pub mod client;
pub mod input;
pub mod keys;
pub mod keystore;
pub mod report;
pub mod send;
pub mod signing;
pub mod verify;

/// Any error of a wallet command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The wallet file.
    #[error(transparent)]
    Keystore(#[from] keystore::KeystoreError),
    /// The node could not be asked, or refused.
    #[error(transparent)]
    Client(#[from] client::ClientError),
    /// Sending failed.
    #[error(transparent)]
    Send(#[from] send::SendError),
    /// No passphrase or mnemonic could be read.
    #[error(transparent)]
    Input(#[from] input::InputError),
    /// A bad mnemonic, or a key that cannot be derived.
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    /// An address given on the command line is not one of this chain.
    #[error(transparent)]
    Address(#[from] cairn::core::primitives::AddressError),
    /// An address index the wallet has not derived.
    #[error(
        "the wallet has no address {index}: it has {count} (0 to {}); derive more with \
         `cairn-wallet address --new`",
        count.saturating_sub(1)
    )]
    NoSuchAddress {
        /// The index asked for.
        index: u32,
        /// How many the wallet has.
        count: usize,
    },
    /// A node's answers did not check (see [`verify`]).
    #[error(transparent)]
    Verify(Box<verify::VerifyError>),
    /// The chain spec given with `--chain-spec` cannot be read.
    #[error("chain spec {path}: {why}")]
    ChainSpec {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
}

impl From<verify::VerifyError> for Error {
    fn from(error: verify::VerifyError) -> Self {
        Error::Verify(Box::new(error))
    }
}
