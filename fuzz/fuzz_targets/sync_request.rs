//! A sync request body (`/cairn/sync/1`, after the length prefix): never panics; what decodes
//! re-encodes to the same bytes; the bounds check does not panic.
//!
//! (`Status` once had many encodings: its `chain_work` went through the codec as a hex
//! string, which parses in either case and with leading zeros. This target found it; work is
//! now 32 bytes in the codec.)
#![no_main]
use cairn::core::protocol::messages::SyncRequest;
use cairn_fuzz::codec_value_round_trip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((request, bytes)) = codec_value_round_trip::<SyncRequest>(data) else {
        return;
    };
    assert!(bytes == data, "not canonical: {request:?}");
    let _ = request.check();
});
