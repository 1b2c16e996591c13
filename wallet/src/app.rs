//! The wallet's commands, as library calls: one method of [`App`] per `cairn-wallet`
//! command, returning a report (`report`) the binary prints as text or JSON.
//!
//! Owns the order of each command's steps: open the keystore, learn the chain, check the
//! input, ask for the passphrase only when the secret is needed (and after every check that
//! can fail without it), talk to the node. It does not parse arguments or print: the binary
//! does, and the progress of `send --wait` goes through a callback.
//!
//! Which chain addresses are written for: a command that talks to the node uses the node's
//! chain (`/info`) and records it in the keystore the first time; a command that needs no
//! node uses the recorded chain, else asks the node, else shows the embedded dev chain's
//! prefix and says so.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn::core::consensus::ChainSpec;
use cairn::core::primitives::Address;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::chain::ChainParams;
use crate::client::{InfoView, NodeClient};
use crate::input::{PassphraseSource, Purpose};
use crate::keys::{parse_mnemonic, DEV_MNEMONIC};
use crate::keystore::{
    generate_mnemonic, AccountEntry, CreateOptions, KdfParams, Keystore, KeystoreError,
    UnlockedWallet,
};
use crate::report::{
    AddressInfo, AddressReport, BalanceEntry, BalanceReport, CoinAmount, CreatedReport,
    ExportReport, HistoryEntry, HistoryReport, ListEntry, ListReport, SendReport, VerifiedAt,
};
use crate::send::{self, SendRequest, WaitOptions, WaitProgress};
use crate::verify::{Followed, HeaderChain, ProvenAccount, DEFAULT_CONFIRMATIONS};
use crate::Error;

/// The wallet's accounts as proofs showed them ([`App::prove_accounts`]).
struct Proven {
    /// The chains the nodes serve, the followed one first.
    followed: Followed,
    /// The chain, as the spec the proofs were checked on writes it.
    chain: ChainParams,
    /// Each account's address as written, and what its proof showed (keystore order).
    accounts: Vec<(String, ProvenAccount)>,
}

/// How many dev accounts the dev chain funds (and `import-dev` derives).
pub const DEV_ACCOUNTS: u32 = 10;
/// The node `--node` points at by default: a local node's HTTP API.
pub const DEFAULT_NODE_URL: &str = "http://127.0.0.1:7371";
/// The wallet directory's name under `$HOME` by default.
pub const DEFAULT_WALLET_DIR_NAME: &str = ".cairn-wallet";

/// What `send` is asked to do.
#[derive(Clone, Debug)]
pub struct SendArgs {
    /// The transfer.
    pub request: SendRequest,
    /// The sending account index (`None`: the first address, index 0).
    pub from_index: Option<u32>,
    /// Wait for confirmations: `None` to return once the node accepted it.
    pub wait: Option<WaitOptions>,
}

/// What `send` reports while it works.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum SendEvent {
    /// The node accepted the transfer into its mempool.
    Submitted {
        /// Its id.
        txid: cairn::core::primitives::Txid,
    },
    /// A poll of `--wait`.
    Progress(WaitProgress),
}

