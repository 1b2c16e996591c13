//! A gossip message's bytes, as both topics read them (`node::net::gossip` and `service`):
//! the message id reads a block's header as a prefix, the service decodes the whole block or
//! transfer. Never panics; what decodes re-encodes to the same bytes; a block's id (its
//! prefix header's hash) is the hash of the block the service decodes.
#![no_main]
use cairn::core::primitives::{codec, Block, Header, Transfer};
use cairn_fuzz::codec_round_trip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The blocks topic.
    let id = codec::decode_prefix::<Header>(data).ok().map(|h| h.hash());
    if let Some(block) = codec_round_trip::<Block>(data) {
        assert_eq!(id, Some(block.hash()), "the message id is the block hash");
    }
    // The transfers topic: the id and the message are the same decoding.
    if let Some(transfer) = codec_round_trip::<Transfer>(data) {
        let _ = transfer.txid();
    }
});
