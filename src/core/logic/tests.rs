//! Unit tests of the node logic: transfers through the mempool, their verdicts, the
//! journal's barrier before templates, the pool following the tip, and durability pauses.
use super::*;
use crate::core::chain::memory::MemoryChainStore;
use crate::core::mempool::MempoolConfig;
use crate::core::primitives::Amount;
use crate::core::protocol::machine::{ProtocolConfig, Verdict};
use crate::core::protocol::messages::{Status, SyncRequest, SyncResponse};
use crate::core::testkit::{solve, test_address, test_keypair, TestChain};

const NOW: u64 = 1_800_000_000_000;
type Peer = &'static str;

struct Node {
    logic: NodeLogic<Peer>,
    chain: ChainManager<MemoryChainStore>,
    test: TestChain,
}

fn node(mining: bool) -> Node {
    let test = TestChain::new();
    let chain =
        ChainManager::new(MemoryChainStore::new(&test.spec), test.spec.clone()).expect("chain");
    let mempool = Arc::new(RwLock::new(
        Mempool::new(
            MempoolConfig::default(),
            chain.genesis_hash(),
            test.spec.chain_id(),
        )
        .with_signature_cache(chain.signature_cache().clone()),
    ));
    let mining = mining.then_some(MiningSetup {
        reward_address: test_address(3),
        extra_nonce: 0,
    });
    let logic = NodeLogic::new(
        LogicConfig::default(),
        Protocol::new(ProtocolConfig::default(), []),
        mempool,
        chain.tip().clone(),
        mining,
        NOW,
    );
    Node { logic, chain, test }
}

impl Node {
    fn handle(&mut self, input: Input<Peer>) -> Vec<Output<Peer>> {
        self.handle_at(input, NOW)
    }

    fn handle_at(&mut self, input: Input<Peer>, now_ms: u64) -> Vec<Output<Peer>> {
        self.logic.handle(input, &mut self.chain, now_ms)
    }

    fn transfer(&self, from: u8, nonce: u64) -> Transfer {
        self.test
            .transfer(&test_keypair(from), test_address(2), 1_000, 500, nonce)
    }

    fn pool_len(&self) -> usize {
        self.logic.mempool().read().unwrap().len()
    }

    /// Connects `peer`, answering our status request with genesis.
    fn connect(&mut self, peer: Peer) {
        let out = self.handle(Input::Net(Event::PeerConnected(peer)));
        let id = out
            .iter()
            .find_map(|o| match o {
                Output::Net(Action::Request {
                    id,
                    request: SyncRequest::Status(_),
                    ..
                }) => Some(*id),
                _ => None,
            })
            .expect("a status request");
        let status = Status {
            genesis: self.chain.genesis_hash(),
            tip: self.chain.tip().hash(),
            height: 0,
            chain_work: self.chain.tip().chain_work,
        };
        self.handle(Input::Net(Event::Response {
            peer,
            id,
            response: SyncResponse::Status(status),
        }));
    }
}

fn transfer_verdict(out: &[Output<Peer>]) -> Option<Verdict> {
    out.iter().find_map(|o| match o {
        Output::Net(Action::TransferVerdict { verdict, .. }) => Some(*verdict),
        _ => None,
    })
}

fn journaled(out: &[Output<Peer>]) -> Vec<(Txid, Option<u64>)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Journal {
                transfer,
                submission,
            } => Some((transfer.txid(), submission.as_ref().map(|(id, _)| *id))),
            _ => None,
        })
        .collect()
}

fn template(out: &[Output<Peer>]) -> Option<&BlockTemplate> {
    out.iter().find_map(|o| match o {
        Output::Mine(template) => Some(template),
        _ => None,
    })
}

#[test]
fn a_valid_gossiped_transfer_is_journaled_and_forwarded() {
    let mut node = node(false);
    node.connect("a");
    let transfer = node.transfer(0, 0);
    let out = node.handle(Input::GossipTransfer {
        peer: "a",
        transfer: transfer.clone(),
    });
    assert_eq!(journaled(&out), vec![(transfer.txid(), None)]);
    assert_eq!(transfer_verdict(&out), Some(Verdict::Accept));
    assert_eq!(node.pool_len(), 1);
    assert_eq!(node.logic.protocol().score(&"a"), 0);
}

