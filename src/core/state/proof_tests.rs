//! Property tests of account proofs: every proof the tree makes verifies, for accounts and for
//! absent addresses alike, and any change to the account, the path, the root or the header
//! makes it fail.
use super::*;
use crate::core::primitives::target::CompactTarget;
use crate::core::primitives::{BlockHash, MerkleRoot};
use crate::core::state::memory::MemoryState;
use crate::core::state::smt::{prove, test_address, update_root};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn account(balance: u64, nonce: u64) -> Account {
    Account {
        balance: Amount::from_units(balance),
        nonce,
    }
}

/// A tree of `accounts`, and its root.
fn tree(accounts: &BTreeMap<Address, Account>) -> (MemoryState, StateRoot) {
    let mut state = MemoryState::default();
    let updates: Vec<(Address, Account)> = accounts.iter().map(|(a, b)| (*a, *b)).collect();
    let update = update_root(&state, EMPTY_ROOT, &updates).unwrap();
    state.insert_pages(update.new_pages);
    (state, StateRoot(update.root))
}

fn header_with(root: StateRoot) -> Header {
    Header {
        version: 1,
        height: 7,
        prev_hash: BlockHash::from_bytes([3; 32]),
        tx_root: MerkleRoot::from_bytes([4; 32]),
        state_root: root,
        time: 1_700_000_000,
        bits: CompactTarget::from_consensus(0x207f_ffff),
        nonce: 9,
    }
}

fn is_mismatch(result: Result<Option<Account>, ProofError>) -> bool {
    matches!(result, Err(ProofError::RootMismatch { .. }))
}

/// Every way to alter a proof's path: each sibling changed, one level dropped, one added,
/// two swapped.
fn altered_paths(proof: &AccountProof) -> Vec<AccountProof> {
    let mut out = Vec::new();
    for i in 0..proof.siblings.len() {
        let mut changed = proof.clone();
        changed.siblings[i][0] ^= 1;
        out.push(changed);
        let mut swapped = proof.clone();
        if i + 1 < proof.siblings.len() && proof.siblings[i] != proof.siblings[i + 1] {
            swapped.siblings.swap(i, i + 1);
            out.push(swapped);
        }
    }
    if !proof.siblings.is_empty() {
        let mut dropped = proof.clone();
        dropped.siblings.pop();
        out.push(dropped);
    }
    let mut added = proof.clone();
    added.siblings.push([7; 32]);
    out.push(added);
    out
}

