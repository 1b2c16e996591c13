//! A transfer from outside (gossip, a block, the API after conversion): never panics; what
//! decodes re-encodes to the same bytes; its id, size, cost and signature check do not
//! panic.
#![no_main]
use cairn::core::primitives::Transfer;
use cairn_fuzz::{codec_round_trip, test_context};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(transfer) = codec_round_trip::<Transfer>(data) else {
        return;
    };
    assert_eq!(transfer.encoded_size(), data.len());
    let _ = transfer.txid();
    let _ = transfer.total_cost();
    let _ = transfer.has_valid_signature(&test_context().genesis_hash);
});
