//! The official BIP39 test vectors (Trezor's `vectors.json`, English, passphrase "TREZOR"):
//! entropy -> mnemonic, mnemonic -> seed, seed -> BIP32 master `xprv`.

use cairn_wallet::keys::{mnemonic_to_seed, parse_mnemonic, ExtendedPrivateKey};

const VECTORS: &str = include_str!("data/bip39_vectors.json");
const PASSPHRASE: &str = "TREZOR";

fn english_vectors() -> Vec<[String; 4]> {
    let json: serde_json::Value = serde_json::from_str(VECTORS).expect("vectors.json parses");
    let english = json["english"].as_array().expect("an \"english\" array");
    english
        .iter()
        .map(|v| {
            let fields: Vec<String> = v
                .as_array()
                .expect("each vector is an array")
                .iter()
                .map(|s| s.as_str().expect("string field").to_owned())
                .collect();
            fields.try_into().expect("[entropy, mnemonic, seed, xprv]")
        })
        .collect()
}

#[test]
fn all_english_vectors_are_present() {
    // The upstream file has 24 English vectors (12, 18 and 24 words).
    let vectors = english_vectors();
    assert_eq!(vectors.len(), 24);
    for words in [12, 18, 24] {
        assert!(vectors
            .iter()
            .any(|[_, m, _, _]| m.split(' ').count() == words));
    }
}

#[test]
fn entropy_gives_the_mnemonic() {
    for [entropy, mnemonic, _, _] in english_vectors() {
        let from_entropy = bip39::Mnemonic::from_entropy(&hex::decode(&entropy).unwrap()).unwrap();
        assert_eq!(from_entropy.to_string(), mnemonic, "entropy {entropy}");
        let parsed = parse_mnemonic(&mnemonic).unwrap();
        assert_eq!(hex::encode(parsed.to_entropy()), entropy, "{mnemonic}");
    }
}

#[test]
fn mnemonic_gives_the_seed_and_master_xprv() {
    let mut checked = 0;
    for [_, mnemonic, seed_hex, xprv] in english_vectors() {
        let seed = mnemonic_to_seed(&mnemonic, PASSPHRASE).unwrap();
        assert_eq!(hex::encode(seed.as_bytes()), seed_hex, "seed of {mnemonic}");

        let master = ExtendedPrivateKey::new_master(seed.as_bytes()).unwrap();
        assert_eq!(master.to_xprv().as_str(), xprv, "master xprv of {mnemonic}");
        assert_eq!(seed.master_key().unwrap().to_xprv(), master.to_xprv());

        // And the xprv decodes back to the same key.
        let decoded = ExtendedPrivateKey::from_xprv(&xprv).unwrap();
        assert_eq!(decoded.to_xprv().as_str(), xprv);
        assert_eq!(decoded.depth, 0);
        checked += 1;
    }
    assert_eq!(checked, 24);
}

#[test]
fn the_passphrase_matters() {
    let [_, mnemonic, seed_hex, _] = english_vectors().swap_remove(0);
    let without = mnemonic_to_seed(&mnemonic, "").unwrap();
    assert_ne!(hex::encode(without.as_bytes()), seed_hex);
}
