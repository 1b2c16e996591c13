//! Fetching the state tree under one block's state root from several peers, page by page:
//! the pages still wanted, which request asked for which, and what each answer is worth.
//! No I/O: the network logic (`machine::snapshot`) sends the requests, stores the pages and
//! decides what a fault costs the peer.
//!
//! ```text
//!   wanted: [root]  ──GetStatePages──► peer A ──► root page, checked against the root
//!   wanted: [p1 p2 … p256] (the page tops the root page names; those already held are
//!            walked locally instead)  ──► peers A, B, C in turn, up to MAX_STATE_PAGES each
//!   … until nothing is wanted or asked: every page of the tree is stored
//! ```
//! Every page is checked against the hash it was asked for (`core::state::pages`) before it
//! is handed out for storing, so a stored page is always a page of the tree the root commits
//! to, whoever sent it. A page a peer did not have, or whose request failed, is asked of
//! another peer; a page that fails its check is the sender's lie and is asked of another.
//!
//! # Invariants
//! - Every page top is in exactly one of `unseen`, `wanted` or one request of `asked`, until
//!   its page is stored (or found held).
//! - A page is never asked again of a peer that failed to deliver it (`tried`).
use crate::core::chain::BlockIndexEntry;
use crate::core::primitives::Hash256;
use crate::core::state::pages::{check_page, pages_below, PageFault, PageTop};
use crate::core::state::{SmtNode, SmtPage, StateStoreError, StateView, EMPTY_ROOT};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// The state fetch of one block, for peers identified by `P`.
#[derive(Clone, Debug)]
pub struct StateFetch<P> {
    pivot: BlockIndexEntry,
    /// Page tops named by a checked page, not yet looked up in the local store.
    unseen: Vec<PageTop>,
    /// Page tops to ask for, breadth first.
    wanted: VecDeque<PageTop>,
    /// Requests in flight: who was asked, and for which pages.
    asked: BTreeMap<u64, (P, Vec<PageTop>)>,
    /// Peers that answered without a page, failed its request or sent a bad one.
    tried: BTreeMap<Hash256, BTreeSet<P>>,
    progress: FetchProgress,
}

/// How far a state fetch is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FetchProgress {
    /// Pages fetched and checked.
    pub pages_fetched: u64,
    /// Pages found already held.
    pub pages_held: u64,
    /// Accounts in the pages fetched.
    pub accounts: u64,
    /// Page tops known to be still needed (wanted, asked or not yet looked up).
    pub pages_left: u64,
}

/// What an answer brought.
#[derive(Debug, Default)]
pub struct Received {
    /// Checked pages, to store.
    pub pages: Vec<(Hash256, Arc<SmtPage>)>,
    /// The first page that failed its check, and why: the sender lied.
    pub fault: Option<(PageTop, PageFault)>,
}

impl<P: Ord + Clone> StateFetch<P> {
    /// A fetch of the state under `pivot`'s state root.
    pub fn new(pivot: BlockIndexEntry) -> StateFetch<P> {
        let root = *pivot.header.state_root.as_bytes();
        StateFetch {
            pivot,
            unseen: if root == EMPTY_ROOT {
                Vec::new()
            } else {
                vec![PageTop::root(root)]
            },
            wanted: VecDeque::new(),
            asked: BTreeMap::new(),
            tried: BTreeMap::new(),
            progress: FetchProgress::default(),
        }
    }

    /// The block whose state is fetched.
    pub fn pivot(&self) -> &BlockIndexEntry {
        &self.pivot
    }

    /// How far the fetch is.
    pub fn progress(&self) -> FetchProgress {
        let asked: usize = self.asked.values().map(|(_, tops)| tops.len()).sum();
        FetchProgress {
            pages_left: (self.unseen.len() + self.wanted.len() + asked) as u64,
            ..self.progress
        }
    }

    /// Whether every page of the tree is stored.
    pub fn is_done(&self) -> bool {
        self.unseen.is_empty() && self.wanted.is_empty() && self.asked.is_empty()
    }

    /// Looks the page tops named since the last call up in `view`: a page already held (from
    /// an earlier, interrupted fetch, or shared with the genesis state) is walked there, and
    /// only what is missing is wanted from peers.
    pub fn look_up_held<V: StateView + ?Sized>(&mut self, view: &V) -> Result<(), StateStoreError> {
        while let Some(top) = self.unseen.pop() {
            let held = view.smt_page(&top.hash)?;
            // A held page that does not walk (a damaged store) is fetched again.
            match held.map(|page| pages_below(&page, &top)) {
                Some(Ok(below)) => {
                    self.progress.pages_held += 1;
                    self.unseen.extend(below);
                }
                _ => self.wanted.push_back(top),
            }
        }
        Ok(())
    }

    /// Whether some wanted page was not tried by `peer` yet.
    pub fn has_work_for(&self, peer: &P) -> bool {
        self.wanted
            .iter()
            .any(|top| self.tried.get(&top.hash).is_none_or(|t| !t.contains(peer)))
    }

