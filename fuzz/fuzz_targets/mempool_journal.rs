//! `mempool.journal`'s records (`core::mempool::journal_records`, replayed at start after
//! the header): never panics; decoding stops at the first record that is not whole, and the
//! records kept re-encode to exactly the bytes they were read from.
#![no_main]
use cairn::core::mempool::journal_records::{decode_records, encode_record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let records = decode_records(data);
    assert!(records.valid_len <= data.len());
    assert_eq!(records.problem.is_none(), records.valid_len == data.len());
    let mut again = Vec::new();
    for transfer in &records.transfers {
        encode_record(transfer, &mut again).expect("a decoded transfer encodes");
    }
    assert_eq!(
        again,
        &data[..records.valid_len],
        "records re-encode to their bytes"
    );
});
