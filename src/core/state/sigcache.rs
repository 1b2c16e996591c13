//! Signatures already verified: a bounded set of transfer ids. No I/O.
//!
//! A transfer's id commits to its signature (`txid = sha256d(body || signature)`), so a txid
//! in this set names exactly one signed transfer whose BIP340 signature was checked against
//! this chain's genesis. Block validation skips those: a transfer checked on admission to the
//! mempool, or by the sync pipeline while the previous block was being written, is not
//! checked twice. Consensus is unchanged: every transfer in a connected block has had its
//! signature verified by this node, once.
//!
//! It also keeps senders' keys already lifted to curve points, by address: parsing an x-only
//! key takes a field square root, about an eighth of a BIP340 verification, and an account
//! that sends once usually sends again (sync replays a chain's senders block after block).
//!
//! Bounded: when full, the least recently used ids and keys are forgotten, which only costs
//! a second check or parse.
use crate::core::primitives::{Address, BlockHash, Transfer, Txid};
use rayon::prelude::*;
use secp256k1::XOnlyPublicKey;
use std::sync::atomic::{AtomicU32, Ordering};

/// Transfer ids remembered by default: about 10 MB.
pub const DEFAULT_CAPACITY: usize = 256 * 1024;

/// Parsed sender keys remembered by default: about 6 MB.
pub const DEFAULT_KEY_CAPACITY: usize = 64 * 1024;

/// Transfers in one unit of parallel signature work.
const CHUNK: usize = 32;

/// The ids of transfers whose signatures this node has verified, for one chain.
pub struct SignatureCache {
    genesis: BlockHash,
    verified: quick_cache::sync::Cache<Txid, ()>,
    /// Senders' keys as curve points, by address.
    keys: quick_cache::sync::Cache<Address, XOnlyPublicKey>,
    /// Height of the block validation is checking now: a pre-check leaves that block and
    /// lower ones alone, since validation checks what the cache lacks itself.
    validating: AtomicU32,
}

impl std::fmt::Debug for SignatureCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureCache")
            .field("genesis", &self.genesis)
            .field("remembered", &self.verified.len())
            .finish()
    }
}

impl SignatureCache {
    /// An empty cache for the chain whose genesis is `genesis`, remembering up to
    /// `capacity` ids.
    pub fn new(genesis: BlockHash, capacity: usize) -> SignatureCache {
        SignatureCache {
            genesis,
            verified: quick_cache::sync::Cache::new(capacity.max(1)),
            keys: quick_cache::sync::Cache::new(DEFAULT_KEY_CAPACITY.min(capacity).max(1)),
            validating: AtomicU32::new(0),
        }
    }

    /// The chain the cached signatures were checked against.
    pub fn genesis(&self) -> &BlockHash {
        &self.genesis
    }

    /// Whether `txid`'s signature is known to be valid.
    pub fn contains(&self, txid: &Txid) -> bool {
        self.verified.get(txid).is_some()
    }

    /// Records that `txid`'s signature was verified against this cache's chain.
    pub fn insert(&self, txid: Txid) {
        self.verified.insert(txid, ());
    }

    /// Notes that validation is checking the block at `height`.
    pub fn note_validating(&self, height: u32) {
        self.validating.store(height, Ordering::Relaxed);
    }

    /// Whether a pre-check of the block at `height` would only race validation, which
    /// has reached it.
    pub fn validation_reached(&self, height: u32) -> bool {
        height <= self.validating.load(Ordering::Relaxed)
    }

    /// Forgets every verified signature, keeping the senders' keys: for benchmarks of
    /// blocks whose senders this node has seen before.
    #[cfg(any(test, feature = "test-utils"))]
    pub fn forget_signatures(&self) {
        self.verified.clear();
    }

    /// Number of senders' keys remembered.
    pub fn keys_remembered(&self) -> usize {
        self.keys.len()
    }

    /// Number of ids remembered.
    pub fn len(&self) -> usize {
        self.verified.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.verified.is_empty()
    }

