//! The merkle root over a block's leaves (the reward leaf, then each transfer's txid). No I/O.
//!
//! Inner nodes are `tagged_hash("cairn/merkle", left || right)`; an odd node at the end of a
//! level is carried up unchanged rather than paired with itself. Leaves are txids (double
//! SHA-256) or the reward leaf (its own tag), so no leaf can pose as an inner node, and no two
//! different leaf lists share a root (Bitcoin's duplicate-last-node ambiguity, CVE-2012-2459,
//! cannot arise).
use super::hash::{tagged_hash, Hash256, MerkleRoot};

/// The merkle root of `leaves`; the root of no leaves is all zeros.
pub fn merkle_root(leaves: &[Hash256]) -> MerkleRoot {
    if leaves.is_empty() {
        return MerkleRoot::ZERO;
    }
    let mut level: Vec<Hash256> = leaves.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => tagged_hash("cairn/merkle", &[left, right]),
                [single] => *single,
                _ => unreachable!("chunks(2) yields one or two items"),
            })
            .collect();
    }
    MerkleRoot(level[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_leaf_is_its_own_root() {
        assert_eq!(merkle_root(&[[5u8; 32]]), MerkleRoot([5u8; 32]));
    }

    #[test]
    fn odd_leaf_is_carried_not_duplicated() {
        let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        let ab = tagged_hash("cairn/merkle", &[&a, &b]);
        assert_eq!(
            merkle_root(&[a, b, c]).0,
            tagged_hash("cairn/merkle", &[&ab, &c])
        );
        assert_ne!(merkle_root(&[a, b, c]), merkle_root(&[a, b, c, c]));
    }

    #[test]
    fn order_matters() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_ne!(merkle_root(&[a, b]), merkle_root(&[b, a]));
    }
}
