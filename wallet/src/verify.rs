//! A wallet that does not trust its nodes: it keeps the header chain each node serves, checks
//! it from the chain spec's genesis with the node software's own header rules (proof of work,
//! ASERT bits, linkage, timestamps), follows the one with the most work, and believes a
//! balance only from a proof that checks against a header of that chain buried under a
//! stated number of confirmations.
//!
//! ```text
//!   nodes ──headers──► HeaderChain (checked) ──most work──► Followed
//!                                                            │ block k deep
//!   nodes ──proof of account at that block──► verify_served ─┴─► ProvenAccount
//! ```
//! A node that serves an invalid header, a header chain of another genesis, a lighter chain
//! than another node's, or a proof that does not check, is named in the error or the notes.
//! What is not proven (the mempool: pending transfers, the next nonce) is not shown as if it
//! were.
use std::collections::HashMap;

use cairn::core::chain::{is_better_chain, BlockIndex, BlockIndexEntry, ChainError};
use cairn::core::consensus::genesis::genesis;
use cairn::core::consensus::ChainSpec;
use cairn::core::primitives::{Address, BlockHash, Header, HEADER_SIZE};
use cairn::core::protocol::download::Download;
use cairn::core::protocol::headers::check_header_chain;
use cairn::core::state::proof::{verify_served, ProofError};
use cairn::core::state::Account;

use crate::client::{ClientError, NodeClient};

/// Headers asked for per call (the API's page).
pub const HEADERS_PER_CALL: u32 = 2000;

/// Headers below a known chain's tip fetched and checked again on the next run: a reorg up
/// to this deep is followed from there, a deeper one from genesis.
pub const RECHECK_DEPTH: u32 = 100;

/// Confirmations a balance's block has by default: the tip's grandparent (the tip and its
/// parent are the blocks most often replaced).
pub const DEFAULT_CONFIRMATIONS: u32 = 3;

/// Why the wallet believes nothing a node said.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The node could not be asked.
    #[error("node {node}: {error}")]
    Client {
        /// Its URL.
        node: String,
        /// What failed.
        error: ClientError,
    },
    /// The node's first header is not the chain spec's genesis.
    #[error(
        "node {node} is on another chain: its genesis is {served}, the chain spec's ({chain}) \
         is {expected}"
    )]
    WrongGenesis {
        /// Its URL.
        node: String,
        /// The chain spec's name.
        chain: String,
        /// The spec's genesis hash.
        expected: String,
        /// The node's.
        served: String,
    },
    /// A header breaks a consensus rule, or does not follow the one before it.
    #[error("node {node} serves an invalid header at height {height} ({hash}): {why}")]
    InvalidHeader {
        /// Its URL.
        node: String,
        /// The header's height.
        height: u32,
        /// Its hash.
        hash: String,
        /// The rule it breaks.
        why: String,
    },
    /// The answer is not what the API promises (not hex, not a header).
    #[error("node {node} answered nonsense: {why}")]
    Garbled {
        /// Its URL.
        node: String,
        /// What is wrong.
        why: String,
    },
    /// A proof did not check against the followed chain's header.
    #[error("node {node} lied about {address} at height {height} ({hash}): {error}")]
    Lied {
        /// Its URL.
        node: String,
        /// The address asked about.
        address: String,
        /// The block's height.
        height: u32,
        /// The block's hash (from the wallet's own header chain).
        hash: String,
        /// How the proof fails.
        error: Box<ProofError>,
    },
    /// No node serves the followed chain's block (it moved away, or answered nothing).
    #[error("no node would prove {address} at height {height} ({hash}): {why}")]
    NoProof {
        /// The address asked about.
        address: String,
        /// The block's height.
        height: u32,
        /// The block's hash.
        hash: String,
        /// What each node did.
        why: String,
    },
    /// No node gave a header chain that checks.
    #[error("no node gave a valid header chain: {0}")]
    NoChain(String),
}

/// One node's best chain as the wallet checked it.
pub struct HeaderChain {
    /// The node it came from.
    pub node: String,
    /// The checked entries, by height (genesis first).
    entries: Vec<BlockIndexEntry>,
    /// Heights by hash.
    heights: HashMap<BlockHash, u32>,
}

impl BlockIndex for HeaderChain {
    fn entry(&self, hash: &BlockHash) -> Result<Option<BlockIndexEntry>, ChainError> {
        Ok(self
            .heights
            .get(hash)
            .map(|height| self.entries[*height as usize].clone()))
    }
}

