//! What the fuzz targets share: the round-trip checks every decoder gets, and the fixed
//! chain some targets decode against. No fuzzing entry point here (the targets in
//! `fuzz_targets/` are the entry points), so `examples/seeds.rs` can use it too.
//!
//! Two kinds of round trip:
//! - the codec is canonical (fixed-width integers, trailing bytes refused), so whatever
//!   decodes must re-encode to exactly the bytes it came from ([`codec_round_trip`]);
//! - JSON and TOML are not (whitespace, key order, escapes), so a decoded value must encode
//!   to text that decodes to the same value again ([`json_round_trip`],
//!   [`json_round_trip_as_values`]).
use cairn::core::consensus::genesis::genesis;
use cairn::core::consensus::ChainSpec;
use cairn::core::primitives::{codec, Block, BlockHash};
use cairn::core::state::memory::MemoryState;
use cairn::core::testkit::test_spec;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use std::sync::OnceLock;

/// Decodes `data` as a `T` with the codec; if it decodes, checks that it re-encodes to
/// `data` byte for byte, and returns it.
pub fn codec_round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(
    data: &[u8],
) -> Option<T> {
    let (value, bytes) = codec_value_round_trip::<T>(data)?;
    assert!(
        bytes == data,
        "not canonical: {} input bytes decode to {value:?}, which encodes to {} other bytes",
        data.len(),
        bytes.len()
    );
    Some(value)
}

/// Decodes `data` as a `T` with the codec; if it decodes, checks that its encoding decodes
/// to the same value and encodes to itself again, and returns the value and that encoding.
/// For values whose encoding is known not to be unique (see `sync_request`), where
/// [`codec_round_trip`] would stop at the first input.
pub fn codec_value_round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(
    data: &[u8],
) -> Option<(T, Vec<u8>)> {
    let value: T = codec::decode(data).ok()?;
    let bytes = codec::encode(&value).expect("a decoded value encodes");
    let again: T = codec::decode(&bytes)
        .unwrap_or_else(|e| panic!("{value:?} encodes to bytes that do not decode: {e}"));
    assert_eq!(again, value, "codec round trip");
    assert!(
        codec::encode(&again).expect("encodes") == bytes,
        "re-encoding is not stable"
    );
    Some((value, bytes))
}

/// Decodes `data` as a JSON `T`; if it decodes, encodes it and decodes that text again:
/// the value, the text and the value read back (a text that does not decode panics).
fn json_twice<T: Serialize + DeserializeOwned + Debug>(data: &[u8]) -> Option<(T, String, T)> {
    let value: T = serde_json::from_slice(data).ok()?;
    let text = serde_json::to_string(&value).expect("a decoded value encodes to JSON");
    let again: T = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{value:?} encodes to {text:?}, which does not decode: {e}"));
    Some((value, text, again))
}

/// Decodes `data` as a JSON `T`; if it decodes, checks that the value encodes to JSON that
/// decodes to an equal value, and returns it.
pub fn json_round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(
    data: &[u8],
) -> Option<T> {
    let (value, text, again) = json_twice::<T>(data)?;
    assert_eq!(again, value, "JSON round trip through {text:?}");
    Some(value)
}

/// [`json_round_trip`] comparing the two values as JSON values: for shapes without
/// `PartialEq`, and for shapes with `f64` fields, since serde_json (without its
/// `float_roundtrip` feature, which Cairn does not enable) may read a float back one unit in
/// the last place off. Floats are compared with that tolerance, everything else exactly.
pub fn json_round_trip_as_values<T: Serialize + DeserializeOwned + Debug>(
    data: &[u8],
) -> Option<T> {
    let (value, text, again) = json_twice::<T>(data)?;
    let before = serde_json::to_value(&value).expect("JSON value");
    let after = serde_json::to_value(&again).expect("JSON value");
    assert!(
        nearly_equal(&before, &after),
        "JSON round trip through {text:?}: {value:?} came back as {again:?}"
    );
    Some(value)
}

/// Equal JSON values, floats within a few units in the last place.
fn nearly_equal(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y || (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| nearly_equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| nearly_equal(v, w)))
        }
        _ => a == b,
    }
}

/// The chain that targets needing one decode against: `testkit::test_spec()`, its genesis
/// block and the state after it. Built once per process.
pub struct TestContext {
    /// The spec.
    pub spec: ChainSpec,
    /// Its genesis block.
    pub genesis: Block,
    /// Its genesis hash.
    pub genesis_hash: BlockHash,
    /// The state after genesis.
    pub state: MemoryState,
}

/// The shared [`TestContext`].
pub fn test_context() -> &'static TestContext {
    static CONTEXT: OnceLock<TestContext> = OnceLock::new();
    CONTEXT.get_or_init(|| {
        let spec = test_spec();
        let (block, change) = genesis(&spec);
        let mut state = MemoryState::default();
        state.apply_change(&change);
        TestContext {
            genesis_hash: block.hash(),
            genesis: block,
            spec,
            state,
        }
    })
}
