//! The two gossip topics and their message ids; no I/O.
//!
//! ```text
//!   /cairn/<genesis hex>/blocks/1      codec(Block)      message id = block hash
//!   /cairn/<genesis hex>/transfers/1   codec(Transfer)   message id = txid
//! ```
//!
//! Ids are content addressed, so the same block from two peers is one message, and the node
//! can name a message by its hash when it reports a verdict. Bytes that do not decode get the
//! SHA-256 of the bytes instead (and are rejected by the service).
use super::GossipVerdict;
use crate::core::primitives::codec;
use crate::core::primitives::{BlockHash, Header, Transfer};
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

/// The topics of one chain.
#[derive(Clone, Debug)]
pub struct Topics {
    /// `/cairn/<genesis hex>/blocks/1`.
    pub blocks: IdentTopic,
    /// `/cairn/<genesis hex>/transfers/1`.
    pub transfers: IdentTopic,
}

impl Topics {
    /// The topics of the chain with this genesis.
    pub fn new(genesis: &BlockHash) -> Topics {
        Topics {
            blocks: IdentTopic::new(format!("/cairn/{genesis}/blocks/1")),
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
    /// possible (a block's header is the prefix of its encoding), or the SHA-256 of its
    /// bytes if they do not decode or the topic is not ours.
    pub fn message_id(&self, message: &Message) -> MessageId {
        let id = match self.kind_of(&message.topic) {
            Some(GossipTopic::Blocks) => codec::decode_prefix::<Header>(&message.data)
                .ok()
                .map(|header| header.hash().0),
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
            format!("/cairn/{}/blocks/1", genesis.to_hex())
        );
        let block = chain.extend(&genesis, 1, test_address(0)).remove(0);
        let transfer = chain.transfer(&test_keypair(0), test_address(1), 5, 1, 0);
        let block_bytes = codec::encode(&block).unwrap();
        let transfer_bytes = codec::encode(&transfer).unwrap();

        let id = topics.message_id(&message(&topics.blocks, block_bytes.clone()));
        assert_eq!(id, message_id_of(&block.hash().0));
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