impl HeaderChain {
    /// A chain of the genesis of `spec` alone, credited to `node`.
    fn genesis_only(node: &str, spec: &ChainSpec) -> HeaderChain {
        let (genesis_block, _) = genesis(spec);
        let genesis_entry = BlockIndexEntry::genesis(genesis_block.header, &spec.asert_params())
            .expect("a checked chain spec's genesis bits decode");
        HeaderChain {
            node: node.to_string(),
            heights: HashMap::from([(genesis_entry.hash(), 0)]),
            entries: vec![genesis_entry],
        }
    }

    /// Fetches `client`'s best chain and checks every header from `spec`'s genesis, at `now`
    /// (Unix seconds; headers from the future end the chain where they start).
    pub fn fetch(client: &NodeClient, spec: &ChainSpec, now: u64) -> Result<Self, VerifyError> {
        Self::fetch_after(client, spec, now, None, RECHECK_DEPTH)
    }

    /// [`HeaderChain::fetch`], starting from `known`, a chain checked before (the wallet's
    /// cache): if the node's block `recheck` below `known`'s tip is `known`'s, only the
    /// headers from there are fetched and checked; otherwise everything from genesis.
    pub fn fetch_after(
        client: &NodeClient,
        spec: &ChainSpec,
        now: u64,
        known: Option<&HeaderChain>,
        recheck: u32,
    ) -> Result<Self, VerifyError> {
        let node = client.base_url().to_string();
        if let Some(known) = known {
            let anchor = known.tip().height().saturating_sub(recheck);
            if anchor > 0 {
                let headers = fetch_headers(client, anchor)?;
                if headers.first().map(Header::hash) == known.at(anchor).map(|e| e.hash()) {
                    let mut chain = known.prefix(anchor, &node);
                    let served = headers.len();
                    chain.follow(client, spec, now, &headers[1..], served)?;
                    return Ok(chain);
                }
            }
        }
        let mut chain = HeaderChain::genesis_only(&node, spec);
        let mut headers = fetch_headers(client, 0)?;
        let served = headers.len();
        let Some(first) = headers.first() else {
            return Err(garbled(&node, "no genesis header".into()));
        };
        if first.hash() != chain.entries[0].hash() {
            return Err(VerifyError::WrongGenesis {
                node,
                chain: spec.file.name.clone(),
                expected: chain.entries[0].hash().to_hex(),
                served: first.hash().to_hex(),
            });
        }
        headers.remove(0);
        chain.follow(client, spec, now, &headers, served)?;
        Ok(chain)
    }

    /// Checks and appends `headers` (a page of `served`, less any this chain already has),
    /// then the node's next pages, until a short page or a header from the future.
    fn follow(
        &mut self,
        client: &NodeClient,
        spec: &ChainSpec,
        now: u64,
        headers: &[Header],
        served: usize,
    ) -> Result<(), VerifyError> {
        let (mut headers, mut served) = (headers.to_vec(), served);
        loop {
            if !self.extend(&headers, spec, now)? || served < HEADERS_PER_CALL as usize {
                return Ok(());
            }
            headers = fetch_headers(client, self.tip().height() + 1)?;
            served = headers.len();
        }
    }

    /// This chain up to `height`, credited to `node`.
    fn prefix(&self, height: u32, node: &str) -> HeaderChain {
        let entries = self.entries[..=height as usize].to_vec();
        let heights = entries
            .iter()
            .map(|entry| (entry.hash(), entry.height()))
            .collect();
        HeaderChain {
            node: node.to_string(),
            entries,
            heights,
        }
    }

