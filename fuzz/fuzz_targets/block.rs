//! A block from outside (gossip, a `Blocks` response, the store): never panics; what decodes
//! re-encodes to the same bytes; the stateless checks and the state checks against the test
//! chain's genesis state run on it without panicking.
#![no_main]
use cairn::core::consensus::validation::{check_body, check_proof_of_work, check_state};
use cairn::core::primitives::Block;
use cairn_fuzz::{codec_round_trip, test_context};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(block) = codec_round_trip::<Block>(data) else {
        return;
    };
    assert_eq!(block.encoded_size(), data.len());
    let _ = block.hash();
    let _ = block.compute_tx_root();
    let _ = check_proof_of_work(&block.header);
    let ctx = test_context();
    if check_body(&block, &ctx.spec).is_ok() {
        let parent_root = ctx.genesis.header.state_root;
        let _ = check_state(
            &ctx.state,
            parent_root,
            &block,
            &ctx.spec,
            &ctx.genesis_hash,
        );
    }
});
