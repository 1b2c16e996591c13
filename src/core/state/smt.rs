//! The state root: a sparse merkle tree over all accounts, keyed by address. No I/O.
//!
//! A binary tree of depth up to 256 where a subtree holding one account is that account's
//! leaf, placed as high as it can go, and an empty subtree is all zeros. The shape is a
//! function of the set of accounts alone, so every node that holds the same accounts has the
//! same root, whatever order it learnt them in or whatever reorgs it went through.
//!
//! ```text
//!   leaf     = tagged_hash("cairn/smt-leaf", address || balance_le || nonce_le)
//!   internal = tagged_hash("cairn/smt-node", left || right)
//!   empty    = 32 zero bytes
//! ```
//!
//! Nodes are stored by their hash (content addressed) and never overwritten, so every
//! earlier root stays readable: undoing a block is returning to its parent's root. Updating
//! `k` accounts among `n` reads and writes about `k * log2(n)` nodes, never the whole tree.
//!
//! # Invariants
//! - An internal node never has two empty children, nor one empty child and a leaf child.
//! - Updates never delete accounts (an emptied account stays as a zero-balance leaf).
use super::account::Account;
use super::{StateStoreError, StateView};
use crate::core::primitives::{tagged_hash, Address, Hash256};
use serde::{Deserialize, Serialize};

/// The root of the tree with no accounts.
pub const EMPTY_ROOT: Hash256 = [0u8; 32];

/// Below this depth, subtrees with many updates are computed on separate threads.
const PARALLEL_DEPTH: usize = 4;
/// Fewest updates in a subtree worth a separate thread.
const PARALLEL_MIN_UPDATES: usize = 256;

/// A stored tree node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SmtNode {
    /// An account.
    Leaf {
        /// Its address, which is its key.
        address: Address,
        /// Its state.
        account: Account,
    },
    /// Two subtrees.
    Internal {
        /// The subtree whose keys have a 0 bit at this depth.
        left: Hash256,
        /// The subtree whose keys have a 1 bit at this depth.
        right: Hash256,
    },
}

impl SmtNode {
    /// The node's hash, its key in storage.
    pub fn hash(&self) -> Hash256 {
        match self {
            SmtNode::Leaf { address, account } => account.leaf_hash(address),
            SmtNode::Internal { left, right } => tagged_hash("cairn/smt-node", &[left, right]),
        }
    }
}

/// The outcome of updating the tree: the new root and the nodes to store for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SmtUpdate {
    /// The new root.
    pub root: Hash256,
    /// Nodes created by the update (keyed by their hash).
    pub new_nodes: Vec<(Hash256, SmtNode)>,
}

fn bit(address: &Address, depth: usize) -> bool {
    (address.as_bytes()[depth / 8] >> (7 - depth % 8)) & 1 == 1
}

/// Sets each `(address, account)` of `updates` in the tree rooted at `root`.
///
/// `updates` must be sorted by address with no address twice.
pub fn update_root<V: StateView + ?Sized>(
    view: &V,
    root: Hash256,
    updates: &[(Address, Account)],
) -> Result<SmtUpdate, StateStoreError> {
    debug_assert!(
        updates.windows(2).all(|w| w[0].0 < w[1].0),
        "sorted, unique"
    );
    let mut new_nodes = Vec::new();
    let root = update_subtree(view, root, 0, updates, &mut new_nodes)?;
    Ok(SmtUpdate { root, new_nodes })
}

fn store(node: SmtNode, out: &mut Vec<(Hash256, SmtNode)>) -> Hash256 {
    let hash = node.hash();
    out.push((hash, node));
    hash
}

fn split_at_bit(updates: &[(Address, Account)], depth: usize) -> usize {
    updates.partition_point(|(address, _)| !bit(address, depth))
}

type Subtree = Result<(Hash256, Vec<(Hash256, SmtNode)>), StateStoreError>;

