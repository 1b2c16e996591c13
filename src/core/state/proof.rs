//! Account proofs: the path from one account, or from the place where an absent account would
//! be, up to a state root; their verification; and their compact JSON form. No I/O.
//!
//! Verification is a pure function of the proof, the address the verifier asked about and
//! a root it trusts (a header's `state_root`): the node's tests and the wallet call the same
//! code. A proof is made by [`super::smt::prove`].
//!
//! ```text
//!   root ── node ── node ── … ── terminal          depth d = number of siblings
//!            │       │
//!        sibling 0  sibling 1 …                    sibling i: the other child at depth i + 1
//! ```
//! The terminal is what the path from the root along the address's bits ends in:
//! - the account's own leaf: it exists, with that balance and nonce;
//! - an empty subtree: no account at that address;
//! - another account's leaf, whose address shares the first `d` bits: no account at that
//!   address either (a leaf sits as high as the accounts around it let it).
//!
//! Hashing runs back up from the terminal with the tree's own rules ([`SmtNode::hash`]); the
//! proof holds when the result is the trusted root. Leaves and internal nodes are hashed
//! under different tags and an empty subtree is 32 zero bytes (no hash's output), so a proof
//! cannot pass one kind of node off as another.
use super::account::Account;
use super::smt::{bit, SmtNode, EMPTY_ROOT};
use crate::core::primitives::{
    Address, Amount, BlockHash, Hash256, Header, StateRoot, HEADER_SIZE,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The deepest a path can go: one level per address bit.
pub const MAX_DEPTH: usize = 256;

/// A path from an account (or its absence) to a state root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountProof {
    /// The other child at each depth of the path, from the root down (`siblings[i]` at depth
    /// `i + 1`); at most [`MAX_DEPTH`].
    pub siblings: Vec<Hash256>,
    /// What the path ends in.
    pub terminal: Terminal,
}

/// What a proof's path ends in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Terminal {
    /// The asked account's leaf.
    Account(Account),
    /// An empty subtree: the account does not exist.
    Empty,
    /// Another account's leaf on the asked address's path: the account does not exist.
    Other {
        /// The leaf's address (not the asked one; shares the path's bits).
        address: Address,
        /// Its state.
        account: Account,
    },
}

/// Why a proof does not hold.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProofError {
    /// The path hashes to another root than the trusted one: the proof is for another state
    /// (an older block, another chain) or was altered.
    #[error("the proof leads to state root {computed}, not {expected}")]
    RootMismatch {
        /// The trusted root, hex.
        expected: String,
        /// Where the proof leads, hex.
        computed: String,
    },
    /// A leaf presented as another account's is the asked account's, or is not on its path.
    #[error("the proof's other leaf ({leaf}) {why}")]
    ForeignLeaf {
        /// Its address, hex.
        leaf: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// More siblings than an address has bits.
    #[error("the proof is {depth} levels deep; a path has at most {MAX_DEPTH}")]
    TooDeep {
        /// Its depth.
        depth: usize,
    },
    /// The header served with the proof is not the one asked for.
    #[error("the proof comes with header {served}, not the trusted {expected}")]
    HeaderMismatch {
        /// The trusted header's hash.
        expected: String,
        /// The served header's hash.
        served: String,
    },
    /// The JSON form does not decode.
    #[error("malformed proof: {0}")]
    Malformed(String),
}

impl AccountProof {
    /// The account at `address` as this proof shows it under `root` (`None`: it has none), or
    /// why the proof does not hold.
    pub fn verify(
        &self,
        address: &Address,
        root: &StateRoot,
    ) -> Result<Option<Account>, ProofError> {
        let computed = self.root_for(address)?;
        if computed != root.0 {
            return Err(ProofError::RootMismatch {
                expected: hex::encode(root.0),
                computed: hex::encode(computed),
            });
        }
        Ok(match self.terminal {
            Terminal::Account(account) => Some(account),
            Terminal::Empty | Terminal::Other { .. } => None,
        })
    }

    /// [`AccountProof::verify`] against the state root `header` commits to. (Whether the
    /// header is one to trust, by its work and its place in a chain, is the caller's.)
    pub fn verify_against(
        &self,
        address: &Address,
        header: &Header,
    ) -> Result<Option<Account>, ProofError> {
        self.verify(address, &header.state_root)
    }

    /// The root this proof leads to for `address`.
    pub fn root_for(&self, address: &Address) -> Result<Hash256, ProofError> {
        let depth = self.siblings.len();
        if depth > MAX_DEPTH {
            return Err(ProofError::TooDeep { depth });
        }
        let mut hash = match self.terminal {
            Terminal::Account(account) => account.leaf_hash(address),
            Terminal::Empty => EMPTY_ROOT,
            Terminal::Other {
                address: other,
                account,
            } => {
                let leaf = || hex::encode(other.as_bytes());
                if other == *address {
                    return Err(ProofError::ForeignLeaf {
                        leaf: leaf(),
                        why: "is the asked address's own: that is a proof of the account",
                    });
                }
                if (0..depth).any(|i| bit(&other, i) != bit(address, i)) {
                    return Err(ProofError::ForeignLeaf {
                        leaf: leaf(),
                        why: "is not on the asked address's path",
                    });
                }
                account.leaf_hash(&other)
            }
        };
        for (depth, sibling) in self.siblings.iter().enumerate().rev() {
            let (left, right) = if bit(address, depth) {
                (*sibling, hash)
            } else {
                (hash, *sibling)
            };
            hash = SmtNode::Internal { left, right }.hash();
        }
        Ok(hash)
    }

