//! A chain spec file (`--chain path.toml`): never panics; a spec that parses and passes the
//! checks writes back to TOML that parses to the same spec; everything the node derives from
//! a spec at start (genesis block and state, the genesis index entry, subsidies, the ASERT
//! schedule at its extremes) works without panicking.
#![no_main]
use cairn::core::chain::BlockIndexEntry;
use cairn::core::consensus::asert::{asert_clock_after, genesis_asert_clock};
use cairn::core::consensus::genesis::genesis;
use cairn::core::consensus::validation::next_bits;
use cairn::core::consensus::ChainSpec;
use cairn::core::primitives::codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = ChainSpec::from_toml(text) else {
        return;
    };
    let written = spec.to_toml();
    let again = ChainSpec::from_toml(&written)
        .unwrap_or_else(|e| panic!("a valid spec writes {written:?}, which is refused: {e}"));
    assert_eq!(again, spec, "TOML round trip through {written:?}");

    let (block, _change) = genesis(&spec);
    let bytes = codec::encode(&block).expect("genesis encodes");
    assert_eq!(
        codec::decode::<cairn::core::primitives::Block>(&bytes).ok(),
        Some(block.clone())
    );
    let params = spec.asert_params();
    BlockIndexEntry::genesis(block.header, &params).expect("a checked spec has valid genesis bits");
    for height in [0, 1, spec.file.consensus.halving_interval, u32::MAX] {
        let _ = spec.subsidy_at(height);
    }
    let start = genesis_asert_clock(&params);
    let late = asert_clock_after(start, spec.file.genesis.time, u32::MAX, &params);
    let early = asert_clock_after(start, spec.file.genesis.time, 0, &params);
    for (height, clock) in [
        (0, start),
        (1, late),
        (u32::MAX, early),
        (u32::MAX, i64::MAX),
        (0, i64::MIN),
    ] {
        let _ = next_bits(&spec, height, clock);
    }
    let _ = spec.default_miner_address();
});
