//! Checking a state-tree page that came from elsewhere (a peer, during snapshot sync) against
//! the hash it was asked for, and finding the pages below a page. No I/O.
//!
//! A page is asked for by its top node's hash, which the asker already trusts: the state root
//! of a header it checked, or a child hash inside a page it checked before. A page is taken
//! only if
//! - it holds its top node;
//! - every node it holds is reached from the top through nodes it holds (no stray node, no
//!   node twice);
//! - every child it does not hold sits at a page-top depth (a multiple of [`PAGE_DEPTH`]):
//!   that is where a reader ([`super::smt`]'s `find_node`) looks for a child's own page, so
//!   anywhere else the child would be missing;
//! - it holds at most [`MAX_PAGE_NODES`] nodes, none deeper than 256 levels.
//!
//! Then every node hashes up, level by level, to the trusted top: each is a node of the tree
//! the root commits to. A peer cannot lie about an account through a page; it can only lay
//! the same nodes out differently from the pages this node would write, which readers do not
//! mind (they look in the parent's page first, then in the page a page-top node tops).
use super::smt::{SmtNode, SmtPage, EMPTY_ROOT, PAGE_DEPTH};
use crate::core::primitives::Hash256;
use std::sync::Arc;

/// Most nodes a page may hold. A page written here holds at most 255 nodes above its
/// page-top depth, 256 at it and twice the inlining budget below: about 770.
pub const MAX_PAGE_NODES: usize = 1024;

/// A page's place in the tree: its top node's hash and depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PageTop {
    /// The top node's hash (the page's key in a store).
    pub hash: Hash256,
    /// The top node's depth: 0 for the root, else a multiple of [`PAGE_DEPTH`].
    pub depth: u16,
}

impl PageTop {
    /// The root page of the tree with root `root`.
    pub fn root(root: Hash256) -> PageTop {
        PageTop {
            hash: root,
            depth: 0,
        }
    }
}

/// Why a page is not the page asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageFault {
    /// No node at all.
    #[error("the page holds no node")]
    Empty,
    /// More nodes than any page holds.
    #[error("the page holds {0} nodes, more than the {MAX_PAGE_NODES} a page may hold")]
    TooLarge(usize),
    /// The node asked for is not there.
    #[error("the page does not hold the node it was asked for")]
    NoTop,
    /// A child that must be in the page is not.
    #[error("a node {depth} levels down the tree is missing from the page")]
    MissingNode {
        /// Depth of the missing node.
        depth: usize,
    },
    /// Nodes that hang from nothing in the page, or a node twice.
    #[error("{0} of the page's nodes are not below its top (or are there twice)")]
    Stray(usize),
    /// The page was asked for at a depth no page tops.
    #[error("no page tops depth {0}")]
    BadDepth(u16),
    /// A path longer than an address.
    #[error("the page goes deeper than 256 levels")]
    TooDeep,
}

/// Checks `nodes`, a peer's answer for the page `top` (see the module docs). Returns the page
/// and the pages right below it, which the tree also needs.
pub fn check_page(
    top: &PageTop,
    nodes: Vec<SmtNode>,
) -> Result<(Arc<SmtPage>, Vec<PageTop>), PageFault> {
    if nodes.is_empty() {
        return Err(PageFault::Empty);
    }
    if nodes.len() > MAX_PAGE_NODES {
        return Err(PageFault::TooLarge(nodes.len()));
    }
    let sent = nodes.len();
    let page = SmtPage::from_nodes(nodes);
    let (reached, below) = walk_page(&page, top)?;
    if reached != sent {
        return Err(PageFault::Stray(sent - reached.min(sent)));
    }
    Ok((Arc::new(page), below))
}

/// The pages right below `page`, whose top is `top` (a page this node holds: its layout is
/// trusted, but the walk checks it all the same).
pub fn pages_below(page: &SmtPage, top: &PageTop) -> Result<Vec<PageTop>, PageFault> {
    walk_page(page, top).map(|(_, below)| below)
}

