//! The state root: a sparse merkle tree over all accounts, keyed by address, and the pages it
//! is stored in. No I/O.
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
//! # Pages
//!
//! The tree is stored in pages, not node by node: a page holds the nodes of one subtree from
//! its top, at a depth that is a multiple of [`PAGE_DEPTH`], down to the next such depth,
//! plus the leaves hanging right at that depth. An internal node at that depth tops the next
//! page, unless its subtree is small: then it stays in this page too (a page of two or three
//! nodes would cost the store a record of its own). A page is stored under its top node's
//! hash: content addressed and never overwritten, so every earlier root stays readable and
//! undoing a block is returning to its parent's root. (An internal node's hash fixes its
//! depth, so it fixes the page's extent.)
//!
//! Why pages: a block that touches `k` of `n` accounts creates about `k * log2(n / k)` new
//! nodes, and the store pays a fixed cost per record it writes (about 8 µs in sled, whatever
//! the record's size up to a few KB). Pages of 8 levels cut the records written per block
//! about tenfold (docs/BENCHMARKS.md); reads need about `log2(n) / 8` page lookups, most of
//! them answered by the store's cache.
//!
//! Updating `k` accounts among `n` reads and writes about `k * log2(n)` nodes (in about
//! `k * log2(n) / 8` pages), never the whole tree.
//!
//! # Invariants
//! - An internal node never has two empty children, nor one empty child and a leaf child.
//! - Updates never delete accounts (an emptied account stays as a zero-balance leaf).
//! - Every node of a stored tree is in the page of its nearest page top at or above it, or,
//!   for a leaf at a page-top depth or a small subtree topped there (at most
//!   [`INLINE_MAX_NODES`] nodes), in its parent's page. Readers look in the parent's page
//!   first, so either placement reads the same, and stores written before small subtrees
//!   were inlined read as they did.
use super::account::Account;
use super::proof::{AccountProof, Terminal};
use super::{StateStoreError, StateView};
use crate::core::primitives::{tagged_hash, Address, Hash256};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The root of the tree with no accounts.
pub const EMPTY_ROOT: Hash256 = [0u8; 32];

/// Levels of the tree held in one page.
pub const PAGE_DEPTH: usize = 8;

/// Below this depth, subtrees with many updates are computed on separate threads.
const PARALLEL_DEPTH: usize = 4;
/// Fewest updates in a subtree worth a separate thread.
const PARALLEL_MIN_UPDATES: usize = 256;

/// A tree node.
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
    /// The node's hash.
    pub fn hash(&self) -> Hash256 {
        match self {
            SmtNode::Leaf { address, account } => account.leaf_hash(address),
            SmtNode::Internal { left, right } => tagged_hash("cairn/smt-node", &[left, right]),
        }
    }
}

/// The stored unit of the tree: the nodes of a subtree down [`PAGE_DEPTH`] levels (see the
/// module docs), sorted by hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtPage {
    nodes: Vec<(Hash256, SmtNode)>,
    /// A hash table over `nodes`, built with the page: slot `i` holds one more than the
    /// position of a node whose hash prefix, masked, is `i` or a little below it (linear
    /// probing), or 0 for none. Every step of a walk down the tree looks a node up in its
    /// page, so this is the tree's hottest read (a binary search was 20% of validation).
    /// Twice as many slots as nodes keeps probes short; hashes are SHA-256 outputs, and one
    /// page holds a few hundred nodes at most, which bounds a ground collision's cost.
    slots: Vec<u32>,
}

fn hash_prefix(hash: &Hash256) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_be_bytes(first)
}

impl SmtPage {
    /// A page from its nodes and their hashes (which the caller has just computed).
    fn from_hashed(mut nodes: Vec<(Hash256, SmtNode)>) -> SmtPage {
        // The prefix first: it settles nearly every comparison without a byte-wise one.
        nodes.sort_unstable_by(|a, b| (hash_prefix(&a.0), &a.0).cmp(&(hash_prefix(&b.0), &b.0)));
        nodes.dedup_by(|a, b| a.0 == b.0);
        let mut slots = vec![0u32; (nodes.len() * 2).next_power_of_two().max(2)];
        let mask = slots.len() - 1;
        for (position, (hash, _)) in nodes.iter().enumerate() {
            let mut slot = hash_prefix(hash) as usize & mask;
            while slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            slots[slot] = position as u32 + 1;
        }
        SmtPage { nodes, slots }
    }

