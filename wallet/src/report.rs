//! What each command answers: a value that prints for people (`Display`) and serializes
//! for machines (`--json`). No I/O; `app` fills them, the binary prints them.
//!
//! Amounts appear in JSON as `{"units": <base units>, "coins": "<decimal>"}` next to the
//! chain's `symbol`, so scripts need not know the decimals; for people they read
//! `12.50000000 dCAIRN`.

use std::fmt;

use cairn::core::primitives::{Amount, Txid};
use serde::{Serialize, Serializer};
use zeroize::Zeroizing;

use crate::chain::ChainParams;
use crate::keystore::AccountEntry;
use crate::send::WaitProgress;

/// An amount, in base units and in coins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CoinAmount {
    /// Base units.
    pub units: u64,
    /// Coins, with all the chain's decimals.
    pub coins: String,
    /// The coin's symbol.
    #[serde(skip)]
    symbol: String,
}

impl CoinAmount {
    /// `amount` on `chain`.
    pub fn new(amount: Amount, chain: &ChainParams) -> Self {
        CoinAmount {
            units: amount.as_units(),
            coins: amount.to_coins_string(chain.decimals),
            symbol: chain.symbol.clone(),
        }
    }

    /// `units` base units on `chain`.
    pub fn from_units(units: u64, chain: &ChainParams) -> Self {
        CoinAmount::new(Amount::from_units(units), chain)
    }
}

impl fmt::Display for CoinAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.coins, self.symbol)
    }
}

/// One of the wallet's addresses: public data only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AddressInfo {
    /// Account index `i`.
    pub index: u32,
    /// `m/44'/7370'/0'/0/i`.
    pub path: String,
    /// bech32m with the chain's prefix.
    pub address: String,
    /// The x-only public key, hex.
    pub xonly: String,
}

impl AddressInfo {
    /// The public data of `account` on `chain`.
    pub fn new(account: &AccountEntry, chain: &ChainParams) -> Self {
        AddressInfo {
            index: account.index,
            path: account.path(),
            address: chain.address_string(&account.address()),
            xonly: hex::encode(account.xonly),
        }
    }
}

fn serialize_secret<S: Serializer>(
    value: &Option<Zeroizing<String>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(secret) => serializer.serialize_some(secret.as_str()),
        None => serializer.serialize_none(),
    }
}

/// `init`, `restore`, `import-dev`: the new wallet.
#[derive(Debug, Serialize)]
pub struct CreatedReport {
    /// The keystore file.
    pub wallet_file: String,
    /// The new mnemonic (`init` only): shown once.
    #[serde(serialize_with = "serialize_secret")]
    pub mnemonic: Option<Zeroizing<String>>,
    /// The chain the addresses are written for.
    pub chain: String,
    /// The derived addresses.
    pub addresses: Vec<AddressInfo>,
    /// Remarks for the user.
    pub notes: Vec<String>,
}

impl fmt::Display for CreatedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(mnemonic) = &self.mnemonic {
            writeln!(
                f,
                "Your wallet's mnemonic follows. Write the words down, in order, on paper, and \
                 keep them safe and private:\nthey are the only way to recover the wallet, and \
                 anyone who sees them can spend its coins. They are not shown again.\n"
            )?;
            // Straight to the output: no copies of the words on the heap.
            for (i, word) in mnemonic.split_whitespace().enumerate() {
                match i % 6 {
                    0 => write!(f, "    {:>2}. {word:<9}", i + 1)?,
                    5 => writeln!(f, " {:>2}. {word}", i + 1)?,
                    _ => write!(f, " {:>2}. {word:<9}", i + 1)?,
                }
            }
            writeln!(f)?;
        }
        writeln!(
            f,
            "wallet      {} (encrypted with your passphrase)",
            self.wallet_file
        )?;
        writeln!(f, "chain       {}", self.chain)?;
        for info in &self.addresses {
            writeln!(f, "address {:<3} {}", info.index, info.address)?;
        }
        Ok(())
    }
}

/// `address`: the receive address (new or current).
#[derive(Debug, Serialize)]
pub struct AddressReport {
    /// The address.
    #[serde(flatten)]
    pub address: AddressInfo,
    /// Whether it was derived just now.
    pub new: bool,
    /// The chain.
    pub chain: String,
    /// Remarks.
    pub notes: Vec<String>,
}