    /// The headers after genesis, 116 bytes each: what the wallet keeps between runs.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.entries[1..]
            .iter()
            .flat_map(|entry| entry.header.to_bytes())
            .collect()
    }

    /// A chain from [`HeaderChain::to_bytes`], checked again as if a node had served it,
    /// credited to `name`.
    pub fn from_bytes(
        bytes: &[u8],
        spec: &ChainSpec,
        now: u64,
        name: &str,
    ) -> Result<HeaderChain, VerifyError> {
        if !bytes.len().is_multiple_of(HEADER_SIZE) {
            return Err(garbled(
                name,
                format!("{} bytes is not whole headers", bytes.len()),
            ));
        }
        let headers: Vec<Header> = bytes
            .chunks_exact(HEADER_SIZE)
            .map(|chunk| Header::from_bytes(chunk.try_into().expect("exact chunks")))
            .collect();
        let mut chain = HeaderChain::genesis_only(name, spec);
        chain.extend(&headers, spec, now)?;
        Ok(chain)
    }

    /// Checks and appends `headers` (the next heights); `false` if checking stopped early at
    /// a header from the future.
    fn extend(
        &mut self,
        headers: &[Header],
        spec: &ChainSpec,
        now: u64,
    ) -> Result<bool, VerifyError> {
        let tip = self.tip().clone();
        // check_header_chain takes each header as its predecessor's child: check the rules up
        // to the first header that does not follow the one before it, so that whichever
        // fault comes first is the one reported.
        let mut parent_hash = tip.hash();
        let linked = headers
            .iter()
            .position(|header| {
                let follows = header.prev_hash == parent_hash;
                parent_hash = header.hash();
                !follows
            })
            .unwrap_or(headers.len());
        let queued: Download<()> = Download::default();
        let checked = check_header_chain(self, &queued, tip, &headers[..linked], spec, now)
            .map_err(|e| garbled(&self.node, format!("checking its headers: {e}")))?;
        let checked = match checked {
            Ok(checked) => checked,
            Err(invalid) => {
                let header = headers
                    .iter()
                    .find(|h| h.hash() == invalid.hash)
                    .expect("the invalid header is one of the batch");
                return Err(self.invalid(header, invalid.error.to_string()));
            }
        };
        if checked.held_at.is_none() && linked < headers.len() {
            let header = &headers[linked];
            let parent = if linked == 0 {
                self.tip().hash()
            } else {
                headers[linked - 1].hash()
            };
            return Err(self.invalid(
                header,
                format!(
                    "it does not follow the header before it (its parent is {}, not {parent})",
                    header.prev_hash
                ),
            ));
        }
        for wanted in checked.wanted {
            self.heights.insert(wanted.hash, wanted.entry.height());
            self.entries.push(wanted.entry);
        }
        Ok(checked.held_at.is_none())
    }

    fn invalid(&self, header: &Header, why: String) -> VerifyError {
        VerifyError::InvalidHeader {
            node: self.node.clone(),
            height: header.height,
            hash: header.hash().to_hex(),
            why,
        }
    }

    /// The tip's entry.
    pub fn tip(&self) -> &BlockIndexEntry {
        self.entries.last().expect("a chain holds its genesis")
    }

    /// The entry at `height`, if the chain is that long.
    pub fn at(&self, height: u32) -> Option<&BlockIndexEntry> {
        self.entries.get(height as usize)
    }
}

fn garbled(node: &str, why: String) -> VerifyError {
    VerifyError::Garbled {
        node: node.to_string(),
        why,
    }
}

/// The node's best-chain headers from height `from`, one page.
fn fetch_headers(client: &NodeClient, from: u32) -> Result<Vec<Header>, VerifyError> {
    let view = client
        .headers(from, HEADERS_PER_CALL)
        .map_err(|error| VerifyError::Client {
            node: client.base_url().to_string(),
            error,
        })?;
    decode_headers(client.base_url(), &view.headers)
}

fn decode_headers(node: &str, hex_headers: &[String]) -> Result<Vec<Header>, VerifyError> {
    hex_headers
        .iter()
        .map(|text| {
            Header::from_hex(text).ok_or_else(|| {
                garbled(node, format!("{text:?} is not a {HEADER_SIZE}-byte header"))
            })
        })
        .collect()
}

/// The chains of several nodes, the heaviest followed.
pub struct Followed {
    /// Every node's checked chain, the followed one first.
    pub chains: Vec<HeaderChain>,
    /// What was wrong with the others: lighter chains, invalid ones, nodes that did not answer.
    pub notes: Vec<String>,
}

impl Followed {
    /// Fetches and checks every node's chain and follows the one with the most work (the
    /// first node's on a tie); an error only if no node gives a valid chain.
    pub fn fetch(nodes: &[NodeClient], spec: &ChainSpec, now: u64) -> Result<Self, VerifyError> {
        Self::fetch_after(nodes, spec, now, None)
    }

