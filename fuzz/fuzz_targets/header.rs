//! A block header from outside (gossip, a `Headers` response): never panics; what decodes
//! re-encodes to the same bytes, which are the header's own 116-byte layout, and hashing or
//! checking its proof of work does not panic.
#![no_main]
use cairn::core::consensus::validation::check_proof_of_work;
use cairn::core::primitives::header::HEADER_SIZE;
use cairn::core::primitives::Header;
use cairn_fuzz::codec_round_trip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(header) = codec_round_trip::<Header>(data) else {
        return;
    };
    // The codec's encoding and the hashed layout agree, both ways.
    let layout: &[u8; HEADER_SIZE] = data.try_into().expect("a header encodes to 116 bytes");
    assert_eq!(&header.to_bytes(), layout);
    assert_eq!(Header::from_bytes(layout), header);
    let _ = header.hash();
    let _ = check_proof_of_work(&header);
});
