//! The keystore file: round trip, wrong passphrase, tampering, permissions, overwriting,
//! versions.

use std::fs;
use std::path::Path;

use cairn_wallet::chain::ChainParams;
use cairn_wallet::keys::{dev_keypair, dev_xonly, parse_mnemonic, DEV_MNEMONIC};
use cairn_wallet::keystore::{
    generate_mnemonic, CreateOptions, KdfParams, Keystore, KeystoreError, KEYSTORE_FILE,
};
use serde_json::Value;

fn options(addresses: u32) -> CreateOptions {
    CreateOptions {
        kdf: KdfParams::INSECURE_FOR_TESTS,
        addresses,
        overwrite: false,
        created: 1_795_300_000,
        chain: Some(ChainParams::dev()),
    }
}

fn create_dev(dir: &Path, addresses: u32) -> Keystore {
    let mnemonic = parse_mnemonic(DEV_MNEMONIC).unwrap();
    Keystore::create(dir, &mnemonic, "correct horse", options(addresses))
        .unwrap()
        .0
}

fn edit_json(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let path = dir.join(KEYSTORE_FILE);
    let mut value: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut value);
    fs::write(&path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
}

fn flip_hex_digit(value: &mut Value) {
    let text = value.as_str().unwrap().to_string();
    let mut chars: Vec<char> = text.chars().collect();
    chars[4] = if chars[4] == '0' { '1' } else { '0' };
    *value = Value::String(chars.into_iter().collect());
}

#[test]
fn round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let created = create_dev(dir.path(), 3);
    let opened = Keystore::open(dir.path()).unwrap();
    assert_eq!(opened.accounts(), created.accounts());
    assert_eq!(opened.accounts().len(), 3);
    assert_eq!(opened.created(), 1_795_300_000);
    assert_eq!(opened.chain(), Some(&ChainParams::dev()));
    assert_eq!(opened.kdf(), KdfParams::INSECURE_FOR_TESTS);
    for (i, account) in opened.accounts().iter().enumerate() {
        assert_eq!(account.xonly, dev_xonly(i as u32));
    }
    let unlocked = opened.unlock("correct horse").unwrap();
    assert_eq!(
        unlocked.keypair(2).unwrap().secret_key().to_secret_bytes(),
        dev_keypair(2).secret_key().to_secret_bytes()
    );
    // The secret is not in the clear.
    let text = fs::read_to_string(dir.path().join(KEYSTORE_FILE)).unwrap();
    assert!(!text.contains("test test"));
    let entropy = hex::encode(parse_mnemonic(DEV_MNEMONIC).unwrap().to_entropy());
    assert!(!text.contains(&entropy));
}

#[test]
fn round_trip_of_a_new_24_word_mnemonic_with_default_costs() {
    let dir = tempfile::tempdir().unwrap();
    let mnemonic = generate_mnemonic().unwrap();
    let (keystore, _) = Keystore::create(
        dir.path(),
        &mnemonic,
        "pw",
        CreateOptions {
            kdf: KdfParams::DEFAULT,
            ..options(1)
        },
    )
    .unwrap();
    let opened = Keystore::open(dir.path()).unwrap();
    assert_eq!(opened.kdf(), KdfParams::DEFAULT);
    let text = fs::read_to_string(keystore.path()).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["secret"]["kdf"]["m_cost_kib"], 65536);
    assert_eq!(value["secret"]["kdf"]["t_cost"], 3);
    assert_eq!(value["secret"]["kdf"]["p_cost"], 1);
    let unlocked = opened.unlock("pw").unwrap();
    let seed = cairn_wallet::keys::seed_from_mnemonic(&mnemonic, "");
    assert_eq!(
        unlocked.xonly(0).unwrap(),
        cairn_wallet::keys::account_xonly(&seed, 0)
    );
}

#[test]
fn wrong_passphrase_is_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let keystore = create_dev(dir.path(), 1);
    let error = keystore.unlock("correct horse ").unwrap_err();
    assert!(
        matches!(error, KeystoreError::WrongPassphrase { .. }),
        "{error:?}"
    );
    assert!(error.to_string().starts_with("wrong passphrase"), "{error}");
    assert!(matches!(
        keystore.unlock(""),
        Err(KeystoreError::WrongPassphrase { .. })
    ));
}