impl fmt::Display for AddressReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.address.address)
    }
}

/// `export`: the public data of one address.
#[derive(Debug, Serialize)]
pub struct ExportReport {
    /// The address.
    #[serde(flatten)]
    pub address: AddressInfo,
    /// The chain.
    pub chain: String,
    /// Remarks.
    pub notes: Vec<String>,
}

impl fmt::Display for ExportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "address  {}", self.address.address)?;
        writeln!(f, "index    {}", self.address.index)?;
        writeln!(f, "path     {}", self.address.path)?;
        writeln!(f, "xonly    {}", self.address.xonly)?;
        writeln!(f, "chain    {}", self.chain)
    }
}

/// An address with its balance, if the node could be asked.
#[derive(Debug, Serialize)]
pub struct ListEntry {
    /// The address.
    #[serde(flatten)]
    pub address: AddressInfo,
    /// Whether it is the current receive address.
    pub receive: bool,
    /// Its balance on the best chain.
    pub balance: Option<CoinAmount>,
}

/// `list`.
#[derive(Debug, Serialize)]
pub struct ListReport {
    /// The chain.
    pub chain: String,
    /// The coin.
    pub symbol: String,
    /// Whether balances were read from a node.
    pub node_reachable: bool,
    /// The addresses, by index.
    pub addresses: Vec<ListEntry>,
    /// Remarks.
    pub notes: Vec<String>,
}

impl fmt::Display for ListReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for entry in &self.addresses {
            let balance = entry
                .balance
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_else(|| "-".to_string());
            writeln!(
                f,
                "{:>3}  {:<20}  {}  {:>28}{}",
                entry.address.index,
                entry.address.path,
                entry.address.address,
                balance,
                if entry.receive { "  (receive)" } else { "" }
            )?;
        }
        Ok(())
    }
}

/// One address's balance.
#[derive(Debug, Serialize)]
pub struct BalanceEntry {
    /// Account index.
    pub index: u32,
    /// The address.
    pub address: String,
    /// Balance on the best chain.
    pub balance: CoinAmount,
    /// Amount + fee of its transfers in the mempool.
    pub pending_outgoing: CoinAmount,
    /// How many transfers from it are pending.
    pub pending_count: u64,
    /// `balance − pending_outgoing`: what it can still send.
    pub available: CoinAmount,
}

/// `balance`.
#[derive(Debug, Serialize)]
pub struct BalanceReport {
    /// The chain.
    pub chain: String,
    /// The coin.
    pub symbol: String,
    /// The tip's height the balances are at.
    pub height: u64,
    /// Per address.
    pub addresses: Vec<BalanceEntry>,
    /// Sum of the balances.
    pub total: CoinAmount,
    /// Sum of what can be sent.
    pub total_available: CoinAmount,
    /// What the balances were proven against.
    pub verified: VerifiedAt,
    /// Remarks.
    pub notes: Vec<String>,
}

/// The block balances were proven at, on the header chain the wallet checked itself.
#[derive(Debug, Serialize)]
pub struct VerifiedAt {
    /// Its height.
    pub height: u32,
    /// Its hash.
    pub hash: String,
    /// Its confirmations on the followed chain.
    pub confirmations: u32,
    /// The followed chain's tip height.
    pub tip_height: u32,
    /// The node whose header chain is followed.
    pub followed_node: String,
    /// How many nodes were asked.
    pub nodes: usize,
}

impl fmt::Display for BalanceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for entry in &self.addresses {
            write!(
                f,
                "{:>3}  {}  {:>28}",
                entry.index,
                entry.address,
                entry.balance.to_string()
            )?;
            if entry.pending_count > 0 {
                write!(
                    f,
                    "  ({} pending out in {} transfer{}; available {})",
                    entry.pending_outgoing,
                    entry.pending_count,
                    if entry.pending_count == 1 { "" } else { "s" },
                    entry.available
                )?;
            }
            writeln!(f)?;
        }
        writeln!(
            f,
            "total {} (available {})",
            self.total, self.total_available
        )?;
        writeln!(
            f,
            "proven at height {} ({}, {} confirmation{}) of {}, on the header chain of {} \
             checked by this wallet; pending amounts are the node's word",
            self.verified.height,
            self.verified.hash,
            self.verified.confirmations,
            if self.verified.confirmations == 1 {
                ""
            } else {
                "s"
            },
            self.chain,
            self.verified.followed_node
        )
    }
}