/// Walks `page` from `top` through the nodes it holds: how many it reached, and the children
/// it does not hold (each at a page-top depth, or the page is faulty).
fn walk_page(page: &SmtPage, top: &PageTop) -> Result<(usize, Vec<PageTop>), PageFault> {
    if !usize::from(top.depth).is_multiple_of(PAGE_DEPTH) {
        return Err(PageFault::BadDepth(top.depth));
    }
    if page.get(&top.hash).is_none() {
        return Err(PageFault::NoTop);
    }
    let mut below = Vec::new();
    let mut reached = 0;
    let mut pending = vec![(top.hash, usize::from(top.depth))];
    while let Some((hash, depth)) = pending.pop() {
        let node = page.get(&hash).expect("only held nodes are pending");
        reached += 1;
        if reached > page.len() {
            // A node reached twice: no tree does that.
            return Err(PageFault::Stray(reached - page.len()));
        }
        let SmtNode::Internal { left, right } = node else {
            continue;
        };
        let child_depth = depth + 1;
        if child_depth > 256 {
            return Err(PageFault::TooDeep);
        }
        for child in [*left, *right] {
            if child == EMPTY_ROOT {
                continue;
            }
            if page.get(&child).is_some() {
                pending.push((child, child_depth));
            } else if child_depth.is_multiple_of(PAGE_DEPTH) {
                below.push(PageTop {
                    hash: child,
                    depth: child_depth as u16,
                });
            } else {
                return Err(PageFault::MissingNode { depth: child_depth });
            }
        }
    }
    Ok((reached, below))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::primitives::{tagged_hash, Address, Amount};
    use crate::core::state::memory::MemoryState;
    use crate::core::state::smt::{all_accounts, test_address, update_root};
    use crate::core::state::{Account, StateView};

    /// A tree of `count` accounts built in a few blocks, with every page it stored.
    fn tree(count: u16) -> (Hash256, MemoryState) {
        let mut state = MemoryState::default();
        let mut root = EMPTY_ROOT;
        // Some crowded (deep, inlined subtrees), the rest spread at random.
        let addresses: Vec<Address> = (0..count)
            .map(|i| match i {
                0..1024 if i % 3 == 0 => test_address(i.to_be_bytes(), true),
                _ => Address(tagged_hash("cairn/test-page", &[&i.to_be_bytes()])),
            })
            .collect();
        for chunk in addresses.chunks(700) {
            let mut updates: Vec<(Address, Account)> = chunk
                .iter()
                .map(|a| {
                    (
                        *a,
                        Account {
                            balance: Amount::from_units(u64::from(a.as_bytes()[5]) + 1),
                            nonce: 1,
                        },
                    )
                })
                .collect();
            updates.sort_by_key(|(a, _)| *a);
            let update = update_root(&state, root, &updates).unwrap();
            root = update.root;
            state.insert_pages(update.new_pages);
        }
        (root, state)
    }

    /// Copies the tree under `root` page by page, checking each page as a peer's answer.
    fn copy_checked(root: Hash256, from: &MemoryState) -> MemoryState {
        let mut copy = MemoryState::default();
        let mut pending = vec![PageTop::root(root)];
        while let Some(top) = pending.pop() {
            let page = from.smt_page(&top.hash).unwrap().unwrap();
            let nodes = page.nodes().cloned().collect();
            let (checked, below) = check_page(&top, nodes).unwrap();
            assert_eq!(pages_below(&checked, &top).unwrap(), below);
            copy.insert_pages([(top.hash, checked)]);
            pending.extend(below);
        }
        copy
    }

    #[test]
    fn every_page_of_a_tree_checks_and_the_copy_reads_the_same() {
        for count in [1, 2, 40, 3_000] {
            let (root, state) = tree(count);
            let copy = copy_checked(root, &state);
            assert_eq!(
                all_accounts(&copy, root).unwrap(),
                all_accounts(&state, root).unwrap()
            );
            assert_eq!(all_accounts(&copy, root).unwrap().len(), usize::from(count));
        }
    }

    /// The root page of a 3,000-account tree, and its top.
    fn root_page() -> (PageTop, Vec<SmtNode>, MemoryState) {
        let (root, state) = tree(3_000);
        let page = state.smt_page(&root).unwrap().unwrap();
        (PageTop::root(root), page.nodes().cloned().collect(), state)
    }

    #[test]
    fn a_page_without_its_top_or_asked_at_the_wrong_place_is_refused() {
        let (top, nodes, state) = root_page();
        let mut other = top;
        other.hash[0] ^= 1;
        assert_eq!(check_page(&other, nodes.clone()), Err(PageFault::NoTop));
        let mut shallow = top;
        shallow.depth = 3;
        assert_eq!(
            check_page(&shallow, nodes.clone()),
            Err(PageFault::BadDepth(3))
        );
        assert_eq!(check_page(&top, Vec::new()), Err(PageFault::Empty));
        // A page from elsewhere in the tree is not the root page.
        let (_, below) = check_page(&top, nodes).unwrap();
        let child = state.smt_page(&below[0].hash).unwrap().unwrap();
        assert_eq!(
            check_page(&top, child.nodes().cloned().collect()),
            Err(PageFault::NoTop)
        );
    }

    #[test]
    fn a_changed_dropped_stray_or_repeated_node_is_refused() {
        let (top, nodes, _) = root_page();
        // A changed leaf or internal node no longer hashes to its parent's child: the parent
        // misses a node (or, for the top, the page misses its top).
        for at in 0..nodes.len() {
            let mut changed = nodes.clone();
            match &mut changed[at] {
                SmtNode::Leaf { account, .. } => account.nonce += 1,
                SmtNode::Internal { left, .. } => left[31] ^= 1,
            }
            assert!(check_page(&top, changed).is_err(), "node {at} changed");
        }
        // A node dropped above the page-top depth.
        let top_node = nodes.iter().position(|n| n.hash() == top.hash).unwrap();
        let SmtNode::Internal { left, .. } = &nodes[top_node] else {
            panic!("the root of 3,000 accounts is internal")
        };
        let dropped: Vec<SmtNode> = nodes
            .iter()
            .filter(|n| n.hash() != *left)
            .cloned()
            .collect();
        assert_eq!(
            check_page(&top, dropped),
            Err(PageFault::MissingNode { depth: 1 })
        );
        // A stray leaf, and a node sent twice.
        let mut stray = nodes.clone();
        stray.push(SmtNode::Leaf {
            address: test_address([9, 9], false),
            account: Account {
                balance: Amount::from_units(1),
                nonce: 0,
            },
        });
        assert_eq!(check_page(&top, stray), Err(PageFault::Stray(1)));
        let mut twice = nodes.clone();
        twice.push(nodes[0].clone());
        assert_eq!(check_page(&top, twice), Err(PageFault::Stray(1)));
        let mut huge = nodes;
        let filler = huge[0].clone();
        huge.resize(MAX_PAGE_NODES + 1, filler);
        assert_eq!(
            check_page(&top, huge),
            Err(PageFault::TooLarge(MAX_PAGE_NODES + 1))
        );
    }

    #[test]
    fn a_page_that_merges_its_children_in_still_reads_the_same() {
        // A peer may lay the same nodes out otherwise: the root page with one child page
        // merged in is still the tree the root commits to.
        let (top, mut nodes, state) = root_page();
        let (_, below) = check_page(&top, nodes.clone()).unwrap();
        let child = state.smt_page(&below[0].hash).unwrap().unwrap();
        nodes.extend(child.nodes().cloned());
        let (merged, merged_below) = check_page(&top, nodes).unwrap();
        assert_eq!(
            merged_below.len(),
            below.len() - 1 + pages_below(&child, &below[0]).unwrap().len()
        );
        let mut copy = MemoryState {
            pages: state.pages.clone(),
            ..MemoryState::default()
        };
        copy.pages.remove(&below[0].hash);
        copy.pages.insert(top.hash, merged);
        assert_eq!(
            all_accounts(&copy, top.hash).unwrap(),
            all_accounts(&state, top.hash).unwrap()
        );
    }
}
