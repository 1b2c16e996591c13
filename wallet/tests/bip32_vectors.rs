//! The official BIP32 test vectors 1-5 (transcribed from bip-0032.mediawiki into
//! `data/bip32_vectors.json`).

use cairn_wallet::keys::{
    ChildNumber, DecodeError, DerivationPath, ExtendedKey, ExtendedPrivateKey, ExtendedPublicKey,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct File {
    vectors: Vec<Vector>,
    invalid: Vec<Invalid>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    seed: String,
    chains: Vec<Chain>,
}

#[derive(Deserialize)]
struct Chain {
    path: String,
    xpub: String,
    xprv: String,
}

#[derive(Deserialize)]
struct Invalid {
    key: String,
    reason: String,
}

fn load() -> File {
    serde_json::from_str(include_str!("data/bip32_vectors.json")).expect("bip32_vectors.json")
}

#[test]
fn vectors_1_to_4_are_all_there() {
    let file = load();
    let names: Vec<&str> = file.vectors.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Test vector 1",
            "Test vector 2",
            "Test vector 3",
            "Test vector 4"
        ]
    );
    let chains: usize = file.vectors.iter().map(|v| v.chains.len()).sum();
    assert_eq!(chains, 6 + 6 + 2 + 3);
    assert_eq!(file.invalid.len(), 16);
}

#[test]
fn every_chain_matches_from_the_master() {
    for vector in load().vectors {
        let seed = hex::decode(&vector.seed).unwrap();
        let master = ExtendedPrivateKey::new_master(&seed).unwrap();
        for chain in &vector.chains {
            let path: DerivationPath = chain.path.parse().unwrap();
            let key = master.derive_path(&path).unwrap();
            let context = format!("{} {}", vector.name, chain.path);
            assert_eq!(key.to_xprv().as_str(), chain.xprv, "xprv of {context}");
            assert_eq!(
                key.to_extended_public_key().to_string(),
                chain.xpub,
                "xpub of {context}"
            );
            assert_eq!(key.depth as usize, path.len(), "{context}");
        }
    }
}

#[test]
fn every_chain_matches_step_by_step() {
    // Each chain is its predecessor plus one step: derive the chains incrementally.
    for vector in load().vectors {
        let seed = hex::decode(&vector.seed).unwrap();
        let mut key = ExtendedPrivateKey::new_master(&seed).unwrap();
        let mut previous = DerivationPath::master();
        for chain in &vector.chains {
            let path: DerivationPath = chain.path.parse().unwrap();
            let new_steps = &path.as_slice()[previous.len()..];
            assert_eq!(&path.as_slice()[..previous.len()], previous.as_slice());
            for &step in new_steps {
                key = key.derive_child(step).unwrap();
            }
            assert_eq!(
                key.to_xprv().as_str(),
                chain.xprv,
                "{} {}",
                vector.name,
                path
            );
            previous = path;
        }
    }
}

#[test]
fn public_derivation_matches_for_normal_steps() {
    let mut checked = 0;
    for vector in load().vectors {
        for pair in vector.chains.windows(2) {
            let parent: DerivationPath = pair[0].path.parse().unwrap();
            let child: DerivationPath = pair[1].path.parse().unwrap();
            let steps = &child.as_slice()[parent.len()..];
            let parent_xpub: ExtendedPublicKey = pair[0].xpub.parse().unwrap();
            let result = parent_xpub.derive_path(steps);
            if steps.iter().any(|s| s.is_hardened()) {
                assert!(
                    result.is_err(),
                    "{} {child}: hardened from xpub",
                    vector.name
                );
            } else {
                assert_eq!(
                    result.unwrap().to_string(),
                    pair[1].xpub,
                    "{} {child}",
                    vector.name
                );
                checked += 1;
            }
        }
    }
    // m/0'/1, m/0'/1/2'/2, m/0'/1/2'/2/1000000000 (vector 1), m/0, m/0/2147483647'/1
    // and m/0/2147483647'/1/2147483646'/2 (vector 2).
    assert_eq!(checked, 6);
}

#[test]
fn every_serialized_key_round_trips() {
    for vector in load().vectors {
        for chain in &vector.chains {
            let xprv = ExtendedPrivateKey::from_xprv(&chain.xprv).unwrap();
            assert_eq!(xprv.to_xprv().as_str(), chain.xprv);
            assert_eq!(xprv.to_extended_public_key().to_string(), chain.xpub);
            let xpub = ExtendedPublicKey::from_xpub(&chain.xpub).unwrap();
            assert_eq!(xpub.to_string(), chain.xpub);
            assert_eq!(xpub, xprv.to_extended_public_key());
            match chain.xpub.parse::<ExtendedKey>().unwrap() {
                ExtendedKey::Public(k) => assert_eq!(k, xpub),
                ExtendedKey::Private(_) => panic!("xpub decoded as private"),
            }
        }
    }
}

#[test]
fn leading_zeros_are_retained() {
    // Vector 3 exists for this: the master secret must be serialized as 32 bytes.
    let file = load();
    let vector = &file.vectors[2];
    let master = ExtendedPrivateKey::new_master(&hex::decode(&vector.seed).unwrap()).unwrap();
    let child = master
        .derive_child(ChildNumber::hardened(0).unwrap())
        .unwrap();
    assert_eq!(child.to_xprv().as_str(), vector.chains[1].xprv);
}

/// Vector 5: invalid extended keys, each with the reason the spec gives.
#[test]
fn vector_5_invalid_keys_are_rejected() {
    let file = load();
    for Invalid { key, reason } in &file.invalid {
        let err = key.parse::<ExtendedKey>().expect_err(reason);
        let expected_ok = match reason.as_str() {
            "pubkey version / prvkey mismatch" => matches!(
                err,
                DecodeError::VersionKeyMismatch {
                    version: "public",
                    data: "private"
                }
            ),
            "prvkey version / pubkey mismatch" => matches!(
                err,
                DecodeError::VersionKeyMismatch {
                    version: "private",
                    data: "public"
                }
            ),
            "invalid pubkey prefix 04" => err == DecodeError::PublicKeyPrefix(0x04),
            "invalid prvkey prefix 04" => err == DecodeError::PrivateKeyPrefix(0x04),
            "invalid pubkey prefix 01" => err == DecodeError::PublicKeyPrefix(0x01),
            "invalid prvkey prefix 01" => err == DecodeError::PrivateKeyPrefix(0x01),
            "zero depth with non-zero parent fingerprint" => {
                err == DecodeError::ZeroDepthParentFingerprint
            }
            "zero depth with non-zero index" => err == DecodeError::ZeroDepthChildNumber,
            "unknown extended key version" => matches!(err, DecodeError::UnknownVersion(_)),
            "private key 0 not in 1..n-1" | "private key n not in 1..n-1" => {
                err == DecodeError::PrivateKeyRange
            }
            "invalid pubkey 020000000000000000000000000000000000000000000000000000000000000007" => {
                err == DecodeError::PublicKeyPoint
            }
            "invalid checksum" => err == DecodeError::Checksum,
            other => panic!("unexpected reason in the vector file: {other}"),
        };
        assert!(expected_ok, "{key} ({reason}): got {err:?}");
        // The typed entry points reject them as well.
        assert!(ExtendedPrivateKey::from_xprv(key).is_err(), "{reason}");
        assert!(ExtendedPublicKey::from_xpub(key).is_err(), "{reason}");
    }
}