    /// [`Followed::fetch`], each node's chain fetched after `known` (a chain checked before:
    /// see [`HeaderChain::fetch_after`]).
    pub fn fetch_after(
        nodes: &[NodeClient],
        spec: &ChainSpec,
        now: u64,
        known: Option<&HeaderChain>,
    ) -> Result<Self, VerifyError> {
        let mut chains: Vec<HeaderChain> = Vec::new();
        let mut failures: Vec<VerifyError> = Vec::new();
        for client in nodes {
            match HeaderChain::fetch_after(client, spec, now, known, RECHECK_DEPTH) {
                Ok(chain) => chains.push(chain),
                Err(e) => failures.push(e),
            }
        }
        let Some(best) = (0..chains.len()).reduce(|best, i| {
            if is_better_chain(&chains[i].tip().chain_work, &chains[best].tip().chain_work) {
                i
            } else {
                best
            }
        }) else {
            // One node: its own error; several: every one's.
            return Err(match failures.len() {
                1 => failures.remove(0),
                _ => VerifyError::NoChain(
                    failures
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
            });
        };
        chains.swap(0, best);
        let followed = chains[0].tip().clone();
        let mut notes: Vec<String> = failures
            .into_iter()
            .map(|failure| format!("{failure}: not used"))
            .collect();
        for other in &chains[1..] {
            let tip = other.tip();
            if tip.hash() == followed.hash() {
                continue;
            }
            if is_better_chain(&followed.chain_work, &tip.chain_work) {
                notes.push(format!(
                    "node {} serves a header chain with less work (height {}, {}) than node {} \
                     (height {}, {}): not followed",
                    other.node,
                    tip.height(),
                    tip.hash(),
                    chains[0].node,
                    followed.height(),
                    followed.hash()
                ));
            } else {
                notes.push(format!(
                    "node {} serves another chain with as much work (height {}, {}): node {}'s \
                     is followed",
                    other.node,
                    tip.height(),
                    tip.hash(),
                    chains[0].node
                ));
            }
        }
        Ok(Followed { chains, notes })
    }

    /// The followed chain.
    pub fn chain(&self) -> &HeaderChain {
        &self.chains[0]
    }

    /// The block a balance is proven at, `confirmations` deep under the followed tip (at
    /// least 1) or genesis if the chain is shorter, and the confirmations it has.
    pub fn proof_block(&self, confirmations: u32) -> (&BlockIndexEntry, u32) {
        let tip = self.chain().tip().height();
        let height = tip.saturating_sub(confirmations.max(1) - 1);
        let block = self.chain().at(height).expect("at most the tip's height");
        (block, tip - height + 1)
    }

    /// The account at `address` (written `shown` for messages) at the block `confirmations`
    /// deep, from a proof that checks against that block's header: asked of the nodes whose
    /// chains hold that block, the followed one first. A node whose proof fails is named in
    /// the notes (and in the error if none proves it).
    pub fn prove(
        &mut self,
        nodes: &[NodeClient],
        address: &Address,
        shown: &str,
        confirmations: u32,
    ) -> Result<ProvenAccount, VerifyError> {
        let (block, confirmations) = self.proof_block(confirmations);
        let (height, hash) = (block.height(), block.hash());
        let mut failures: Vec<VerifyError> = Vec::new();
        let holders: Vec<String> = self
            .chains
            .iter()
            .filter(|chain| chain.at(height).map(BlockIndexEntry::hash) == Some(hash))
            .map(|chain| chain.node.clone())
            .collect();
        for node in holders {
            let Some(client) = nodes.iter().find(|c| c.base_url() == node) else {
                continue;
            };
            let view = match client.account_proof(shown, &hash) {
                Ok(view) => view,
                Err(error) => {
                    failures.push(VerifyError::Client { node, error });
                    continue;
                }
            };
            match verify_served(&view.proof, address, &view.header, &hash) {
                Ok((_, account)) => {
                    self.notes.extend(failures.iter().map(ToString::to_string));
                    return Ok(ProvenAccount {
                        account,
                        height,
                        hash,
                        confirmations,
                        node,
                    });
                }
                Err(error) => failures.push(VerifyError::Lied {
                    node,
                    address: shown.to_string(),
                    height,
                    hash: hash.to_hex(),
                    error: Box::new(error),
                }),
            }
        }
        // The first liar is the error: that is what the user must hear about.
        match failures
            .iter()
            .position(|f| matches!(f, VerifyError::Lied { .. }))
        {
            Some(liar) => Err(failures.swap_remove(liar)),
            None => Err(VerifyError::NoProof {
                address: shown.to_string(),
                height,
                hash: hash.to_hex(),
                why: if failures.is_empty() {
                    "no node serves that block".into()
                } else {
                    failures
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                },
            }),
        }
    }
}

/// An account as a proof showed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvenAccount {
    /// The account, `None` if the address has none.
    pub account: Option<Account>,
    /// The block it was proven at.
    pub height: u32,
    /// That block's hash (from the wallet's own header chain).
    pub hash: BlockHash,
    /// That block's confirmations on the followed chain.
    pub confirmations: u32,
    /// The node whose proof checked.
    pub node: String,
}