    /// A page from stored nodes, hashing each.
    pub fn from_nodes(nodes: Vec<SmtNode>) -> SmtPage {
        SmtPage::from_hashed(nodes.into_iter().map(|n| (n.hash(), n)).collect())
    }

    /// The node with hash `hash`, if it is in this page.
    pub fn get(&self, hash: &Hash256) -> Option<&SmtNode> {
        let mask = self.slots.len() - 1;
        let mut slot = hash_prefix(hash) as usize & mask;
        loop {
            let position = self.slots[slot];
            if position == 0 {
                return None;
            }
            let (found, node) = &self.nodes[position as usize - 1];
            if found == hash {
                return Some(node);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// The page's nodes, sorted by hash: what is stored (hashes are recomputed on load).
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = &SmtNode> {
        self.nodes.iter().map(|(_, n)| n)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the page holds no node (never true of a stored page).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// The outcome of updating the tree: the new root and the pages to store for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SmtUpdate {
    /// The new root.
    pub root: Hash256,
    /// Pages created by the update, keyed by their top node's hash.
    pub new_pages: Vec<(Hash256, Arc<SmtPage>)>,
}

/// Bit `depth` of `address`, most significant first: which child its path takes there.
pub(crate) fn bit(address: &Address, depth: usize) -> bool {
    (address.as_bytes()[depth / 8] >> (7 - depth % 8)) & 1 == 1
}

fn missing(hash: &Hash256) -> StateStoreError {
    StateStoreError::corrupt(format!("state tree node {} is missing", hex::encode(hash)))
}

fn too_deep() -> StateStoreError {
    StateStoreError::corrupt("the state tree is deeper than 256 levels")
}

/// Where [`find_node`] found a node: in its parent's page (borrowed: every walk passes the
/// top pages, so cloning their `Arc` at each level would contend on its counter), or in a
/// page it tops, just read from the view.
enum Holder<'p> {
    Parent(&'p Arc<SmtPage>),
    Entered(Arc<SmtPage>),
}

impl Holder<'_> {
    fn page(&self) -> &Arc<SmtPage> {
        match self {
            Holder::Parent(page) => page,
            Holder::Entered(page) => page,
        }
    }
}

/// Finds node `hash`, which sits at `depth`, given the page its parent is in (`None` for the
/// root): in that page, or else, at a page-top depth, in the page it tops. Returns the node
/// and where it was.
fn find_node<'p, V: StateView + ?Sized>(
    view: &V,
    hash: &Hash256,
    depth: usize,
    parent_page: Option<&'p Arc<SmtPage>>,
) -> Result<(SmtNode, Holder<'p>), StateStoreError> {
    if let Some(page) = parent_page {
        if let Some(node) = page.get(hash) {
            return Ok((node.clone(), Holder::Parent(page)));
        }
    }
    if depth.is_multiple_of(PAGE_DEPTH) {
        let page = view.smt_page(hash)?.ok_or_else(|| missing(hash))?;
        let node = page.get(hash).cloned().ok_or_else(|| {
            StateStoreError::corrupt(format!(
                "state tree page {} does not hold its top node",
                hex::encode(hash)
            ))
        })?;
        return Ok((node, Holder::Entered(page)));
    }
    Err(missing(hash))
}

/// The account at `address` in the tree rooted at `root`, if it has one.
pub fn account_at<V: StateView + ?Sized>(
    view: &V,
    root: Hash256,
    address: &Address,
) -> Result<Option<Account>, StateStoreError> {
    Ok(match walk(view, root, address, |_| {})? {
        Terminal::Account(account) => Some(account),
        Terminal::Empty | Terminal::Other { .. } => None,
    })
}

/// The proof of the account at `address` (or of its absence) under `root`: see
/// [`super::proof`].
pub fn prove<V: StateView + ?Sized>(
    view: &V,
    root: Hash256,
    address: &Address,
) -> Result<AccountProof, StateStoreError> {
    let mut siblings = Vec::new();
    let terminal = walk(view, root, address, |sibling| siblings.push(sibling))?;
    Ok(AccountProof { siblings, terminal })
}

/// Walks from `root` along `address`'s bits to what the path ends in, handing each level's
/// sibling, root first, to `sibling`.
fn walk<V: StateView + ?Sized>(
    view: &V,
    root: Hash256,
    address: &Address,
    mut sibling: impl FnMut(Hash256),
) -> Result<Terminal, StateStoreError> {
    let mut hash = root;
    // The page the walk is in, replaced only when the walk enters a new one.
    let mut page: Option<Arc<SmtPage>> = None;
    for depth in 0..=256 {
        if hash == EMPTY_ROOT {
            return Ok(Terminal::Empty);
        }
        let (node, holder) = find_node(view, &hash, depth, page.as_ref())?;
        if let Holder::Entered(entered) = holder {
            page = Some(entered);
        }
        match node {
            SmtNode::Leaf {
                address: found,
                account,
            } if found == *address => return Ok(Terminal::Account(account)),
            SmtNode::Leaf {
                address: found,
                account,
            } => {
                return Ok(Terminal::Other {
                    address: found,
                    account,
                })
            }
            SmtNode::Internal { left, right } => {
                let (next, other) = if bit(address, depth) {
                    (right, left)
                } else {
                    (left, right)
                };
                sibling(other);
                hash = next;
            }
        }
    }
    Err(too_deep())
}

/// The accounts at `addresses` (sorted, unique) in the tree rooted at `root`, in their order:
/// [`account_at`] for each, but in one descent that reads every node their paths share once
/// (a block's 3,400 accounts among 10,000 share most of their paths' nodes), on all cores
/// near the top.
pub fn accounts_at<V: StateView + ?Sized>(
    view: &V,
    root: Hash256,
    addresses: &[Address],
) -> Result<Vec<Option<Account>>, StateStoreError> {
    debug_assert!(addresses.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
    let mut found = vec![None; addresses.len()];
    read_subtree(view, root, 0, addresses, &mut found, None)?;
    Ok(found)
}

/// [`accounts_at`] below node `hash` at `depth`, whose parent is in `parent_page`: fills
/// `found` (as long as `addresses`) for the addresses that have an account there.
fn read_subtree<V: StateView + ?Sized>(
    view: &V,
    hash: Hash256,
    depth: usize,
    addresses: &[Address],
    found: &mut [Option<Account>],
    parent_page: Option<&Arc<SmtPage>>,
) -> Result<(), StateStoreError> {
    if addresses.is_empty() || hash == EMPTY_ROOT {
        return Ok(());
    }
    if depth > 256 {
        return Err(too_deep());
    }
    let (node, holder) = find_node(view, &hash, depth, parent_page)?;
    match node {
        SmtNode::Leaf { address, account } => {
            if let Ok(at) = addresses.binary_search(&address) {
                found[at] = Some(account);
            }
            Ok(())
        }
        SmtNode::Internal { left, right } => {
            let page = holder.page();
            let split = addresses.partition_point(|address| !bit(address, depth));
            let (left_addresses, right_addresses) = addresses.split_at(split);
            let (left_found, right_found) = found.split_at_mut(split);
            let mut read_left = || {
                read_subtree(
                    view,
                    left,
                    depth + 1,
                    left_addresses,
                    left_found,
                    Some(page),
                )
            };
            let mut read_right = || {
                read_subtree(
                    view,
                    right,
                    depth + 1,
                    right_addresses,
                    right_found,
                    Some(page),
                )
            };
            if depth < PARALLEL_DEPTH && addresses.len() >= PARALLEL_MIN_UPDATES {
                let (left, right) = rayon::join(read_left, read_right);
                left.and(right)
            } else {
                read_left()?;
                read_right()
            }
        }
    }
}

/// Every account in the tree rooted at `root`, sorted by address (reads the whole tree).
pub fn all_accounts<V: StateView + ?Sized>(
    view: &V,
    root: Hash256,
) -> Result<Vec<(Address, Account)>, StateStoreError> {
    let mut out = Vec::new();
    // Right child pushed first, so leaves come out in address order.
    let mut stack: Vec<(Hash256, usize, Option<Arc<SmtPage>>)> = vec![(root, 0, None)];
    while let Some((hash, depth, page)) = stack.pop() {
        if hash == EMPTY_ROOT {
            continue;
        }
        if depth > 256 {
            return Err(too_deep());
        }
        match find_node(view, &hash, depth, page.as_ref())? {
            (SmtNode::Leaf { address, account }, _) => out.push((address, account)),
            (SmtNode::Internal { left, right }, holder) => {
                let holder = holder.page().clone();
                stack.push((right, depth + 1, Some(holder.clone())));
                stack.push((left, depth + 1, Some(holder)));
            }
        }
    }
    Ok(out)
}

/// What an update gathers: the nodes it creates, in post-order (children before their parent,
/// each new subtree's nodes side by side), so that a new node finds its new children by
/// position rather than through a map keyed by hash.
#[derive(Default)]
struct Work {
    new_nodes: Vec<NewNode>,
}

/// A node the update created.
struct NewNode {
    hash: Hash256,
    node: SmtNode,
    /// How far back in [`Work::new_nodes`] its left and right children are, if they are new
    /// too (0: the child is unchanged or empty).
    children_back: [usize; 2],
    /// If it tops a page that replaces a stored one at the same place: that stored page,
    /// where its unchanged nodes are.
    replaces: Option<Arc<SmtPage>>,
}

/// A subtree's top after an update: its hash, and whether it is a new node (then it is the
/// last node its part of the update stored).
#[derive(Clone, Copy)]
struct Top {
    hash: Hash256,
    is_new: bool,
}

impl Top {
    fn unchanged(hash: Hash256) -> Top {
        Top {
            hash,
            is_new: false,
        }
    }
}

impl Work {
    fn len(&self) -> usize {
        self.new_nodes.len()
    }

    /// Stores a leaf.
    fn store_leaf(&mut self, address: Address, account: Account) -> Top {
        self.store(SmtNode::Leaf { address, account }, [0, 0], None)
    }

    /// Stores an internal node over `left` and `right`, where `right_new_nodes` is how many
    /// nodes the right half stored (all of them right before this one).
    fn store_internal(
        &mut self,
        left: Top,
        right: Top,
        right_new_nodes: usize,
        replaces: Option<Arc<SmtPage>>,
    ) -> Top {
        let children_back = [
            if left.is_new { right_new_nodes + 1 } else { 0 },
            usize::from(right.is_new),
        ];
        let node = SmtNode::Internal {
            left: left.hash,
            right: right.hash,
        };
        self.store(node, children_back, replaces)
    }

    fn store(
        &mut self,
        node: SmtNode,
        children_back: [usize; 2],
        replaces: Option<Arc<SmtPage>>,
    ) -> Top {
        let hash = node.hash();
        self.new_nodes.push(NewNode {
            hash,
            node,
            children_back,
            replaces,
        });
        Top { hash, is_new: true }
    }

    fn absorb(&mut self, other: Work) {
        self.new_nodes.extend(other.new_nodes);
    }
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
    let mut work = Work::default();
    let new_root = update_subtree(view, root, 0, updates, None, &mut work)?;
    let new_pages = if new_root.is_new {
        paginate(&work.new_nodes)?
    } else {
        Vec::new()
    };
    Ok(SmtUpdate {
        root: new_root.hash,
        new_pages,
    })
}

/// Groups the nodes an update created (`created`, in post-order: the root last), with the
/// unchanged nodes that share their pages, into the new pages: one for every new node that
/// tops a page. An unchanged node in a new page was in the stored page at the same place,
/// which the update read.
fn paginate(created: &[NewNode]) -> Result<Vec<(Hash256, Arc<SmtPage>)>, StateStoreError> {
    let mut pages = Vec::new();
    // One level of page tops at a time; the pages of a level are built on all cores.
    let mut level: Vec<PageTop> = vec![(created.len() - 1, 0, Vec::new())];
    while !level.is_empty() {
        let built: Vec<Result<NewPage, StateStoreError>> = level
            .par_iter()
            .map(|(top, depth, inherited)| new_page(*top, *depth, inherited, created))
            .collect();
        level = Vec::new();
        for page in built {
            let (page, tops_below) = page?;
            pages.push(page);
            level.extend(tops_below);
        }
    }
    Ok(pages)
}

/// A new page top to build: its position among the new nodes, its depth, and the stored
/// pages its parent page's unchanged nodes came from (a subtree that was inlined there has
/// its unchanged nodes there).
type PageTop = (usize, usize, Vec<Arc<SmtPage>>);

/// A new page, and the new page tops right below it.
type NewPage = ((Hash256, Arc<SmtPage>), Vec<PageTop>);

/// A node met while building a page: new (its position among the new nodes) or unchanged
/// (its hash, to be found in the stored pages the update read).
#[derive(Clone, Copy)]
enum NodeRef {
    New(usize),
    Unchanged(Hash256),
}

impl NodeRef {
    /// The node and its hash.
    fn resolve<'a>(
        self,
        created: &'a [NewNode],
        sources: &[&'a Arc<SmtPage>],
    ) -> Result<(Hash256, &'a SmtNode), StateStoreError> {
        match self {
            NodeRef::New(at) => Ok((created[at].hash, &created[at].node)),
            NodeRef::Unchanged(hash) => sources
                .iter()
                .find_map(|page| page.get(&hash))
                .map(|node| (hash, node))
                .ok_or_else(|| missing(&hash)),
        }
    }

    /// The node's non-empty children, left first.
    fn children(self, node: &SmtNode, created: &[NewNode]) -> impl Iterator<Item = NodeRef> {
        let (left, right) = match node {
            SmtNode::Internal { left, right } => (*left, *right),
            SmtNode::Leaf { .. } => (EMPTY_ROOT, EMPTY_ROOT),
        };
        let back = match self {
            NodeRef::New(at) => created[at].children_back.map(|back| (at, back)),
            NodeRef::Unchanged(_) => [(0, 0); 2],
        };
        [(left, back[0]), (right, back[1])]
            .into_iter()
            .filter(|(hash, _)| *hash != EMPTY_ROOT)
            .map(|(hash, (at, back))| {
                if back == 0 {
                    NodeRef::Unchanged(hash)
                } else {
                    NodeRef::New(at - back)
                }
            })
    }
}

/// The page topped by the new node at `top` (among `created`) at `top_depth`: its new nodes,
/// its unchanged ones from the stored page it replaces or from `inherited` (its parent page's
/// sources), and small subtrees at the next page-top depth inlined ([`INLINE_MAX_NODES`]).
fn new_page(
    top: usize,
    top_depth: usize,
    inherited: &[Arc<SmtPage>],
    created: &[NewNode],
) -> Result<NewPage, StateStoreError> {
    // Where unchanged nodes are: the stored page this one replaces, the parent page's
    // sources, and the stored pages of the small subtrees it takes in.
    let mut sources: Vec<&Arc<SmtPage>> = created[top].replaces.iter().collect();
    sources.extend(inherited);
    let mut tops_below = Vec::new();
    let mut members = Vec::new();
    // Nodes below this page's own levels held here (new small subtrees counted when taken
    // in, unchanged ones as they are met).
    let mut inlined = 0;
    let mut pending = vec![(NodeRef::New(top), top_depth)];
    while let Some((at, depth)) = pending.pop() {
        let (hash, node) = at.resolve(created, &sources)?;
        if depth >= top_depth + PAGE_DEPTH && matches!(at, NodeRef::Unchanged(_)) {
            inlined += 1;
        }
        let child_depth = depth + 1;
        for child in at.children(node, created) {
            if child_depth % PAGE_DEPTH != 0 {
                pending.push((child, child_depth));
                continue;
            }
            // At a page-top depth a leaf stays in this page, and so does a small subtree
            // (new, or unchanged and already in the page this one replaces); any other
            // internal node tops its own page: a new one if the node is new, else one
            // already stored.
            match child {
                NodeRef::New(child_at) => {
                    if matches!(created[child_at].node, SmtNode::Leaf { .. }) {
                        pending.push((child, child_depth));
                        continue;
                    }
                    let own = created[child_at].replaces.as_ref();
                    let room = INLINE_BUDGET.saturating_sub(inlined);
                    if let Some(size) = small_subtree_size(child, created, &sources, own, room) {
                        inlined += size;
                        sources.extend(own);
                        pending.push((child, child_depth));
                    } else {
                        tops_below.push((child_at, child_depth, Vec::new()));
                    }
                }
                // Unchanged: here if the pages read hold it (a leaf, or a small subtree
                // inlined before), else it tops a stored page of its own.
                NodeRef::Unchanged(hash) => {
                    if sources.iter().any(|page| page.get(&hash).is_some()) {
                        pending.push((child, child_depth));
                    }
                }
            }
        }
        members.push((hash, node.clone()));
    }
    // A page top below may have been a small subtree in the pages read here.
    let passed_on: Vec<Arc<SmtPage>> = sources.iter().map(|page| Arc::clone(page)).collect();
    for below in &mut tops_below {
        below.2.clone_from(&passed_on);
    }
    let top_hash = created[top].hash;
    Ok((
        (top_hash, Arc::new(SmtPage::from_hashed(members))),
        tops_below,
    ))
}

/// Most nodes of a subtree kept in its parent's page rather than a page of its own. Such
/// subtrees are common where accounts are few for their depth (about 60% of the pages at
/// depth 16 with 10,000 accounts hold 2 to 5 nodes), and each page costs the store a record.
const INLINE_MAX_NODES: usize = 31;

/// Most nodes below its own levels a page takes in, so that a page stays a few KB and a block
/// touching one account does not rewrite a large one (unchanged small subtrees it already
/// held are kept whatever the count, so a page holds at most twice this).
const INLINE_BUDGET: usize = 128;

/// The number of nodes of the subtree under the new node `top` if it has at most
/// [`INLINE_MAX_NODES`] and at most `room`, every one of them new or in `sources` or `own`
/// (its own stored page, if it had one); `None` otherwise.
fn small_subtree_size(
    top: NodeRef,
    created: &[NewNode],
    sources: &[&Arc<SmtPage>],
    own: Option<&Arc<SmtPage>>,
    room: usize,
) -> Option<usize> {
    let limit = INLINE_MAX_NODES.min(room);
    let mut count = 0;
    let mut pending = vec![top];
    while let Some(at) = pending.pop() {
        count += 1;
        if count > limit {
            return None;
        }
        let node = match at {
            NodeRef::New(at) => &created[at].node,
            NodeRef::Unchanged(hash) => sources
                .iter()
                .chain(own.as_slice())
                .find_map(|page| page.get(&hash))?,
        };
        pending.extend(at.children(node, created));
    }
    Some(count)
}

fn split_at_bit(updates: &[(Address, Account)], depth: usize) -> usize {
    updates.partition_point(|(address, _)| !bit(address, depth))
}

/// Computes the two halves of a subtree into `work`: on two threads, each gathering into a
/// `Work` of its own, when the work is large and near the root; else one after the other,
/// straight into `work` (so nodes are not copied from level to level on the way up). Returns
/// the halves' tops and how many nodes the right half stored.
fn both_halves(
    parallel: bool,
    left: impl FnOnce(&mut Work) -> Result<Top, StateStoreError> + Send,
    right: impl FnOnce(&mut Work) -> Result<Top, StateStoreError> + Send,
    work: &mut Work,
) -> Result<(Top, Top, usize), StateStoreError> {
    if !parallel {
        let left = left(work)?;
        let before_right = work.len();
        let right = right(work)?;
        return Ok((left, right, work.len() - before_right));
    }
    let (left, right) = rayon::join(
        || {
            let mut part = Work::default();
            left(&mut part).map(|top| (top, part))
        },
        || {
            let mut part = Work::default();
            right(&mut part).map(|top| (top, part))
        },
    );
    let (left_top, left_work) = left?;
    let (right_top, right_work) = right?;
    let right_new_nodes = right_work.len();
    work.absorb(left_work);
    work.absorb(right_work);
    Ok((left_top, right_top, right_new_nodes))
}

fn update_subtree<V: StateView + ?Sized>(
    view: &V,
    node: Hash256,
    depth: usize,
    updates: &[(Address, Account)],
    parent_page: Option<&Arc<SmtPage>>,
    work: &mut Work,
) -> Result<Top, StateStoreError> {
    if updates.is_empty() {
        return Ok(Top::unchanged(node));
    }
    if node == EMPTY_ROOT {
        return build_subtree(depth, updates, work);
    }
    let (loaded, holder) = find_node(view, &node, depth, parent_page)?;
    // The node tops its own page (rather than sitting in its parent's).
    let tops_page = matches!(holder, Holder::Entered(_));
    let page = holder.page();
    match loaded {
        SmtNode::Leaf { address, account } => {
            if updates.iter().any(|(a, _)| *a == address) {
                build_subtree(depth, updates, work)
            } else {
                let mut merged = updates.to_vec();
                let at = merged.partition_point(|(a, _)| *a < address);
                merged.insert(at, (address, account));
                build_subtree(depth, &merged, work)
            }
        }
        SmtNode::Internal { left, right } => {
            let split = split_at_bit(updates, depth);
            let (left_updates, right_updates) = updates.split_at(split);
            let parallel = depth < PARALLEL_DEPTH && updates.len() >= PARALLEL_MIN_UPDATES;
            let (left, right, right_new_nodes) = both_halves(
                parallel,
                |work: &mut Work| {
                    update_subtree(view, left, depth + 1, left_updates, Some(page), work)
                },
                |work: &mut Work| {
                    update_subtree(view, right, depth + 1, right_updates, Some(page), work)
                },
                work,
            )?;
            let replaces = tops_page.then(|| page.clone());
            Ok(work.store_internal(left, right, right_new_nodes, replaces))
        }
    }
}

/// Builds the subtree holding exactly `updates` (at least one) at `depth`.
fn build_subtree(
    depth: usize,
    updates: &[(Address, Account)],
    work: &mut Work,
) -> Result<Top, StateStoreError> {
    if let [(address, account)] = updates {
        return Ok(work.store_leaf(*address, *account));
    }
    if depth >= 256 {
        return Err(StateStoreError::corrupt(
            "two updates for the same address reached the tree",
        ));
    }
    let split = split_at_bit(updates, depth);
    let (left_updates, right_updates) = updates.split_at(split);
    let parallel = depth < PARALLEL_DEPTH && updates.len() >= PARALLEL_MIN_UPDATES;
    let half = |part: &[(Address, Account)], work: &mut Work| {
        if part.is_empty() {
            return Ok(Top::unchanged(EMPTY_ROOT));
        }
        build_subtree(depth + 1, part, work)
    };
    let (left, right, right_new_nodes) = both_halves(
        parallel,
        |work: &mut Work| half(left_updates, work),
        |work: &mut Work| half(right_updates, work),
        work,
    )?;
    Ok(work.store_internal(left, right, right_new_nodes, None))
}

/// A test address from two bytes that makes paths share long prefixes: `crowded`, four
/// subtrees at depth 8 that grow from a few nodes (kept in the root page) past a page's worth
/// (pages of their own); else spread over the top of the tree.
#[cfg(test)]
pub(crate) fn test_address(key: [u8; 2], crowded: bool) -> Address {
    let mut bytes = [0u8; 32];
    if crowded {
        bytes[0] = key[0] & 0x03;
        bytes[1] = key[1];
    } else {
        bytes[0] = key[0];
        bytes[1] = key[1] & 0x0f;
    }
    Address(bytes)
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
            ),
            crowded in any::<bool>(),
        ) {
            let mut state = MemoryState::default();
            let mut model: BTreeMap<Address, Account> = BTreeMap::new();
            let mut root = EMPTY_ROOT;
            for batch in batches {
                // Two-byte keys spread over the top of the tree force deep shared prefixes.
                let updates: Vec<(Address, Account)> = batch
                    .into_iter()
                    .map(|(k, (b, n))| (test_address(k, crowded), account(b, n)))
                    .collect::<BTreeMap<_, _>>()
                    .into_iter()
                    .collect();
                let update = update_root(&state, root, &updates).unwrap();
                state.insert_pages(update.new_pages);
                root = update.root;
                model.extend(updates);
                let all: Vec<_> = model.iter().map(|(a, b)| (*a, *b)).collect();
                prop_assert_eq!(root, naive_root(&all, 0));
                // The stored pages alone answer for every account, and list them all.
                for (address, expected) in &all {
                    prop_assert_eq!(account_at(&state, root, address).unwrap(), Some(*expected));
                }
                prop_assert_eq!(all_accounts(&state, root).unwrap(), all.clone());
                let mut absent = Address([0xff; 32]);
                absent.0[31] = 0x5a;
                prop_assert_eq!(account_at(&state, root, &absent).unwrap(), None);
                // One descent for many addresses reads what one walk each does: every
                // account, plus absent neighbours that share their paths' top.
                let mut asked: Vec<Address> = all.iter().map(|(a, _)| *a).collect();
                asked.extend(all.iter().map(|(a, _)| {
                    let mut near = a.0;
                    near[31] ^= 1;
                    Address(near)
                }));
                asked.push(absent);
                asked.sort_unstable();
                asked.dedup();
                let one_by_one: Vec<Option<Account>> = asked
                    .iter()
                    .map(|a| account_at(&state, root, a).unwrap())
                    .collect();
                prop_assert_eq!(accounts_at(&state, root, &asked).unwrap(), one_by_one);
            }
        }
    }

