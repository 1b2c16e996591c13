//! Scheduling a block's transfers for parallel execution. No I/O.
//!
//! A transfer reads and writes two accounts, its sender and its recipient. Two transfers that
//! share no account commute: neither sees the other's effect. So the transfers of a block fall
//! into *conflict groups*, the connected components of the graph whose edges join transfers
//! that share an account, and each group can run on its own, in block order within the group,
//! while the others run on other cores. Every replica reaches the same state whatever the
//! thread count, because no group reads what another writes.
//!
//! ```text
//!   block order   t0: a→b   t1: c→d   t2: b→e   t3: f→c
//!   groups        {t0, t2} (a, b, e)   {t1, t3} (c, d, f)
//! ```
//!
//! Groups are packed into a few batches of about equal size (largest first, each to the
//! lightest batch), since one rayon task per single-transfer group costs more than it saves.
//! Within a batch the transfers run in block order: that is one group's order, interleaved
//! with other groups' transfers that cannot affect it.
use crate::core::primitives::{Address, Transfer};
use foldhash::{HashMap, HashSet};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The conflict groups of `transfers`: lists of indices into `transfers`, each in block
/// order, ordered by their first index. Transfers in different groups share no account.
pub fn conflict_groups(transfers: &[Transfer]) -> Vec<Vec<usize>> {
    groups_and_accounts(transfers).0
}

/// [`conflict_groups`], and every account the transfers touch (each once, in no order).
fn groups_and_accounts(transfers: &[Transfer]) -> (Vec<Vec<usize>>, Vec<Address>) {
    let mut sets = DisjointSets::new(transfers.len());
    let mut last_toucher: HashMap<Address, usize> =
        HashMap::with_capacity_and_hasher(transfers.len() * 2, Default::default());
    for (index, transfer) in transfers.iter().enumerate() {
        for account in [transfer.from, transfer.to] {
            if let Some(earlier) = last_toucher.insert(account, index) {
                sets.union(earlier, index);
            }
        }
    }
    // Roots are transfer indices, so a vector maps them to their groups.
    let mut group_of_root = vec![usize::MAX; transfers.len()];
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for index in 0..transfers.len() {
        let root = sets.find(index);
        if group_of_root[root] == usize::MAX {
            group_of_root[root] = groups.len();
            groups.push(Vec::new());
        }
        groups[group_of_root[root]].push(index);
    }
    (groups, last_toucher.into_keys().collect())
}

/// How a block's transfers run: [`independent_batches`].
#[derive(Debug)]
pub struct Schedule {
    /// Lists of indices into the transfers, each a union of whole conflict groups, in block
    /// order.
    pub batches: Vec<Vec<usize>>,
    /// Every account the transfers touch, each once, in no order (found on the way, for
    /// reading them all beforehand).
    pub accounts: Vec<Address>,
}

/// The transfers of a block packed into at most `batches` lists of indices, each a union of
/// whole conflict groups, in block order. Empty batches are left out; `batches` of 0 or 1
/// gives one batch of every transfer (sequential execution).
pub fn independent_batches(transfers: &[Transfer], batches: usize) -> Schedule {
    if batches <= 1 || transfers.len() <= 1 {
        let accounts: HashSet<Address> = transfers.iter().flat_map(|t| [t.from, t.to]).collect();
        return Schedule {
            batches: vec![(0..transfers.len()).collect()],
            accounts: accounts.into_iter().collect(),
        };
    }
    let (mut groups, accounts) = groups_and_accounts(transfers);
    // Largest first, each into the batch holding the fewest transfers so far (ties: the
    // lower batch), which keeps the batches within one group's size of each other.
    groups.sort_by_key(|group| Reverse(group.len()));
    let mut packed: Vec<Vec<usize>> = vec![Vec::new(); batches.min(groups.len())];
    let mut lightest: BinaryHeap<Reverse<(usize, usize)>> =
        (0..packed.len()).map(|batch| Reverse((0, batch))).collect();
    for group in groups {
        let Some(Reverse((load, batch))) = lightest.pop() else {
            break;
        };
        lightest.push(Reverse((load + group.len(), batch)));
        packed[batch].extend(group);
    }
    for batch in &mut packed {
        batch.sort_unstable();
    }
    packed.retain(|batch| !batch.is_empty());
    Schedule {
        batches: packed,
        accounts,
    }
}

/// Union-find over `0..n` with path halving and union by size.
struct DisjointSets {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl DisjointSets {
    fn new(n: usize) -> DisjointSets {
        DisjointSets {
            parent: (0..n).collect(),
            size: vec![1; n],
        }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        if self.size[a] < self.size[b] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b] = a;
        self.size[a] += self.size[b];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::primitives::transfer::Signature;
    use crate::core::primitives::Amount;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn transfer(from: u8, to: u8) -> Transfer {
        Transfer {
            chain_id: 1,
            from: Address([from; 32]),
            to: Address([to; 32]),
            amount: Amount::from_units(1),
            fee: Amount::from_units(1),
            nonce: 0,
            memo: Vec::new(),
            signature: Signature([0; 64]),
        }
    }

    #[test]
    fn transfers_sharing_an_account_share_a_group() {
        let block = [
            transfer(1, 2),
            transfer(3, 4),
            transfer(2, 5),
            transfer(6, 3),
            transfer(7, 7),
        ];
        assert_eq!(
            conflict_groups(&block),
            vec![vec![0, 2], vec![1, 3], vec![4]]
        );
    }

    fn accounts(transfers: &[Transfer], indices: &[usize]) -> HashSet<Address> {
        indices
            .iter()
            .flat_map(|&i| [transfers[i].from, transfers[i].to])
            .collect()
    }

    proptest! {
        /// Batches cover every transfer once, in block order within each, and no two
        /// batches share an account; the schedule lists every account touched, once.
        #[test]
        fn batches_partition_the_block_into_disjoint_accounts(
            edges in proptest::collection::vec((0u8..24, 0u8..24), 0..120),
            batches in 0usize..9,
        ) {
            let block: Vec<Transfer> = edges.iter().map(|&(f, t)| transfer(f, t)).collect();
            let schedule = independent_batches(&block, batches);
            let mut listed = schedule.accounts.clone();
            listed.sort_unstable();
            let touched: HashSet<Address> = accounts(&block, &(0..block.len()).collect::<Vec<_>>());
            let mut touched: Vec<Address> = touched.into_iter().collect();
            touched.sort_unstable();
            prop_assert_eq!(listed, touched);
            let packed = schedule.batches;
            prop_assert!(packed.len() <= batches.max(1));
            let mut seen: Vec<usize> = packed.iter().flatten().copied().collect();
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..block.len()).collect::<Vec<_>>());
            for batch in &packed {
                prop_assert!(batch.windows(2).all(|w| w[0] < w[1]));
            }
            for (i, a) in packed.iter().enumerate() {
                for b in &packed[i + 1..] {
                    prop_assert!(accounts(&block, a).is_disjoint(&accounts(&block, b)));
                }
            }
        }
    }
}