proptest! {
    #[test]
    fn every_proof_verifies_and_every_change_fails(
        keys in prop::collection::btree_map(any::<[u8; 2]>(), (any::<u64>(), 0u64..5), 0..40),
        asked in prop::collection::vec(any::<[u8; 2]>(), 1..12),
        crowded in any::<bool>(),
    ) {
        let accounts: BTreeMap<Address, Account> = keys
            .iter()
            .map(|(k, (b, n))| (test_address(*k, crowded), account(*b, *n)))
            .collect();
        let (state, root) = tree(&accounts);
        // An older state: the same accounts but the first one's balance moved.
        let mut older = accounts.clone();
        if let Some(first) = older.values_mut().next() {
            first.balance = Amount::from_units(first.balance.as_units() ^ 1);
        }
        let (_, older_root) = tree(&older);
        let header = header_with(root);
        let questions = accounts
            .keys()
            .copied()
            .chain(asked.iter().map(|k| test_address(*k, crowded)))
            .chain(asked.iter().map(|k| test_address(*k, !crowded)));
        for asked in questions {
            let expected = accounts.get(&asked).copied();
            let proof = prove(&state, root.0, &asked).unwrap();
            // It verifies, through its JSON form and against the header too.
            prop_assert_eq!(proof.verify(&asked, &root), Ok(expected));
            let view = proof.to_view();
            let json = serde_json::to_string(&view).unwrap();
            let decoded = AccountProof::from_view(&serde_json::from_str(&json).unwrap()).unwrap();
            prop_assert_eq!(&decoded, &proof);
            let header_hex = header.to_hex();
            prop_assert_eq!(
                verify_served(&view, &asked, &header_hex, &header.hash()).map(|(_, a)| a),
                Ok(expected)
            );
            // Another root (an older state), or another block's header, fails.
            if older_root != root {
                prop_assert!(is_mismatch(proof.verify(&asked, &older_root)));
                let other_header = header_with(older_root).to_hex();
                let served = verify_served(&view, &asked, &other_header, &header.hash());
                let header_caught = matches!(served, Err(ProofError::HeaderMismatch { .. }));
                prop_assert!(header_caught);
            }
            // Any change to the path fails.
            for altered in altered_paths(&proof) {
                prop_assert!(altered.verify(&asked, &root).is_err(), "altered path passed");
            }
            // Any change to what it ends in fails.
            let mut terminals = Vec::new();
            match proof.terminal {
                Terminal::Account(found) => {
                    terminals.push(Terminal::Account(account(found.balance.as_units() ^ 1, found.nonce)));
                    terminals.push(Terminal::Account(account(found.balance.as_units(), found.nonce + 1)));
                    // A present account cannot be shown absent.
                    terminals.push(Terminal::Empty);
                    terminals.push(Terminal::Other { address: asked, account: found });
                }
                Terminal::Empty => {
                    // An absent account cannot be shown present, with any balance.
                    terminals.push(Terminal::Account(account(0, 0)));
                    terminals.push(Terminal::Account(account(1, 0)));
                }
                Terminal::Other { address: other, account: found } => {
                    terminals.push(Terminal::Account(found));
                    terminals.push(Terminal::Empty);
                    terminals.push(Terminal::Other {
                        address: other,
                        account: account(found.balance.as_units() ^ 1, found.nonce),
                    });
                }
            }
            for terminal in terminals {
                let altered = AccountProof { siblings: proof.siblings.clone(), terminal };
                prop_assert!(altered.verify(&asked, &root).is_err(), "altered terminal passed");
            }
            // A proof of one account is no proof for another address with an account.
            for (other, _) in accounts.iter().filter(|(a, _)| **a != asked).take(3) {
                prop_assert!(proof.verify(other, &root) != Ok(accounts.get(other).copied())
                    || prove(&state, root.0, other).unwrap() == proof);
            }
        }
    }
}

#[test]
fn the_empty_tree_proves_every_address_absent() {
    let state = MemoryState::default();
    let asked = Address([9; 32]);
    let proof = prove(&state, EMPTY_ROOT, &asked).unwrap();
    assert_eq!(proof.siblings.len(), 0);
    assert_eq!(proof.verify(&asked, &StateRoot(EMPTY_ROOT)), Ok(None));
}

#[test]
fn malformed_views_are_rejected_with_a_reason() {
    let mut accounts = BTreeMap::new();
    for i in 0u8..20 {
        accounts.insert(Address([i; 32]), account(u64::from(i) * 10, 1));
    }
    let (state, root) = tree(&accounts);
    let asked = Address([5; 32]);
    let view = prove(&state, root.0, &asked).unwrap().to_view();
    assert!(view.depth > 0);
    let mut too_deep = view.clone();
    too_deep.depth = 300;
    assert!(matches!(
        AccountProof::from_view(&too_deep),
        Err(ProofError::TooDeep { depth: 300 })
    ));
    let mut short = view.clone();
    short.siblings.pop();
    assert!(matches!(
        AccountProof::from_view(&short),
        Err(ProofError::Malformed(_))
    ));
    let mut bad_hex = view.clone();
    bad_hex.siblings[0] = "zz".into();
    assert!(matches!(
        AccountProof::from_view(&bad_hex),
        Err(ProofError::Malformed(_))
    ));
    let mut stray_bit = view.clone();
    stray_bit.empty = "ff".repeat(view.depth.div_ceil(8));
    assert!(AccountProof::from_view(&stray_bit).is_err());
    // A leaf said to be another account's but off the asked path.
    let off_path = AccountProof {
        siblings: vec![[1; 32]],
        terminal: Terminal::Other {
            address: Address([0xff; 32]),
            account: account(1, 1),
        },
    };
    assert!(matches!(
        off_path.verify(&Address([0; 32]), &root),
        Err(ProofError::ForeignLeaf { .. })
    ));
}
