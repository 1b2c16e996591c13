//! Differential: the state tree (`core::state::smt`, incremental and paged) against a naive
//! model (the root computed straight from the set of accounts, as in the module's own
//! tests). The input is a script of updates in batches, over addresses chosen to share long
//! prefixes (deep trees, up to the last bit). After every batch: the root equals the model's,
//! every account reads back from the stored pages and its proof checks against the root, an
//! absent one reads (and proves) absent, listing
//! gives exactly the model, and the previous root still lists the previous model. Scripts
//! are five bytes an update (see [`address`]); a set top bit in the first ends a batch.
#![no_main]
use cairn::core::primitives::{tagged_hash, Address, Amount, Hash256, StateRoot};
use cairn::core::state::memory::MemoryState;
use cairn::core::state::smt::{prove, update_root};
use cairn::core::state::{account_at, all_accounts, Account, EMPTY_ROOT};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

/// Most updates a script applies: enough for trees a few pages deep, few enough that an
/// input runs in well under a millisecond (the checks re-read every account per batch).
const MAX_UPDATES: usize = 48;

fn bit(address: &Address, depth: usize) -> bool {
    (address.0[depth / 8] >> (7 - depth % 8)) & 1 == 1
}

/// The root of `accounts` (sorted by address, distinct), from the definition.
fn naive_root(accounts: &[(Address, Account)], depth: usize) -> Hash256 {
    match accounts {
        [] => EMPTY_ROOT,
        [(address, account)] => account.leaf_hash(address),
        _ => {
            let split = accounts.partition_point(|(a, _)| !bit(a, depth));
            let left = naive_root(&accounts[..split], depth + 1);
            let right = naive_root(&accounts[split..], depth + 1);
            tagged_hash("cairn/smt-node", &[&left, &right])
        }
    }
}

/// An address from three script bytes: the first two bytes vary (shared prefixes a few
/// levels deep, as in the module's property test), and a set top bit in the third puts the
/// rest of it in the last byte, so two addresses can also meet as deep as level 255.
fn address(a: u8, b: u8, c: u8) -> Address {
    let mut bytes = [0u8; 32];
    bytes[0] = a & 0x07;
    bytes[1] = b;
    if c & 0x80 != 0 {
        bytes[31] = c & 0x7f;
    }
    Address(bytes)
}

fn check(state: &MemoryState, root: Hash256, model: &BTreeMap<Address, Account>) {
    let all: Vec<(Address, Account)> = model.iter().map(|(a, b)| (*a, *b)).collect();
    assert_eq!(root, naive_root(&all, 0), "root of {} accounts", all.len());
    // Every account reads back, and its proof checks against the root (so does the proof
    // of an absent address).
    let state_root = StateRoot(root);
    for (address, expected) in &all {
        assert_eq!(account_at(state, root, address).unwrap(), Some(*expected));
        let proof = prove(state, root, address).unwrap();
        assert_eq!(proof.verify(address, &state_root), Ok(Some(*expected)));
    }
    let mut absent = Address([0x40; 32]);
    while model.contains_key(&absent) {
        absent.0[31] = absent.0[31].wrapping_add(1);
    }
    assert_eq!(account_at(state, root, &absent).unwrap(), None);
    let proof = prove(state, root, &absent).unwrap();
    assert_eq!(proof.verify(&absent, &state_root), Ok(None));
    assert_eq!(all_accounts(state, root).unwrap(), all);
}

fuzz_target!(|data: &[u8]| {
    let mut state = MemoryState::default();
    let mut model: BTreeMap<Address, Account> = BTreeMap::new();
    let mut root = EMPTY_ROOT;
    let mut batch: BTreeMap<Address, Account> = BTreeMap::new();
    let mut script = data.chunks_exact(5).take(MAX_UPDATES).peekable();
    while let Some(op) = script.next() {
        if op[0] & 0x80 == 0 {
            let account = Account {
                balance: Amount::from_units(u64::from(op[3])),
                nonce: u64::from(op[4] % 4),
            };
            batch.insert(address(op[0], op[1], op[2]), account);
        }
        // A set top bit, or the end of the script, applies the batch.
        if op[0] & 0x80 != 0 || script.peek().is_none() {
            let updates: Vec<(Address, Account)> = std::mem::take(&mut batch).into_iter().collect();
            let update = update_root(&state, root, &updates).expect("an in-memory tree is whole");
            for (top, page) in &update.new_pages {
                assert!(page.get(top).is_some(), "a page holds its top node");
            }
            state.insert_pages(update.new_pages);
            let (old_root, old_model) = (root, model.clone());
            root = update.root;
            model.extend(updates);
            check(&state, root, &model);
            let old: Vec<(Address, Account)> = old_model.into_iter().collect();
            assert_eq!(
                all_accounts(&state, old_root).unwrap(),
                old,
                "an earlier root still reads"
            );
        }
    }
});
