//! A sync request body (`/cairn/sync/1`, after the length prefix): never panics; what decodes
//! re-encodes to the same bytes; the bounds check does not panic.
//!
//! Except `Status`: its `chain_work` (`Work`) goes through the codec as its display string,
//! and `Work::from_str` accepts either case and leading zeros, so one status has many
//! encodings (`0xA` and `0xa`). Until `Work` has one encoding, a status is only checked to
//! decode to the same value from its re-encoding.
#![no_main]
use cairn::core::protocol::messages::SyncRequest;
use cairn_fuzz::codec_value_round_trip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((request, bytes)) = codec_value_round_trip::<SyncRequest>(data) else {
        return;
    };
    if !matches!(request, SyncRequest::Status(_)) {
        assert!(bytes == data, "not canonical: {request:?}");
    }
    let _ = request.check();
});