    /// Up to `max` page tops for `peer` to fetch under request `id`: wanted, and not
    /// already tried by `peer`.
    pub fn next_batch(&mut self, peer: &P, id: u64, max: usize) -> Vec<Hash256> {
        let mut batch = Vec::new();
        let mut skipped = VecDeque::new();
        while batch.len() < max {
            let Some(top) = self.wanted.pop_front() else {
                break;
            };
            if self.tried.get(&top.hash).is_some_and(|t| t.contains(peer)) {
                skipped.push_back(top);
            } else {
                batch.push(top);
            }
        }
        // Pages the peer tried go back to the front, in their order.
        while let Some(top) = skipped.pop_back() {
            self.wanted.push_front(top);
        }
        let hashes = batch.iter().map(|top| top.hash).collect();
        if !batch.is_empty() {
            self.asked.insert(id, (peer.clone(), batch));
        }
        hashes
    }

    /// How many pages request `id` to `peer` asked for (0 if it is not one of ours).
    pub fn asked_count(&self, peer: &P, id: u64) -> usize {
        match self.asked.get(&id) {
            Some((asker, tops)) if asker == peer => tops.len(),
            _ => 0,
        }
    }

    /// `peer`'s answer to request `id`: checks each page against the hash asked for. Pages
    /// left out, or after the first bad one, are wanted again (not from `peer` if it left
    /// them out empty or lied).
    pub fn receive(&mut self, peer: &P, id: u64, pages: Vec<Vec<SmtNode>>) -> Received {
        let mut received = Received::default();
        let Some((asker, tops)) = self.asked.remove(&id) else {
            return received;
        };
        if asker != *peer {
            self.asked.insert(id, (asker, tops));
            return received;
        }
        let mut pages = pages.into_iter();
        let mut tops = tops.into_iter();
        // Pages the answer left out (it stopped early, at its size limit: no fault) or that
        // came after a lie (nothing more of it is taken): wanted again, first.
        let mut again = Vec::new();
        for top in tops.by_ref() {
            let Some(nodes) = pages.next() else {
                again.push(top);
                break;
            };
            if nodes.is_empty() {
                self.tried_by(peer, top);
                continue;
            }
            match check_page(&top, nodes) {
                Ok((page, below)) => {
                    self.progress.pages_fetched += 1;
                    self.progress.accounts += page
                        .nodes()
                        .filter(|node| matches!(node, SmtNode::Leaf { .. }))
                        .count() as u64;
                    self.unseen.extend(below);
                    received.pages.push((top.hash, page));
                }
                Err(fault) => {
                    self.tried_by(peer, top);
                    received.fault = Some((top, fault));
                    break;
                }
            }
        }
        again.extend(tops);
        for top in again.into_iter().rev() {
            self.wanted.push_front(top);
        }
        received
    }

    /// Request `id` failed or timed out: its pages are wanted again, from other peers.
    pub fn fail(&mut self, peer: &P, id: u64) {
        let Some((asker, tops)) = self.asked.remove(&id) else {
            return;
        };
        if asker != *peer {
            self.asked.insert(id, (asker, tops));
            return;
        }
        for top in tops {
            self.tried_by(peer, top);
        }
    }

    fn tried_by(&mut self, peer: &P, top: PageTop) {
        self.tried.entry(top.hash).or_default().insert(peer.clone());
        self.wanted.push_back(top);
    }

