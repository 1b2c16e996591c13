//! A sync response body (`/cairn/sync/1`, after the length prefix): never panics; what
//! decodes re-encodes to the same bytes; the response checks the requester runs do not
//! panic (headers against every `max`, blocks against their own hashes and a subset, a
//! block's transfers against their own count and another).

#![no_main]
use cairn::core::primitives::Block;
use cairn::core::protocol::messages::{
    check_block_transfers_response, check_blocks_response, check_headers_response, SyncResponse,
};
use cairn_fuzz::codec_value_round_trip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((response, bytes)) = codec_value_round_trip::<SyncResponse>(data) else {
        return;
    };
    assert!(bytes == data, "not canonical: {response:?}");
    match response {
        SyncResponse::Headers(headers) => {
            let _ = check_headers_response(&headers, u32::MAX);
            let _ = check_headers_response(&headers, 0);
            let _ = check_headers_response(&headers, headers.len() as u32);
        }
        SyncResponse::Blocks(blocks) => {
            let hashes: Vec<_> = blocks.iter().map(Block::hash).collect();
            assert_eq!(
                check_blocks_response(&blocks, &hashes),
                Ok(()),
                "the blocks asked for, in order, pass"
            );
            let _ = check_blocks_response(&blocks, &hashes[hashes.len() / 2..]);
        }
        SyncResponse::BlockTransfers(transfers) => {
            assert_eq!(
                check_block_transfers_response(&transfers, transfers.len()),
                Ok(()),
                "one transfer per position asked for passes"
            );
            let _ = check_block_transfers_response(&transfers, transfers.len() / 2);
        }
        SyncResponse::Status(_) => {}
    }
});
