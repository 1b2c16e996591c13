//! A gossip message's bytes, as both topics read them (`node::net::gossip` and `service`):
//! the message id reads an announced block's header from the prefix, the service decodes the
//! whole announcement (a block, or a compact block, which the node then rebuilds) or
//! transfer. Never panics; what decodes re-encodes to the same bytes; a block's id (its
//! prefix header's hash) is the hash of the block the service decodes.
#![no_main]
use cairn::core::primitives::Transfer;
use cairn::core::protocol::compact::{BlockAnnouncement, PartialBlock};
use cairn_fuzz::codec_round_trip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The blocks topic.
    let id = BlockAnnouncement::header_of(data).map(|h| h.hash());
    if let Some(announcement) = codec_round_trip::<BlockAnnouncement>(data) {
        assert_eq!(
            id,
            Some(announcement.hash()),
            "the message id is the block hash"
        );
        if let BlockAnnouncement::Compact(compact) = announcement {
            // Nothing held: every slot is asked for, in order.
            let slots = compact.short_ids.len();
            let partial = PartialBlock::rebuild(compact, std::iter::empty());
            assert_eq!(partial.missing().len(), slots);
            assert_eq!(partial.into_block().is_some(), slots == 0);
        }
    }
    // The transfers topic: the id and the message are the same decoding.
    if let Some(transfer) = codec_round_trip::<Transfer>(data) {
        let _ = transfer.txid();
    }
});