#[test]
fn an_invalid_gossiped_transfer_is_rejected_and_its_relayer_penalised() {
    let mut node = node(false);
    node.connect("a");
    let mut transfer = node.transfer(0, 0);
    transfer.amount = Amount::from_units(999); // the signature no longer matches
    let out = node.handle(Input::GossipTransfer {
        peer: "a",
        transfer,
    });
    assert!(journaled(&out).is_empty());
    assert_eq!(transfer_verdict(&out), Some(Verdict::Reject));
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::NotAdmitted { relayed_by: Some(p), .. } if *p == "a")));
    // The fault is worth a ban at once.
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Net(Action::Ban { peer: "a", .. }))));
    assert_eq!(node.pool_len(), 0);
}

#[test]
fn a_duplicate_is_ignored_without_blame() {
    let mut node = node(false);
    node.connect("a");
    node.connect("b");
    let transfer = node.transfer(0, 0);
    node.handle(Input::GossipTransfer {
        peer: "a",
        transfer: transfer.clone(),
    });
    let out = node.handle(Input::GossipTransfer {
        peer: "b",
        transfer,
    });
    assert_eq!(transfer_verdict(&out), Some(Verdict::Ignore));
    assert!(journaled(&out).is_empty());
    assert_eq!(node.logic.protocol().score(&"b"), 0);
}

#[test]
fn a_banned_peers_transfer_is_ignored_unchecked() {
    let mut node = node(false);
    node.connect("a");
    node.handle(Input::Net(Event::Ban("a")));
    let transfer = node.transfer(0, 0);
    let out = node.handle(Input::GossipTransfer {
        peer: "a",
        transfer,
    });
    assert_eq!(transfer_verdict(&out), Some(Verdict::Ignore));
    assert!(!out.iter().any(|o| matches!(o, Output::Admitted(_))));
    assert_eq!(node.pool_len(), 0);
}

#[test]
fn a_submission_is_journaled_with_its_id_or_refused() {
    let mut node = node(false);
    let good = node.transfer(0, 0);
    let out = node.handle(Input::Submit {
        id: 7,
        transfer: good.clone(),
    });
    assert_eq!(journaled(&out), vec![(good.txid(), Some(7))]);
    assert!(!out.iter().any(|o| matches!(o, Output::Refused { .. })));

    let out = node.handle(Input::Submit {
        id: 8,
        transfer: good,
    });
    assert!(journaled(&out).is_empty());
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Refused {
            id: 8,
            refusal: SubmitRefusal::Mempool(MempoolError::AlreadyKnown { .. })
        }
    )));
}

#[test]
fn nothing_is_taken_in_while_the_store_cannot_write() {
    let mut node = node(true);
    node.connect("a");
    let out = node.handle(Input::Durability(Some("disk full".into())));
    assert!(out.iter().any(|o| matches!(o, Output::PauseMining)));
    let out = node.handle(Input::Submit {
        id: 1,
        transfer: node.transfer(0, 0),
    });
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Refused { id: 1, refusal: SubmitRefusal::NotDurable(why) } if why == "disk full"
    )));
    let out = node.handle(Input::GossipTransfer {
        peer: "a",
        transfer: node.transfer(1, 0),
    });
    assert_eq!(transfer_verdict(&out), Some(Verdict::Ignore));
    assert_eq!(node.logic.protocol().score(&"a"), 0);
    assert_eq!(node.pool_len(), 0);
    // A mined block is stale while paused; once the store writes, mining resumes.
    let mut block = node
        .test
        .template(&node.test.genesis_hash, vec![], test_address(3));
    solve(&mut block.header);
    let out = node.handle(Input::Net(Event::Mined(block)));
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Net(Action::MinedStale { .. }))));
    assert_eq!(node.chain.tip().height(), 0);
    let out = node.handle(Input::Durability(None));
    assert!(template(&out).is_some());
}