    #[test]
    fn earlier_roots_stay_readable() {
        let mut state = MemoryState::default();
        let first = update_root(&state, EMPTY_ROOT, &[(Address([1; 32]), account(5, 0))]).unwrap();
        state.insert_pages(first.new_pages);
        let second = update_root(&state, first.root, &[(Address([1; 32]), account(6, 1))]).unwrap();
        state.insert_pages(second.new_pages);
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
        state.insert_pages(first.new_pages);
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

    /// Addresses that share long prefixes put leaves and internal nodes at and around
    /// several page-top depths (8, 16, 24, ...).
    fn deep_address(prefix_bits: usize, tail: u8) -> Address {
        let mut bytes = [0u8; 32];
        // `prefix_bits` shared zero bits, then a one, then `tail`.
        let at = prefix_bits;
        bytes[at / 8] |= 0x80 >> (at % 8);
        let after = at + 1;
        for i in 0..8 {
            if tail & (0x80 >> i) != 0 {
                let b = after + i;
                bytes[b / 8] |= 0x80 >> (b % 8);
            }
        }
        Address(bytes)
    }

    #[test]
    fn pages_cut_at_every_boundary_and_keep_old_roots() {
        let mut state = MemoryState::default();
        let mut model: BTreeMap<Address, Account> = BTreeMap::new();
        let mut roots = Vec::new();
        let mut root = EMPTY_ROOT;
        for (round, prefix) in [0usize, 7, 8, 9, 15, 16, 17, 23, 24, 31, 40, 63]
            .into_iter()
            .enumerate()
        {
            let updates: Vec<(Address, Account)> = (0u8..4)
                .map(|t| {
                    (
                        deep_address(prefix, t * 37),
                        account(round as u64 * 10 + u64::from(t), 0),
                    )
                })
                .collect::<BTreeMap<_, _>>()
                .into_iter()
                .collect();
            let update = update_root(&state, root, &updates).unwrap();
            // One page per new page top: never more pages than new nodes' page depths.
            assert!(update.new_pages.len() <= 1 + 64 / PAGE_DEPTH + 4);
            state.insert_pages(update.new_pages);
            root = update.root;
            model.extend(updates);
            roots.push((root, model.clone()));
        }
        for (root, model) in &roots {
            let all: Vec<_> = model.iter().map(|(a, b)| (*a, *b)).collect();
            assert_eq!(*root, naive_root(&all, 0));
            assert_eq!(all_accounts(&state, *root).unwrap(), all);
            for (address, expected) in &all {
                assert_eq!(account_at(&state, *root, address).unwrap(), Some(*expected));
            }
        }
    }

    #[test]
    fn a_page_holds_at_most_its_levels() {
        // 5000 random accounts: about 12 levels, so a root page and up to 256 pages below it;
        // the subtrees at depth 16 (where accounts share 16 bits) are small and stay in their
        // parents' pages, as do the smallest at depth 8 (before they were kept apart: 257
        // pages or more).
        let mut state = MemoryState::default();
        let updates: Vec<(Address, Account)> = (0u32..5000)
            .map(|i| {
                (
                    Address(tagged_hash("k", &[&i.to_le_bytes()])),
                    account(1, 0),
                )
            })
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect();
        let update = update_root(&state, EMPTY_ROOT, &updates).unwrap();
        let count = update.new_pages.len();
        assert!((200..257).contains(&count), "{count} pages");
        for (_, page) in &update.new_pages {
            // 255 internal nodes over 8 levels, up to 512 leaves below them, and the small
            // subtrees it takes in.
            assert!(
                page.len() <= 255 + 512 + 2 * INLINE_BUDGET,
                "{} nodes",
                page.len()
            );
        }
        state.insert_pages(update.new_pages);
        // Changing one account rewrites only the pages on its path.
        let one = [(updates[17].0, account(2, 1))];
        let second = update_root(&state, update.root, &one).unwrap();
        assert!(
            second.new_pages.len() <= 3,
            "{} pages",
            second.new_pages.len()
        );
    }

    #[test]
    fn page_round_trips_through_its_nodes() {
        let mut state = MemoryState::default();
        let updates: Vec<(Address, Account)> = (0u8..40)
            .map(|i| (Address([i; 32]), account(u64::from(i), 1)))
            .collect();
        let update = update_root(&state, EMPTY_ROOT, &updates).unwrap();
        for (top, page) in &update.new_pages {
            let again = SmtPage::from_nodes(page.nodes().cloned().collect());
            assert_eq!(&again, page.as_ref());
            assert!(again.get(top).is_some());
        }
        state.insert_pages(update.new_pages);
    }

    #[test]
    fn missing_node_is_an_error_not_a_panic() {
        let state = MemoryState::default();
        let err = update_root(&state, [9u8; 32], &[(Address([1; 32]), account(1, 0))]).unwrap_err();
        assert_eq!(err.kind, crate::core::storage::StorageKind::Corrupt);
        assert!(err.detail.contains("missing"));
    }
}