#[test]
fn tampered_ciphertext_nonce_or_salt_fail() {
    for field in ["ciphertext", "nonce"] {
        let dir = tempfile::tempdir().unwrap();
        create_dev(dir.path(), 1);
        edit_json(dir.path(), |v| flip_hex_digit(&mut v["secret"][field]));
        let keystore = Keystore::open(dir.path()).unwrap();
        assert!(
            matches!(
                keystore.unlock("correct horse"),
                Err(KeystoreError::WrongPassphrase { .. })
            ),
            "{field}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    create_dev(dir.path(), 1);
    edit_json(dir.path(), |v| {
        flip_hex_digit(&mut v["secret"]["kdf"]["salt"])
    });
    assert!(matches!(
        Keystore::open(dir.path()).unwrap().unlock("correct horse"),
        Err(KeystoreError::WrongPassphrase { .. })
    ));
    // Cost parameters are inputs of the key too.
    let dir = tempfile::tempdir().unwrap();
    create_dev(dir.path(), 1);
    edit_json(dir.path(), |v| v["secret"]["kdf"]["t_cost"] = 2.into());
    assert!(matches!(
        Keystore::open(dir.path()).unwrap().unlock("correct horse"),
        Err(KeystoreError::WrongPassphrase { .. })
    ));
}

#[test]
fn tampered_public_key_is_caught_on_unlock() {
    let dir = tempfile::tempdir().unwrap();
    create_dev(dir.path(), 2);
    edit_json(dir.path(), |v| {
        v["accounts"][1]["xonly"] = Value::String(hex::encode(dev_xonly(7)))
    });
    let keystore = Keystore::open(dir.path()).unwrap();
    let error = keystore.unlock("correct horse").unwrap_err();
    assert!(matches!(error, KeystoreError::Corrupt { .. }), "{error:?}");
    assert!(error.to_string().contains("address 1"), "{error}");
}

#[cfg(unix)]
#[test]
fn file_mode_is_0600_and_directory_0700() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("new").join("wallet");
    let mut keystore = create_dev(&dir, 1);
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.join(KEYSTORE_FILE)), 0o600);
    assert_eq!(mode(&dir), 0o700);
    // Saving again (a new address) keeps the mode.
    let unlocked = keystore.unlock("correct horse").unwrap();
    keystore.derive_next(&unlocked).unwrap();
    assert_eq!(mode(&dir.join(KEYSTORE_FILE)), 0o600);
}

#[test]
fn refuses_to_overwrite_without_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    create_dev(dir.path(), 1);
    let before = fs::read(dir.path().join(KEYSTORE_FILE)).unwrap();
    let other = generate_mnemonic().unwrap();
    let error = Keystore::create(dir.path(), &other, "x", options(1)).unwrap_err();
    assert!(
        matches!(error, KeystoreError::AlreadyExists { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("--force"), "{error}");
    assert_eq!(fs::read(dir.path().join(KEYSTORE_FILE)).unwrap(), before);
    // With the flag, the new wallet replaces the old.
    let (replaced, _) = Keystore::create(
        dir.path(),
        &other,
        "x",
        CreateOptions {
            overwrite: true,
            ..options(1)
        },
    )
    .unwrap();
    assert_ne!(replaced.accounts()[0].xonly, dev_xonly(0));
    assert!(Keystore::open(dir.path()).unwrap().unlock("x").is_ok());
    let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "no temporary file left");
}

#[test]
fn empty_passphrase_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mnemonic = parse_mnemonic(DEV_MNEMONIC).unwrap();
    assert!(matches!(
        Keystore::create(dir.path(), &mnemonic, "", options(1)),
        Err(KeystoreError::EmptyPassphrase)
    ));
    assert!(!dir.path().join(KEYSTORE_FILE).exists());
}

#[test]
fn missing_corrupt_and_unknown_version_files() {
    let dir = tempfile::tempdir().unwrap();
    let error = Keystore::open(dir.path()).unwrap_err();
    assert!(matches!(error, KeystoreError::NotFound { .. }), "{error:?}");
    assert!(error.to_string().contains("cairn-wallet init"), "{error}");

    create_dev(dir.path(), 1);
    edit_json(dir.path(), |v| v["version"] = 2.into());
    let error = Keystore::open(dir.path()).unwrap_err();
    assert!(
        matches!(error, KeystoreError::UnknownVersion { found: 2, .. }),
        "{error:?}"
    );

    let path = dir.path().join(KEYSTORE_FILE);
    for (text, why) in [
        ("{ not json", "not JSON"),
        ("{\"format\": \"something else\", \"version\": 1}", "format"),
        ("{\"format\": \"cairn-wallet-keystore\"}", "version"),
        (
            "{\"format\": \"cairn-wallet-keystore\", \"version\": 1}",
            "fields",
        ),
    ] {
        fs::write(&path, text).unwrap();
        let error = Keystore::open(dir.path()).unwrap_err();
        assert!(
            matches!(error, KeystoreError::Corrupt { .. }),
            "{why}: {error:?}"
        );
    }

    for edit in [
        (|v: &mut Value| v["accounts"] = Value::Array(vec![])) as fn(&mut Value),
        |v| v["accounts"][0]["index"] = 5.into(),
        |v| v["receive_index"] = 9.into(),
        |v| v["secret"]["nonce"] = "00".into(),
        |v| v["secret"]["kdf"]["m_cost_kib"] = 0xffff_ffffu32.into(),
        |v| v["secret"]["kdf"]["algorithm"] = "scrypt".into(),
        |v| v["secret"]["ciphertext"] = "abcd".into(),
        |v| v["chain"]["address_prefix"] = "not a prefix".into(),
    ] {
        let dir = tempfile::tempdir().unwrap();
        create_dev(dir.path(), 1);
        edit_json(dir.path(), edit);
        let error = Keystore::open(dir.path()).unwrap_err();
        assert!(matches!(error, KeystoreError::Corrupt { .. }), "{error:?}");
    }
}