#[test]
fn no_template_holds_a_transfer_before_its_journal_is_synced() {
    let mut node = node(true);
    let later = NOW + 200;
    let first = node.handle_at(Input::Wake, later);
    assert!(
        template(&first).is_some(),
        "the first template comes at once"
    );
    let transfer = node.transfer(0, 0);
    node.handle_at(
        Input::Submit {
            id: 1,
            transfer: transfer.clone(),
        },
        later,
    );
    // Not before the coalescing delay for transfers.
    assert!(template(&node.handle_at(Input::Wake, later + 500)).is_none());
    let out = node.handle_at(Input::Wake, later + 1_000);
    assert!(out.iter().any(|o| matches!(o, Output::SyncJournal)));
    assert!(template(&out).is_none(), "not before the journal is synced");
    // A transfer journaled after the sync went out asks for another sync.
    node.handle_at(
        Input::Submit {
            id: 2,
            transfer: node.transfer(1, 0),
        },
        later + 1_001,
    );
    let out = node.handle_at(Input::JournalSynced, later + 1_002);
    assert!(template(&out).is_none());
    assert!(out.iter().any(|o| matches!(o, Output::SyncJournal)));
    let out = node.handle_at(Input::JournalSynced, later + 1_003);
    let template = template(&out).expect("a template once synced");
    assert_eq!(template.block.transfers.len(), 2);
    assert!(template.block.transfers.contains(&transfer));
}

#[test]
fn the_pool_follows_a_mined_block_and_mining_can_be_turned_off() {
    let mut node = node(true);
    let transfer = node.transfer(0, 0);
    node.handle(Input::Submit {
        id: 1,
        transfer: transfer.clone(),
    });
    let out = node.handle_at(Input::Wake, NOW + 1_000);
    assert!(out.iter().any(|o| matches!(o, Output::SyncJournal)));
    let out = node.handle_at(Input::JournalSynced, NOW + 1_000);
    let mut block = template(&out).expect("template").block.clone();
    solve(&mut block.header);
    let out = node.handle_at(Input::Net(Event::Mined(block.clone())), NOW + 1_100);
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Net(Action::Publish(_)))));
    assert!(out.iter().any(
        |o| matches!(o, Output::Followed { connected, .. } if connected == &vec![block.clone()])
    ));
    assert_eq!(node.pool_len(), 0);
    // The tip moved: a new template after the coalescing delay.
    assert!(template(&node.handle_at(Input::Wake, NOW + 1_250)).is_some());
    let out = node.handle_at(Input::SetMining(false), NOW + 1_300);
    assert!(out.iter().any(|o| matches!(o, Output::PauseMining)));
    assert!(!node.logic.is_mining());
}

#[test]
fn restored_transfers_are_checked_and_the_journal_compacted_at_shutdown() {
    let mut node = node(false);
    let good = node.transfer(0, 0);
    let mut bad = node.transfer(1, 0);
    bad.fee = Amount::from_units(1);
    let out = node.handle(Input::Restore(vec![good.clone(), bad]));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Restored {
            restored: 1,
            total: 2
        }
    )));
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::CompactJournal(t) if t == &vec![good.clone()])));
    // Nothing changed since: nothing to compact at shutdown.
    let out = node.handle(Input::Shutdown);
    assert!(!out.iter().any(|o| matches!(o, Output::CompactJournal(_))));
}

/// Found by `tests/full_disk.rs` in CI: a block was mined (its transfer left the pool), then
/// the flush that would have made it durable failed; the store reopened one block lower and
/// the pool, unable to find its tip there, kept neither the block nor its transfer, so the
/// sender's later nonces waited behind a gap until a restart. The transfer of a block the
/// store lost comes back to the pool.
#[test]
fn the_transfers_of_a_block_the_store_lost_come_back_to_the_pool() {
    let mut node = node(true);
    let transfer = node.transfer(0, 0);
    node.handle(Input::Submit {
        id: 1,
        transfer: transfer.clone(),
    });
    node.handle_at(Input::Wake, NOW + 1_000);
    let out = node.handle_at(Input::JournalSynced, NOW + 1_000);
    let mut block = template(&out).expect("template").block.clone();
    solve(&mut block.header);
    node.handle_at(Input::Net(Event::Mined(block)), NOW + 1_100);
    assert_eq!(node.pool_len(), 0, "mined");
    // The store reopens without the block (it was never flushed): only genesis is left.
    node.chain = ChainManager::new(
        MemoryChainStore::new(&node.test.spec),
        node.test.spec.clone(),
    )
    .expect("chain");
    let out = node.handle_at(Input::Wake, NOW + 1_200);
    assert!(
        !out.iter().any(|o| matches!(o, Output::FollowFailed(_))),
        "{out:?}"
    );
    assert!(
        node.logic
            .mempool()
            .read()
            .unwrap()
            .get(&transfer.txid())
            .is_some(),
        "the lost block's transfer is pending again: {out:?}"
    );
}