/// One line of history.
#[derive(Debug, Serialize)]
pub struct HistoryEntry {
    /// The wallet address (or the one asked for) this entry is about.
    pub address: String,
    /// `sent`, `received`, `self`, `reward` or `pending`.
    pub kind: String,
    /// The transfer (none for a reward), hex.
    pub txid: Option<String>,
    /// Block height (none while pending).
    pub height: Option<u64>,
    /// Confirmations (0 while pending).
    pub confirmations: u64,
    /// Block time, Unix seconds.
    pub time: Option<u64>,
    /// Sender (none for a reward).
    pub from: Option<String>,
    /// Recipient.
    pub to: String,
    /// Amount.
    pub amount: CoinAmount,
    /// Fee.
    pub fee: CoinAmount,
    /// Memo text.
    pub memo: String,
}

/// `history`.
#[derive(Debug, Serialize)]
pub struct HistoryReport {
    /// The chain.
    pub chain: String,
    /// Pending transfers first, then confirmed entries, newest first.
    pub entries: Vec<HistoryEntry>,
    /// Remarks.
    pub notes: Vec<String>,
}

impl fmt::Display for HistoryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entries.is_empty() {
            return writeln!(f, "no transfers yet");
        }
        for entry in &self.entries {
            let place = match entry.height {
                Some(height) => format!("block {height} ({} conf)", entry.confirmations),
                None => "pending".to_string(),
            };
            let other = match entry.kind.as_str() {
                "sent" => format!("to {}", entry.to),
                "received" | "pending" => format!(
                    "from {} to {}",
                    entry.from.as_deref().unwrap_or("-"),
                    entry.to
                ),
                "reward" => "block reward".to_string(),
                _ => format!("to {}", entry.to),
            };
            write!(
                f,
                "{:<22} {:<8} {:>26}  {}",
                place,
                entry.kind,
                entry.amount.to_string(),
                other
            )?;
            if entry.fee.units > 0 {
                write!(f, "  fee {}", entry.fee)?;
            }
            if let Some(txid) = &entry.txid {
                write!(f, "  tx {txid}")?;
            }
            if !entry.memo.is_empty() {
                write!(f, "  memo {:?}", entry.memo)?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// `send`.
#[derive(Debug, Serialize)]
pub struct SendReport {
    /// The transfer's id.
    pub txid: Txid,
    /// Sender.
    pub from: String,
    /// Sender's account index.
    pub from_index: u32,
    /// Recipient.
    pub to: String,
    /// Amount.
    pub amount: CoinAmount,
    /// Fee.
    pub fee: CoinAmount,
    /// The fee rate used when the fee was not given (base units per byte).
    pub fee_rate: Option<u64>,
    /// Encoded size in bytes.
    pub size: usize,
    /// The nonce it carries.
    pub nonce: u64,
    /// The transfer it replaced by fee, if any, hex.
    pub replaced: Option<String>,
    /// Where it was last seen, with `--wait`.
    pub last_seen: Option<WaitProgress>,
    /// Remarks.
    pub notes: Vec<String>,
}

impl fmt::Display for SendReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "sent {} from {} (address {}) to {}",
            self.amount, self.from, self.from_index, self.to
        )?;
        write!(f, "fee {} for {} bytes", self.fee, self.size)?;
        if let Some(rate) = self.fee_rate {
            write!(f, " ({rate} per byte, the node's suggestion)")?;
        }
        writeln!(f, ", nonce {}", self.nonce)?;
        writeln!(f, "txid {}", self.txid)?;
        if let Some(replaced) = &self.replaced {
            writeln!(f, "replaces {replaced} (by fee)")?;
        }
        match &self.last_seen {
            Some(progress) => writeln!(f, "{progress}"),
            None => writeln!(f, "pending in the mempool (add --wait to watch it confirm)"),
        }
    }
}