    /// Whether some wanted page was tried by every peer in `peers` (and none is asking for
    /// it): nobody here can deliver the tree.
    pub fn is_stuck<'a>(&self, peers: impl Iterator<Item = &'a P>) -> bool
    where
        P: 'a,
    {
        let peers: Vec<&P> = peers.collect();
        self.wanted.iter().any(|top| {
            self.tried
                .get(&top.hash)
                .is_some_and(|tried| peers.iter().all(|p| tried.contains(*p)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::chain::BlockStatus;
    use crate::core::consensus::target::Work;
    use crate::core::primitives::{tagged_hash, Address, Amount, Header, StateRoot};
    use crate::core::state::memory::MemoryState;
    use crate::core::state::smt::update_root;
    use crate::core::state::{all_accounts, Account};

    fn tree(count: u32) -> (Hash256, MemoryState) {
        let mut state = MemoryState::default();
        let mut updates: Vec<(Address, Account)> = (0..count)
            .map(|i| {
                (
                    Address(tagged_hash("cairn/test-fetch", &[&i.to_be_bytes()])),
                    Account {
                        balance: Amount::from_units(u64::from(i) + 1),
                        nonce: 0,
                    },
                )
            })
            .collect();
        updates.sort_by_key(|(a, _)| *a);
        let update = update_root(&state, EMPTY_ROOT, &updates).unwrap();
        state.insert_pages(update.new_pages);
        (update.root, state)
    }

    fn pivot(root: Hash256) -> BlockIndexEntry {
        let mut header = Header::from_bytes(&[0; 116]);
        header.state_root = StateRoot(root);
        BlockIndexEntry {
            header,
            chain_work: Work::default(),
            asert_clock: 0,
            status: BlockStatus::Valid,
        }
    }

    /// What an honest peer holding `state` answers.
    fn answer(state: &MemoryState, tops: &[Hash256]) -> Vec<Vec<SmtNode>> {
        tops.iter()
            .map(|top| {
                state
                    .smt_page(top)
                    .unwrap()
                    .map(|page| page.nodes().cloned().collect())
                    .unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn a_tree_fetched_from_two_peers_and_a_liar_reads_the_same() {
        let (root, honest) = tree(5_000);
        let mut fetch = StateFetch::<&str>::new(pivot(root));
        let mut local = MemoryState::default();
        let mut id = 0;
        let mut lies = 0;
        while !fetch.is_done() {
            fetch.look_up_held(&local).unwrap();
            for peer in ["liar", "a", "b"] {
                id += 1;
                let tops = fetch.next_batch(&peer, id, 16);
                if tops.is_empty() {
                    continue;
                }
                let mut pages = answer(&honest, &tops);
                if peer == "liar" {
                    // Every account a little richer.
                    for page in &mut pages {
                        for node in page.iter_mut() {
                            if let SmtNode::Leaf { account, .. } = node {
                                account.nonce += 1;
                            }
                        }
                    }
                }
                let received = fetch.receive(&peer, id, pages);
                if let Some((_, fault)) = received.fault {
                    assert_eq!(peer, "liar", "{fault}");
                    lies += 1;
                }
                local.insert_pages(received.pages);
            }
        }
        assert!(lies >= 1);
        assert_eq!(
            all_accounts(&local, root).unwrap(),
            all_accounts(&honest, root).unwrap()
        );
        let progress = fetch.progress();
        assert_eq!(progress.accounts, 5_000);
        assert_eq!(progress.pages_left, 0);
        assert_eq!(progress.pages_fetched as usize, local.pages.len());
    }

    #[test]
    fn held_pages_are_walked_not_fetched_and_gaps_are_asked_again_elsewhere() {
        let (root, honest) = tree(20_000);
        // The local store holds everything but one page below the root.
        let mut local = honest.clone();
        let root_page = honest.smt_page(&root).unwrap().unwrap();
        let below = pages_below(&root_page, &PageTop::root(root)).unwrap();
        let missing = below[3].hash;
        local.pages.remove(&missing);
        let mut fetch = StateFetch::<&str>::new(pivot(root));
        fetch.look_up_held(&local).unwrap();
        assert_eq!(fetch.progress().pages_left, 1);
        // Peer "a" lacks it, and its request to "b" fails: "c" is asked, and delivers.
        assert_eq!(fetch.next_batch(&"a", 1, 8), vec![missing]);
        assert!(fetch.receive(&"a", 1, vec![Vec::new()]).pages.is_empty());
        assert!(fetch.next_batch(&"a", 2, 8).is_empty());
        assert_eq!(fetch.next_batch(&"b", 3, 8), vec![missing]);
        fetch.fail(&"b", 3);
        assert!(fetch.is_stuck(["a", "b"].iter()));
        assert!(!fetch.is_stuck(["a", "b", "c"].iter()));
        assert_eq!(fetch.next_batch(&"c", 4, 8), vec![missing]);
        // An answer from someone else under that id is not taken.
        assert!(fetch
            .receive(&"a", 4, answer(&honest, &[missing]))
            .pages
            .is_empty());
        let received = fetch.receive(&"c", 4, answer(&honest, &[missing]));
        assert_eq!(received.pages.len(), 1);
        local.insert_pages(received.pages);
        fetch.look_up_held(&local).unwrap();
        assert!(fetch.is_done());
    }

    #[test]
    fn an_answer_cut_short_keeps_the_rest_wanted_without_blame() {
        let (root, honest) = tree(20_000);
        let mut fetch = StateFetch::<&str>::new(pivot(root));
        let mut local = MemoryState::default();
        fetch.look_up_held(&local).unwrap();
        let tops = fetch.next_batch(&"a", 1, 8);
        local.insert_pages(fetch.receive(&"a", 1, answer(&honest, &tops)).pages);
        fetch.look_up_held(&local).unwrap();
        let tops = fetch.next_batch(&"a", 2, 8);
        assert_eq!(tops.len(), 8);
        let received = fetch.receive(&"a", 2, answer(&honest, &tops[..3]));
        assert_eq!(received.pages.len(), 3);
        assert!(received.fault.is_none());
        // The five left out are asked of the same peer again, first.
        assert_eq!(fetch.next_batch(&"a", 3, 5), tops[3..].to_vec());
    }
}
