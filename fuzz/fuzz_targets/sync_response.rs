//! A sync response body (`/cairn/sync/1`, after the length prefix): never panics; what
//! decodes re-encodes to the same bytes; the response checks the requester runs do not
//! panic (headers against every `max`, blocks against their own hashes and a subset, a
//! block's transfers against their own count and another, state pages against the hash
//! of their first node).

#![no_main]
use cairn::core::primitives::Block;
use cairn::core::protocol::messages::{
    check_block_transfers_response, check_blocks_response, check_headers_response,
    check_state_pages_response, SyncResponse,
};
use cairn::core::state::pages::{check_page, PageTop};
use cairn::core::state::SmtNode;
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
        SyncResponse::StatePages(pages) => {
            assert_eq!(check_state_pages_response(&pages, pages.len()), Ok(()));
            // Each page checked as the page of its first node's hash (at the root, and a
            // page-top depth below): never panics, and what passes reaches every node.
            for nodes in pages {
                let Some(first) = nodes.first().map(SmtNode::hash) else {
                    continue;
                };
                for depth in [0, 8, 3] {
                    let top = PageTop { hash: first, depth };
                    if let Ok((page, _)) = check_page(&top, nodes.clone()) {
                        assert_eq!(page.len(), nodes.len(), "a checked page keeps every node");
                    }
                }
            }
        }
        SyncResponse::Status(_) => {}
    }
});