/// Computes the two halves of a subtree, on two threads when the work is large and near the
/// root, and gathers their new nodes into `out`.
fn both_halves(
    parallel: bool,
    left: impl FnOnce() -> Subtree + Send,
    right: impl FnOnce() -> Subtree + Send,
    out: &mut Vec<(Hash256, SmtNode)>,
) -> Result<(Hash256, Hash256), StateStoreError> {
    let (left, right) = if parallel {
        rayon::join(left, right)
    } else {
        (left(), right())
    };
    let (left_hash, left_nodes) = left?;
    let (right_hash, right_nodes) = right?;
    out.extend(left_nodes);
    out.extend(right_nodes);
    Ok((left_hash, right_hash))
}

fn update_subtree<V: StateView + ?Sized>(
    view: &V,
    node: Hash256,
    depth: usize,
    updates: &[(Address, Account)],
    out: &mut Vec<(Hash256, SmtNode)>,
) -> Result<Hash256, StateStoreError> {
    if updates.is_empty() {
        return Ok(node);
    }
    if node == EMPTY_ROOT {
        return build_subtree(depth, updates, out);
    }
    let loaded = view.smt_node(&node)?.ok_or_else(|| {
        StateStoreError(format!(
            "state tree node {} is missing: the store is damaged",
            hex::encode(node)
        ))
    })?;
    match loaded {
        SmtNode::Leaf { address, account } => {
            if updates.iter().any(|(a, _)| *a == address) {
                build_subtree(depth, updates, out)
            } else {
                let mut merged = updates.to_vec();
                let at = merged.partition_point(|(a, _)| *a < address);
                merged.insert(at, (address, account));
                build_subtree(depth, &merged, out)
            }
        }
        SmtNode::Internal { left, right } => {
            let split = split_at_bit(updates, depth);
            let (left_updates, right_updates) = updates.split_at(split);
            let parallel = depth < PARALLEL_DEPTH && updates.len() >= PARALLEL_MIN_UPDATES;
            let (left, right) = both_halves(
                parallel,
                || {
                    let mut nodes = Vec::new();
                    let hash = update_subtree(view, left, depth + 1, left_updates, &mut nodes)?;
                    Ok((hash, nodes))
                },
                || {
                    let mut nodes = Vec::new();
                    let hash = update_subtree(view, right, depth + 1, right_updates, &mut nodes)?;
                    Ok((hash, nodes))
                },
                out,
            )?;
            Ok(store(SmtNode::Internal { left, right }, out))
        }
    }
}