/// One run of the wallet: where its files are, which node to ask, where the passphrase
/// comes from.
pub struct App {
    /// The wallet directory (holds `wallet.json`).
    pub wallet_dir: PathBuf,
    /// The node's base URL.
    pub node_url: String,
    /// The passphrase's sources.
    pub passphrase: PassphraseSource,
    /// Argon2id costs for new keystores.
    pub kdf: KdfParams,
    /// More nodes to check balances with (`--node` given more than once).
    pub more_nodes: Vec<String>,
    /// The chain spec balances are verified against (`None`: the embedded dev chain).
    pub chain_spec: Option<PathBuf>,
    /// How deep under the followed tip balances are proven.
    pub confirmations: u32,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl App {
    /// An app with the default key derivation costs.
    pub fn new(wallet_dir: PathBuf, node_url: String, passphrase: PassphraseSource) -> Self {
        App {
            wallet_dir,
            node_url,
            passphrase,
            kdf: KdfParams::DEFAULT,
            more_nodes: Vec::new(),
            chain_spec: None,
            confirmations: DEFAULT_CONFIRMATIONS,
        }
    }

    fn client(&self) -> NodeClient {
        NodeClient::new(&self.node_url)
    }

    fn open(&self) -> Result<Keystore, Error> {
        Ok(Keystore::open(&self.wallet_dir)?)
    }

    fn unlock(&self, keystore: &Keystore) -> Result<UnlockedWallet, Error> {
        let passphrase = self.passphrase.get(Purpose::Unlock)?;
        Ok(keystore.unlock(&passphrase)?)
    }

    /// The node's chain, recorded in the keystore the first time; a note if the keystore
    /// recorded another chain.
    fn node_chain(
        &self,
        client: &NodeClient,
        keystore: &mut Keystore,
        notes: &mut Vec<String>,
    ) -> Result<(InfoView, ChainParams), Error> {
        let (info, chain) = client.chain_info()?;
        match keystore.chain() {
            None => {
                // Only a convenience (addresses offline): never fail a command for it.
                if let Err(e) = keystore.set_chain(chain.clone()) {
                    notes.push(format!(
                        "could not record the chain in the wallet file: {e}"
                    ));
                }
            }
            Some(recorded) if recorded.genesis_hash != chain.genesis_hash => notes.push(format!(
                "the node at {} is on chain {:?} (genesis {}), not on {:?} where this wallet \
                 was first used; addresses and amounts are shown for the node's chain",
                client.base_url(),
                chain.name,
                chain.genesis_hash,
                recorded.name
            )),
            Some(_) => {}
        }
        if info.syncing {
            notes.push(format!(
                "the node is still syncing (at height {}): balances may be out of date",
                info.height
            ));
        } else if info.indexed_height < info.height {
            notes.push(format!(
                "the node is still indexing transfers (height {} of {}): the newest history \
                 and transfers may be missing for a while",
                info.indexed_height, info.height
            ));
        }
        Ok((info, chain))
    }

    /// The chain to write addresses for without needing the node (see the module docs).
    fn display_chain(&self, keystore: &mut Keystore, notes: &mut Vec<String>) -> ChainParams {
        if let Some(chain) = keystore.chain() {
            return chain.clone();
        }
        match self.node_chain(&self.client(), keystore, notes) {
            Ok((_, chain)) => chain,
            Err(_) => {
                let dev = ChainParams::dev();
                notes.push(format!(
                    "no node at {} and no chain recorded yet: addresses are shown with the \
                     dev chain's prefix {:?}",
                    self.node_url, dev.address_prefix
                ));
                dev
            }
        }
    }

    fn refuse_overwrite(&self, force: bool) -> Result<(), Error> {
        let path = Keystore::file_path(&self.wallet_dir);
        if !force && path.exists() {
            return Err(KeystoreError::AlreadyExists { path }.into());
        }
        Ok(())
    }

    fn create(
        &self,
        mnemonic: &bip39::Mnemonic,
        addresses: u32,
        force: bool,
        show_mnemonic: bool,
        mut notes: Vec<String>,
    ) -> Result<CreatedReport, Error> {
        let passphrase = self.passphrase.get(Purpose::New)?;
        // Learn the chain now if a node runs, so addresses show offline later.
        let recorded = self.client().chain_info().ok().map(|(_, chain)| chain);
        let (keystore, _) = Keystore::create(
            &self.wallet_dir,
            mnemonic,
            &passphrase,
            CreateOptions {
                kdf: self.kdf,
                addresses,
                overwrite: force,
                created: now_secs(),
                chain: recorded.clone(),
            },
        )?;
        let chain = recorded.unwrap_or_else(|| {
            let dev = ChainParams::dev();
            notes.push(format!(
                "no node at {}: the wallet will learn its chain from the first node it \
                 reaches; addresses are shown with the dev chain's prefix {:?}",
                self.node_url, dev.address_prefix
            ));
            dev
        });
        Ok(CreatedReport {
            wallet_file: keystore.path().display().to_string(),
            mnemonic: show_mnemonic.then(|| Zeroizing::new(mnemonic.to_string())),
            chain: chain.name.clone(),
            addresses: keystore
                .accounts()
                .iter()
                .map(|a| AddressInfo::new(a, &chain))
                .collect(),
            notes,
        })
    }

    /// `init`: a new wallet with a fresh 24-word mnemonic (returned once, to show).
    pub fn init(&self, force: bool) -> Result<CreatedReport, Error> {
        self.refuse_overwrite(force)?;
        let mnemonic = generate_mnemonic()?;
        self.create(&mnemonic, 1, force, true, Vec::new())
    }

    /// `restore`: a wallet from an existing mnemonic, with its first `addresses` addresses.
    pub fn restore(
        &self,
        phrase: &str,
        addresses: u32,
        force: bool,
    ) -> Result<CreatedReport, Error> {
        self.refuse_overwrite(force)?;
        let joined = Zeroizing::new(phrase.split_whitespace().collect::<Vec<_>>().join(" "));
        let normalized = Zeroizing::new(joined.to_lowercase());
        let mnemonic = parse_mnemonic(&normalized)?;
        self.create(&mnemonic, addresses.max(1), force, false, Vec::new())
    }

    /// `import-dev`: the dev chain's published test mnemonic and its 10 funded accounts.
    pub fn import_dev(&self, force: bool) -> Result<CreatedReport, Error> {
        self.refuse_overwrite(force)?;
        let mnemonic = parse_mnemonic(DEV_MNEMONIC)?;
        let notes = vec![format!(
            "this wallet holds the dev chain's well-known test keys (mnemonic \"{DEV_MNEMONIC}\"): \
             everybody can spend from them; use it on the dev chain only"
        )];
        self.create(&mnemonic, DEV_ACCOUNTS, force, false, notes)
    }

    /// `address`: the current receive address, or (`new`) the next one, derived and saved.
    pub fn address(&self, new: bool) -> Result<AddressReport, Error> {
        let mut keystore = self.open()?;
        let mut notes = Vec::new();
        let account = if new {
            let unlocked = self.unlock(&keystore)?;
            keystore.derive_next(&unlocked)?
        } else {
            keystore.receive_account().clone()
        };
        let chain = self.display_chain(&mut keystore, &mut notes);
        Ok(AddressReport {
            address: AddressInfo::new(&account, &chain),
            new,
            chain: chain.name,
            notes,
        })
    }

    /// `export`: the public data of address `index` (default: the receive address).
    pub fn export(&self, index: Option<u32>) -> Result<ExportReport, Error> {
        let mut keystore = self.open()?;
        let account = self.account(&keystore, index)?.clone();
        let mut notes = Vec::new();
        let chain = self.display_chain(&mut keystore, &mut notes);
        Ok(ExportReport {
            address: AddressInfo::new(&account, &chain),
            chain: chain.name,
            notes,
        })
    }

    fn account<'k>(
        &self,
        keystore: &'k Keystore,
        index: Option<u32>,
    ) -> Result<&'k AccountEntry, Error> {
        match index {
            None => Ok(keystore.receive_account()),
            Some(i) => keystore.account(i).ok_or(Error::NoSuchAddress {
                index: i,
                count: keystore.accounts().len(),
            }),
        }
    }

    /// `list`: every address, with its balance when the node answers.
    pub fn list(&self) -> Result<ListReport, Error> {
        let mut keystore = self.open()?;
        let mut notes = Vec::new();
        let client = self.client();
        let online = match self.node_chain(&client, &mut keystore, &mut notes) {
            Ok((_, chain)) => Some(chain),
            Err(Error::Client(e)) if e.is_unreachable() => {
                notes.push(format!("{e}; balances are not shown"));
                None
            }
            Err(e) => return Err(e),
        };
        let chain = match &online {
            Some(chain) => chain.clone(),
            None => self.display_chain(&mut keystore, &mut notes),
        };
        // Balances only from proofs: none shown if they do not check.
        let proven = match online {
            Some(_) => match self.prove_accounts(&keystore) {
                Ok(proven) => {
                    notes.extend(proven.followed.notes);
                    Some(proven.accounts)
                }
                Err(e) => {
                    notes.push(format!("{e}; balances are not shown"));
                    None
                }
            },
            None => None,
        };
        let receive = keystore.receive_account().index;
        let mut addresses = Vec::new();
        for (position, account) in keystore.accounts().iter().enumerate() {
            let info = AddressInfo::new(account, &chain);
            let balance = proven.as_ref().map(|proven| {
                let units = proven[position]
                    .1
                    .account
                    .map_or(0, |a| a.balance.as_units());
                CoinAmount::from_units(units, &chain)
            });
            addresses.push(ListEntry {
                receive: account.index == receive,
                address: info,
                balance,
            });
        }
        Ok(ListReport {
            chain: chain.name.clone(),
            symbol: chain.symbol.clone(),
            node_reachable: online.is_some(),
            addresses,
            notes,
        })
    }

    /// `balance`: per address and in total, each proven against a header of the heaviest
    /// valid header chain among the nodes, [`App::confirmations`] deep ([`crate::verify`]).
    /// Pending amounts are the first node's word, and said to be.
    pub fn balance(&self) -> Result<BalanceReport, Error> {
        let keystore = self.open()?;
        let Proven {
            followed,
            chain,
            accounts,
        } = self.prove_accounts(&keystore)?;
        let mut addresses = Vec::new();
        let (mut total, mut total_available) = (0u64, 0u64);
        // The mempool is no one's proof: the followed node's word.
        let follower = NodeClient::new(&followed.chain().node);
        for (account, (shown, proven)) in keystore.accounts().iter().zip(accounts) {
            let balance = proven.account.map_or(0, |a| a.balance.as_units());
            let pending = follower.account(&shown)?;
            let available = balance.saturating_sub(pending.pending_outgoing);
            total = total.saturating_add(balance);
            total_available = total_available.saturating_add(available);
            addresses.push(BalanceEntry {
                index: account.index,
                address: shown,
                balance: CoinAmount::from_units(balance, &chain),
                pending_outgoing: CoinAmount::from_units(pending.pending_outgoing, &chain),
                pending_count: pending.pending as u64,
                available: CoinAmount::from_units(available, &chain),
            });
        }
        let (block, confirmations) = followed.proof_block(self.confirmations);
        let tip_height = followed.chain().tip().height();
        let verified = VerifiedAt {
            height: block.height(),
            hash: block.hash().to_hex(),
            confirmations,
            tip_height,
            followed_node: followed.chain().node.clone(),
            nodes: self.node_urls().count(),
        };
        Ok(BalanceReport {
            chain: chain.name.clone(),
            symbol: chain.symbol.clone(),
            height: tip_height.into(),
            addresses,
            total: CoinAmount::from_units(total, &chain),
            total_available: CoinAmount::from_units(total_available, &chain),
            verified,
            notes: followed.notes,
        })
    }

    /// Every account of the wallet, proven [`App::confirmations`] deep on the heaviest valid
    /// header chain among the nodes (in the keystore's order).
    fn prove_accounts(&self, keystore: &Keystore) -> Result<Proven, Error> {
        let spec = self.chain_spec()?;
        let chain = ChainParams::from_spec(&spec);
        let nodes: Vec<NodeClient> = self.node_urls().map(NodeClient::new).collect();
        let now = now_secs();
        // The headers checked on the last run, checked again (cheap: no network), so that
        // only the newest are fetched.
        let cache = self.wallet_dir.join(format!(
            "headers-{}.bin",
            &chain.genesis_hash.to_hex()[..16]
        ));
        let known = std::fs::read(&cache)
            .ok()
            .and_then(|bytes| HeaderChain::from_bytes(&bytes, &spec, now, "the cache").ok());
        let mut followed = Followed::fetch_after(&nodes, &spec, now, known.as_ref())?;
        let temporary = cache.with_extension("bin.tmp");
        let saved = std::fs::write(&temporary, followed.chain().to_bytes())
            .and_then(|()| std::fs::rename(&temporary, &cache));
        if let Err(e) = saved {
            followed.notes.push(format!(
                "could not keep the checked headers in {}: {e}",
                cache.display()
            ));
        }
        let mut accounts = Vec::new();
        for account in keystore.accounts() {
            let address = account.address();
            let shown = chain.address_string(&address);
            let proven = followed.prove(&nodes, &address, &shown, self.confirmations)?;
            accounts.push((shown, proven));
        }
        Ok(Proven {
            followed,
            chain,
            accounts,
        })
    }

    /// The chain balances are verified on: `--chain-spec`, else the embedded dev chain.
    fn chain_spec(&self) -> Result<ChainSpec, Error> {
        let Some(path) = &self.chain_spec else {
            return Ok(ChainSpec::dev());
        };
        let error = |why: String| Error::ChainSpec {
            path: path.display().to_string(),
            why,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        ChainSpec::from_toml(&text).map_err(|e| error(e.to_string()))
    }

    /// Every node given, the first the one other commands use.
    fn node_urls(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.node_url.as_str()).chain(self.more_nodes.iter().map(String::as_str))
    }

    /// `history`: the newest `limit` entries of one address (an address of the chain, or a
    /// wallet index) or of all the wallet's addresses, pending transfers first.
    pub fn history(&self, address: Option<&str>, limit: u32) -> Result<HistoryReport, Error> {
        let mut keystore = self.open()?;
        let mut notes = Vec::new();
        let client = self.client();
        let (_, chain) = self.node_chain(&client, &mut keystore, &mut notes)?;
        let addresses: Vec<String> = match address {
            Some(text) => match text.trim().parse::<u32>() {
                Ok(index) => {
                    vec![chain.address_string(&self.account(&keystore, Some(index))?.address())]
                }
                Err(_) => vec![chain.address_string(&chain.parse_address(text)?)],
            },
            None => keystore
                .accounts()
                .iter()
                .map(|a| chain.address_string(&a.address()))
                .collect(),
        };
        let mut pending = Vec::new();
        let mut confirmed = Vec::new();
        for address in &addresses {
            let view = client.history(address, Some(limit))?;
            for t in view.pending {
                if pending
                    .iter()
                    .any(|p: &HistoryEntry| p.txid.as_ref() == Some(&t.txid))
                {
                    continue;
                }
                pending.push(HistoryEntry {
                    address: address.clone(),
                    kind: "pending".to_string(),
                    txid: Some(t.txid),
                    height: None,
                    confirmations: 0,
                    time: None,
                    from: Some(t.from),
                    to: t.to,
                    amount: CoinAmount::from_units(t.amount, &chain),
                    fee: CoinAmount::from_units(t.fee, &chain),
                    memo: t.memo,
                });
            }
            confirmed.extend(view.items.into_iter().map(|item| HistoryEntry {
                address: address.clone(),
                kind: item.kind,
                txid: item.txid,
                height: Some(item.height.into()),
                confirmations: item.confirmations.into(),
                time: Some(item.time.into()),
                from: item.from,
                to: item.to,
                amount: CoinAmount::from_units(item.amount, &chain),
                fee: CoinAmount::from_units(item.fee, &chain),
                memo: item.memo,
            }));
        }
        // Newest first across addresses (a stable sort keeps each address's own order).
        confirmed.sort_by_key(|entry| std::cmp::Reverse(entry.height));
        let mut entries = pending;
        entries.extend(confirmed);
        entries.truncate(limit as usize);
        Ok(HistoryReport {
            chain: chain.name,
            entries,
            notes,
        })
    }

    /// `send`: checks, fills nonce and fee, signs, submits, and (with `args.wait`) waits.
    pub fn send(
        &self,
        args: &SendArgs,
        mut on_event: impl FnMut(SendEvent),
    ) -> Result<SendReport, Error> {
        let mut keystore = self.open()?;
        let account = self
            .account(&keystore, Some(args.from_index.unwrap_or(0)))?
            .clone();
        let mut notes = Vec::new();
        let client = self.client();
        let (info, chain) = self.node_chain(&client, &mut keystore, &mut notes)?;
        let from: Address = account.address();
        let prepared = send::prepare(
            &client,
            &chain,
            Some(info.max_memo_bytes),
            from,
            &args.request,
        )?;
        // Every check that needs no secret has passed: now the passphrase.
        let unlocked = self.unlock(&keystore)?;
        let mut keypair = unlocked.keypair(account.index)?;
        drop(unlocked);
        let submitted = send::sign_and_submit(&client, &chain, &prepared, &keypair);
        keypair.non_secure_erase();
        let submitted = submitted?;
        on_event(SendEvent::Submitted {
            txid: submitted.txid,
        });
        let mut last_seen = None;
        if let Some(options) = args.wait {
            send::wait_for_confirmations(&client, &submitted.txid, options, |progress| {
                last_seen = Some(progress);
                on_event(SendEvent::Progress(progress));
            })?;
        }
        let transfer = &submitted.transfer;
        Ok(SendReport {
            txid: submitted.txid,
            from: chain.address_string(&transfer.from),
            from_index: account.index,
            to: chain.address_string(&transfer.to),
            amount: CoinAmount::new(transfer.amount, &chain),
            fee: CoinAmount::new(transfer.fee, &chain),
            fee_rate: prepared.fee_rate,
            size: prepared.size,
            nonce: transfer.nonce,
            replaced: submitted.replaced,
            last_seen,
            notes,
        })
    }
}

/// The default wallet directory: `$HOME/.cairn-wallet`.
pub fn default_wallet_dir() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| Path::new(&home).join(DEFAULT_WALLET_DIR_NAME))
}

/// `--wait` defaults: poll every second.
pub fn wait_options(confirmations: u64, timeout_secs: u64) -> WaitOptions {
    WaitOptions {
        confirmations,
        timeout: Duration::from_secs(timeout_secs),
        poll_interval: Duration::from_secs(1),
    }
}