    /// Whether `transfer` has a valid signature for this chain: from the cache, or checked
    /// now and remembered if valid.
    pub fn check(&self, transfer: &Transfer) -> bool {
        self.check_with_txid(transfer, transfer.txid())
    }

    /// [`SignatureCache::check`] for a caller that has computed the txid already.
    pub fn check_with_txid(&self, transfer: &Transfer, txid: Txid) -> bool {
        debug_assert_eq!(txid, transfer.txid());
        if self.contains(&txid) {
            return true;
        }
        let (key, known) = match self.keys.get(&transfer.from) {
            Some(key) => (key, true),
            None => match transfer.sender_key() {
                Some(key) => (key, false),
                None => return false,
            },
        };
        let valid = transfer.has_valid_signature_by(&key, &self.genesis);
        if valid {
            // Only a key that signed something valid is kept, so junk cannot crowd out
            // real senders' keys for free.
            if !known {
                self.keys.insert(transfer.from, key);
            }
            self.insert(txid);
        }
        valid
    }

    /// Checks (on the current rayon pool) the signatures of `transfers` not yet known,
    /// remembering the valid ones; returns the first invalid one in order, if any.
    pub fn check_all<'t>(&self, transfers: &'t [Transfer]) -> Option<&'t Transfer> {
        transfers
            .par_iter()
            .with_min_len(CHUNK)
            .find_first(|t| !self.check(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::primitives::transfer::UnsignedTransfer;
    use crate::core::primitives::{Address, Amount};
    use crate::core::testkit::test_keypair;

    fn test_transfer_for(genesis: &BlockHash, key: &secp256k1::Keypair, nonce: u64) -> Transfer {
        UnsignedTransfer {
            chain_id: 1,
            to: Address([3; 32]),
            amount: Amount::from_units(10),
            fee: Amount::from_units(1),
            nonce,
            memo: Vec::new(),
        }
        .sign(key, genesis, &[7u8; 32])
    }

    #[test]
    fn remembers_only_valid_signatures() {
        let genesis = BlockHash([7; 32]);
        let cache = SignatureCache::new(genesis, 16);
        let good = test_transfer_for(&genesis, &test_keypair(1), 0);
        let mut forged = test_transfer_for(&genesis, &test_keypair(2), 0);
        forged.amount = forged.amount.checked_add(forged.fee).unwrap();
        assert!(cache.check(&good));
        assert!(cache.contains(&good.txid()));
        assert!(!cache.check(&forged));
        assert!(!cache.contains(&forged.txid()));
        let batch = vec![good.clone(), forged.clone(), good.clone()];
        assert_eq!(
            cache.check_all(&batch).map(|t| t.txid()),
            Some(forged.txid())
        );
        assert_eq!(cache.check_all(&batch[..1]), None);
    }

    #[test]
    fn a_known_sender_key_still_checks_every_signature() {
        let genesis = BlockHash([7; 32]);
        let cache = SignatureCache::new(genesis, 16);
        let key = test_keypair(1);
        let forged_first = {
            let mut t = test_transfer_for(&genesis, &key, 5);
            t.amount = Amount::from_units(11);
            t
        };
        assert!(!cache.check(&forged_first));
        assert_eq!(
            cache.keys_remembered(),
            0,
            "no key kept for a bad signature"
        );
        assert!(cache.check(&test_transfer_for(&genesis, &key, 0)));
        assert_eq!(cache.keys_remembered(), 1);
        // The key is now known: a later transfer's signature is still verified.
        let next = test_transfer_for(&genesis, &key, 1);
        let mut forged = next.clone();
        forged.fee = Amount::from_units(2);
        assert!(!cache.check(&forged));
        assert!(cache.check(&next));
        assert_eq!(cache.keys_remembered(), 1);
    }

    #[test]
    fn another_chains_signature_is_not_valid_here() {
        let ours = SignatureCache::new(BlockHash([7; 32]), 16);
        let theirs = test_transfer_for(&BlockHash([8; 32]), &test_keypair(1), 0);
        assert!(!ours.check(&theirs));
        assert!(ours.is_empty());
    }
}
