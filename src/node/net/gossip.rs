//! The two gossip topics, their message ids, and how a block is announced; no I/O.
//!
//! ```text
//!   /cairn/<genesis hex>/blocks/2      codec(BlockAnnouncement)   message id = block hash
//!   /cairn/<genesis hex>/transfers/1   codec(Transfer)            message id = txid
//! ```
//!
//! A block travels compact (header, reward fields, short transfer ids: see
//! `core::protocol::compact`) or, from a node set to [`BlockRelay::Full`], whole; both
//! forms start with the header, so the id is read from the message's prefix.
//! Ids are content addressed, so the same block from two peers is one message, and the node
//! can name a message by its hash when it reports a verdict. Bytes that do not decode get the
//! SHA-256 of the bytes instead (and are rejected by the service).
use super::GossipVerdict;
use crate::core::primitives::codec;
use crate::core::primitives::{Block, BlockHash, Transfer};
use crate::core::protocol::compact::{BlockAnnouncement, CompactBlock};
use libp2p::gossipsub::{IdentTopic, Message, MessageAcceptance, MessageId, TopicHash};
use sha2::{Digest, Sha256};

/// One of the two gossip topics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GossipTopic {
    /// New blocks.
    Blocks,
    /// New transfers.
    Transfers,
}

/// How this node announces the blocks it mines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BlockRelay {
    /// Compact: header, reward fields and a 6-byte short id per transfer (the default).
    #[default]
    Compact,
    /// The whole block (the reference compact relay is measured against).
    Full,
}

impl BlockRelay {
    /// How `block` goes on the wire.
    pub fn announce(self, block: Block) -> BlockAnnouncement {
        match self {
            BlockRelay::Compact => BlockAnnouncement::Compact(CompactBlock::of(&block)),
            BlockRelay::Full => BlockAnnouncement::Full(block),
        }
    }
}

/// The topics of one chain.
#[derive(Clone, Debug)]
pub struct Topics {
    /// `/cairn/<genesis hex>/blocks/2`.
    pub blocks: IdentTopic,
    /// `/cairn/<genesis hex>/transfers/1`.
    pub transfers: IdentTopic,
}

impl Topics {
    /// The topics of the chain with this genesis.
    pub fn new(genesis: &BlockHash) -> Topics {
        Topics {
            blocks: IdentTopic::new(format!("/cairn/{genesis}/blocks/2")),
            transfers: IdentTopic::new(format!("/cairn/{genesis}/transfers/1")),
        }
    }

    /// The topic `kind`.
    pub fn get(&self, kind: GossipTopic) -> &IdentTopic {
        match kind {
            GossipTopic::Blocks => &self.blocks,
            GossipTopic::Transfers => &self.transfers,
        }
    }

    /// Which of our topics `hash` is, if either.
    pub fn kind_of(&self, hash: &TopicHash) -> Option<GossipTopic> {
        if *hash == self.blocks.hash() {
            Some(GossipTopic::Blocks)
        } else if *hash == self.transfers.hash() {
            Some(GossipTopic::Transfers)
        } else {
            None
        }
    }

    /// The message id of `message`: the block hash or txid it carries, read as cheaply as
    /// possible (a block announcement's variant tag and header are the prefix of its
    /// encoding), or the SHA-256 of its bytes if they do not decode or the topic is not ours.
    pub fn message_id(&self, message: &Message) -> MessageId {
        let id = match self.kind_of(&message.topic) {
            Some(GossipTopic::Blocks) => {
                BlockAnnouncement::header_of(&message.data).map(|header| header.hash().0)
            }
            Some(GossipTopic::Transfers) => codec::decode::<Transfer>(&message.data)
                .ok()
                .map(|transfer| transfer.txid().0),
            None => None,
        };
        MessageId::new(&id.unwrap_or_else(|| Sha256::digest(&message.data).into()))
    }
}

/// The id of the message carrying the block or transfer with this hash.
pub fn message_id_of(hash: &[u8; 32]) -> MessageId {
    MessageId::new(hash)
}

impl From<GossipVerdict> for MessageAcceptance {
    fn from(verdict: GossipVerdict) -> MessageAcceptance {
        match verdict {
            GossipVerdict::Accept => MessageAcceptance::Accept,
            GossipVerdict::Reject => MessageAcceptance::Reject,
            GossipVerdict::Ignore => MessageAcceptance::Ignore,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testkit::{test_address, test_keypair, TestChain};

    fn message(topic: &IdentTopic, data: Vec<u8>) -> Message {
        Message {
            source: None,
            data,
            sequence_number: None,
            topic: topic.hash(),
        }
    }

    #[test]
    fn message_ids_are_block_hashes_and_txids() {
        let mut chain = TestChain::new();
        let genesis = chain.genesis_hash;
        let topics = Topics::new(&genesis);
        assert_eq!(
            topics.blocks.to_string(),
            format!("/cairn/{}/blocks/2", genesis.to_hex())
        );
        let block = chain.extend(&genesis, 1, test_address(0)).remove(0);
        let transfer = chain.transfer(&test_keypair(0), test_address(1), 5, 1, 0);
        let block_bytes = codec::encode(&BlockRelay::Full.announce(block.clone())).unwrap();
        let compact_bytes = codec::encode(&BlockRelay::Compact.announce(block.clone())).unwrap();
        let transfer_bytes = codec::encode(&transfer).unwrap();

        for bytes in [&block_bytes, &compact_bytes] {
            let id = topics.message_id(&message(&topics.blocks, bytes.clone()));
            assert_eq!(id, message_id_of(&block.hash().0));
        }
        let id = topics.message_id(&message(&topics.transfers, transfer_bytes.clone()));
        assert_eq!(id, message_id_of(&transfer.txid().0));

        // Garbage, or a message on the other topic: the SHA-256 of the bytes.
        let sha = |bytes: &[u8]| MessageId::new(&<[u8; 32]>::from(Sha256::digest(bytes)));
        let garbage = b"garbage".to_vec();
        let id = topics.message_id(&message(&topics.blocks, garbage.clone()));
        assert_eq!(id, sha(&garbage));
        let id = topics.message_id(&message(&topics.transfers, block_bytes.clone()));
        assert_eq!(id, sha(&block_bytes));
    }
}