    /// The compact JSON form.
    pub fn to_view(&self) -> ProofView {
        let depth = self.siblings.len();
        let mut empty = vec![0u8; depth.div_ceil(8)];
        let mut siblings = Vec::new();
        for (i, sibling) in self.siblings.iter().enumerate() {
            if *sibling == EMPTY_ROOT {
                empty[i / 8] |= 0x80 >> (i % 8);
            } else {
                siblings.push(hex::encode(sibling));
            }
        }
        let terminal = match self.terminal {
            Terminal::Account(account) => TerminalView::Account {
                balance: account.balance.as_units(),
                nonce: account.nonce,
            },
            Terminal::Empty => TerminalView::Empty,
            Terminal::Other { address, account } => TerminalView::Other {
                address: hex::encode(address.as_bytes()),
                balance: account.balance.as_units(),
                nonce: account.nonce,
            },
        };
        ProofView {
            depth,
            empty: hex::encode(empty),
            siblings,
            terminal,
        }
    }

    /// A proof from its compact JSON form, checking its shape (not its root: that is
    /// [`AccountProof::verify`]).
    pub fn from_view(view: &ProofView) -> Result<AccountProof, ProofError> {
        let malformed = |what: String| ProofError::Malformed(what);
        if view.depth > MAX_DEPTH {
            return Err(ProofError::TooDeep { depth: view.depth });
        }
        let empty =
            hex::decode(&view.empty).map_err(|e| malformed(format!("`empty` is not hex: {e}")))?;
        if empty.len() != view.depth.div_ceil(8) {
            return Err(malformed(format!(
                "`empty` has {} bytes; a depth of {} needs {}",
                empty.len(),
                view.depth,
                view.depth.div_ceil(8)
            )));
        }
        let is_empty = |i: usize| empty[i / 8] & (0x80 >> (i % 8)) != 0;
        if (view.depth..empty.len() * 8).any(is_empty) {
            return Err(malformed("`empty` has bits set past the depth".into()));
        }
        let listed = (0..view.depth).filter(|i| !is_empty(*i)).count();
        if listed != view.siblings.len() {
            return Err(malformed(format!(
                "{} siblings listed; `empty` leaves {listed}",
                view.siblings.len()
            )));
        }
        let mut listed = view.siblings.iter();
        let mut siblings = Vec::with_capacity(view.depth);
        for i in 0..view.depth {
            if is_empty(i) {
                siblings.push(EMPTY_ROOT);
                continue;
            }
            let text = listed.next().expect("counted above");
            let sibling = decode_32(text)
                .ok_or_else(|| malformed(format!("sibling {text:?} is not 32 bytes of hex")))?;
            if sibling == EMPTY_ROOT {
                return Err(malformed("an empty sibling is listed, not flagged".into()));
            }
            siblings.push(sibling);
        }
        let account = |balance: u64, nonce: u64| Account {
            balance: Amount::from_units(balance),
            nonce,
        };
        let terminal = match &view.terminal {
            TerminalView::Account { balance, nonce } => {
                Terminal::Account(account(*balance, *nonce))
            }
            TerminalView::Empty => Terminal::Empty,
            TerminalView::Other {
                address,
                balance,
                nonce,
            } => Terminal::Other {
                address: Address(decode_32(address).ok_or_else(|| {
                    malformed(format!("leaf address {address:?} is not 32 bytes of hex"))
                })?),
                account: account(*balance, *nonce),
            },
        };
        Ok(AccountProof { siblings, terminal })
    }
}

fn decode_32(text: &str) -> Option<[u8; 32]> {
    hex::decode(text).ok()?.try_into().ok()
}

/// A proof in JSON (docs/PROTOCOL.md, "Account proofs").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofView {
    /// Levels from the root to the terminal (the number of siblings, empty ones included).
    pub depth: usize,
    /// One bit per level, first level in the first byte's high bit: set where the sibling is
    /// an empty subtree (then it is not listed). Hex, `ceil(depth / 8)` bytes.
    pub empty: String,
    /// The non-empty siblings, root first, hex.
    pub siblings: Vec<String>,
    /// What the path ends in.
    pub terminal: TerminalView,
}

/// What a proof's path ends in, in JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TerminalView {
    /// The asked account's leaf.
    Account {
        /// Base units.
        balance: u64,
        /// Its nonce.
        nonce: u64,
    },
    /// No account: an empty subtree.
    Empty,
    /// No account: another account's leaf on the path.
    Other {
        /// Its address's 32 bytes, hex.
        address: String,
        /// Base units.
        balance: u64,
        /// Its nonce.
        nonce: u64,
    },
}

/// A proof as a node serves it, checked: the header (its bytes, hex) must be the one with
/// hash `trusted`, and the proof must hold for `address` under the state root that header
/// commits to. Returns the header and the account (`None`: none at that address).
pub fn verify_served(
    proof: &ProofView,
    address: &Address,
    header_hex: &str,
    trusted: &BlockHash,
) -> Result<(Header, Option<Account>), ProofError> {
    let header = Header::from_hex(header_hex).ok_or_else(|| {
        ProofError::Malformed(format!("the header is not {HEADER_SIZE} bytes of hex"))
    })?;
    if header.hash() != *trusted {
        return Err(ProofError::HeaderMismatch {
            expected: trusted.to_hex(),
            served: header.hash().to_hex(),
        });
    }
    let account = AccountProof::from_view(proof)?.verify_against(address, &header)?;
    Ok((header, account))
}

#[cfg(test)]
#[path = "proof_tests.rs"]
mod tests;
