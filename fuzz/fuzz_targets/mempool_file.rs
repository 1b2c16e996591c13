//! `mempool.bin` (`node::pool_file`: the codec encoding of `Vec<Transfer>`, read at start):
//! never panics; what decodes re-encodes to the same bytes.
#![no_main]
use cairn::core::primitives::Transfer;
use cairn_fuzz::codec_round_trip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(transfers) = codec_round_trip::<Vec<Transfer>>(data) {
        for transfer in &transfers {
            let _ = transfer.txid();
        }
    }
});