/// Builds the subtree holding exactly `updates` (at least one) at `depth`.
fn build_subtree(
    depth: usize,
    updates: &[(Address, Account)],
    out: &mut Vec<(Hash256, SmtNode)>,
) -> Result<Hash256, StateStoreError> {
    if let [(address, account)] = updates {
        return Ok(store(
            SmtNode::Leaf {
                address: *address,
                account: *account,
            },
            out,
        ));
    }
    if depth >= 256 {
        return Err(StateStoreError(
            "two updates for the same address reached the tree".to_string(),
        ));
    }
    let split = split_at_bit(updates, depth);
    let (left_updates, right_updates) = updates.split_at(split);
    let parallel = depth < PARALLEL_DEPTH && updates.len() >= PARALLEL_MIN_UPDATES;
    let half = |part: &[(Address, Account)]| -> Subtree {
        let mut nodes = Vec::new();
        if part.is_empty() {
            return Ok((EMPTY_ROOT, nodes));
        }
        let hash = build_subtree(depth + 1, part, &mut nodes)?;
        Ok((hash, nodes))
    };
    let (left, right) = both_halves(parallel, || half(left_updates), || half(right_updates), out)?;
    Ok(store(SmtNode::Internal { left, right }, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::primitives::Amount;
    use crate::core::state::memory::MemoryState;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// The root defined straight from the set of accounts, with no storage: the model the
    /// incremental tree is checked against.
    fn naive_root(accounts: &[(Address, Account)], depth: usize) -> Hash256 {
        match accounts {
            [] => EMPTY_ROOT,
            [(address, account)] => account.leaf_hash(address),
            _ => {
                let split = split_at_bit(accounts, depth);
                let left = naive_root(&accounts[..split], depth + 1);
                let right = naive_root(&accounts[split..], depth + 1);
                tagged_hash("cairn/smt-node", &[&left, &right])
            }
        }
    }

    fn account(balance: u64, nonce: u64) -> Account {
        Account {
            balance: Amount::from_units(balance),
            nonce,
        }
    }

    proptest! {
        /// Applying batches one after another gives the root of the final set, computed
        /// naively; so does every intermediate root.
        #[test]
        fn incremental_root_matches_naive_model(
            batches in prop::collection::vec(
                prop::collection::btree_map(any::<[u8; 2]>(), (any::<u64>(), 0u64..5), 0..40),
                1..6,
            )
        ) {
            let mut state = MemoryState::default();
            let mut model: BTreeMap<Address, Account> = BTreeMap::new();
            let mut root = EMPTY_ROOT;
            for batch in batches {
                // Two-byte keys spread over the top of the tree force deep shared prefixes.
                let updates: Vec<(Address, Account)> = batch
                    .into_iter()
                    .map(|(k, (b, n))| {
                        let mut bytes = [0u8; 32];
                        bytes[0] = k[0];
                        bytes[1] = k[1] & 0x0f;
                        (Address(bytes), account(b, n))
                    })
                    .collect::<BTreeMap<_, _>>()
                    .into_iter()
                    .collect();
                let update = update_root(&state, root, &updates).unwrap();
                state.insert_nodes(update.new_nodes);
                root = update.root;
                model.extend(updates);
                let all: Vec<_> = model.iter().map(|(a, b)| (*a, *b)).collect();
                prop_assert_eq!(root, naive_root(&all, 0));
            }
        }
    }

    #[test]
    fn earlier_roots_stay_readable() {
        let mut state = MemoryState::default();
        let first = update_root(&state, EMPTY_ROOT, &[(Address([1; 32]), account(5, 0))]).unwrap();
        state.insert_nodes(first.new_nodes);
        let second = update_root(&state, first.root, &[(Address([1; 32]), account(6, 1))]).unwrap();
        state.insert_nodes(second.new_nodes);
        // Updating from the first root again gives the same result: nothing was overwritten.
        let again = update_root(&state, first.root, &[(Address([1; 32]), account(6, 1))]).unwrap();
        assert_eq!(again.root, second.root);
    }

    #[test]
    fn large_parallel_update_matches_naive() {
        let mut state = MemoryState::default();
        let updates: Vec<(Address, Account)> = (0u32..5000)
            .map(|i| {
                let mut bytes = [0u8; 32];
                bytes[..32].copy_from_slice(&tagged_hash("k", &[&i.to_le_bytes()]));
                (Address(bytes), account(u64::from(i), 0))
            })
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect();
        let first = update_root(&state, EMPTY_ROOT, &updates).unwrap();
        assert_eq!(first.root, naive_root(&updates, 0));
        state.insert_nodes(first.new_nodes);
        let changed: Vec<_> = updates
            .iter()
            .step_by(3)
            .map(|(a, _)| (*a, account(1, 1)))
            .collect();
        let second = update_root(&state, first.root, &changed).unwrap();
        let mut model: BTreeMap<_, _> = updates.into_iter().collect();
        model.extend(changed);
        let all: Vec<_> = model.into_iter().collect();
        assert_eq!(second.root, naive_root(&all, 0));
    }

    #[test]
    fn missing_node_is_an_error_not_a_panic() {
        let state = MemoryState::default();
        let err = update_root(&state, [9u8; 32], &[(Address([1; 32]), account(1, 0))]).unwrap_err();
        assert!(err.0.contains("missing"));
    }
}
