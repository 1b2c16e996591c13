//! The dev chain's accounts: Cairn accounts 0..9 of `DEV_MNEMONIC` (no passphrase).
//!
//! `data/dev_accounts_xonly.txt` is a golden file written by this code: one x-only public
//! key (hex) per line. To regenerate it after a deliberate change, run
//! `CAIRN_WALLET_BLESS=1 cargo test -p cairn-wallet --test dev_accounts`.

use std::path::PathBuf;

use cairn_wallet::keys::{
    account_path, account_xonly, dev_keypair, dev_seed, dev_xonly, mnemonic_to_seed,
    DerivationPath, ExtendedPrivateKey, DEV_MNEMONIC,
};

const DEV_ACCOUNTS: u32 = 10;

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/dev_accounts_xonly.txt")
}

fn computed() -> Vec<String> {
    (0..DEV_ACCOUNTS)
        .map(|i| hex::encode(dev_keypair(i).x_only_public_key().0.to_byte_array()))
        .collect()
}

#[test]
fn dev_accounts_match_the_golden_file() {
    let lines = computed();
    for (i, hex) in lines.iter().enumerate() {
        println!("dev account {i} ({}): {hex}", account_path(i as u32));
    }
    let text = lines.join("\n") + "\n";
    let path = golden_path();
    if std::env::var_os("CAIRN_WALLET_BLESS").is_some() {
        std::fs::write(&path, &text).expect("write golden file");
        println!("wrote {}", path.display());
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with CAIRN_WALLET_BLESS=1 to create it",
            path.display()
        )
    });
    assert_eq!(golden.lines().count(), DEV_ACCOUNTS as usize);
    assert_eq!(golden, text, "dev accounts changed");
}

#[test]
fn dev_accounts_are_distinct_and_consistent() {
    let lines = computed();
    let mut sorted = lines.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), lines.len());

    let seed = mnemonic_to_seed(DEV_MNEMONIC, "").unwrap();
    let master = ExtendedPrivateKey::new_master(seed.as_bytes()).unwrap();
    for (i, hex) in lines.iter().enumerate() {
        let i = i as u32;
        assert_eq!(&hex::encode(account_xonly(&seed, i)), hex);
        assert_eq!(&hex::encode(dev_xonly(i)), hex);
        let by_path = master
            .derive_path(
                format!("m/44'/7370'/0'/0/{i}")
                    .parse::<DerivationPath>()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(
            &hex::encode(by_path.x_only_public_key().to_byte_array()),
            hex
        );
        assert_eq!(
            by_path.secret.to_secret_bytes(),
            dev_keypair(i).secret_key().to_secret_bytes()
        );
    }
}

/// End-to-end check of mnemonic -> seed -> BIP44 path against independently published
/// values: Hardhat/Anvil derive their well-known dev accounts from the same mnemonic at
/// `m/44'/60'/0'/0/i` (Ethereum's coin type).
#[test]
fn same_mnemonic_gives_the_published_hardhat_keys() {
    let master = dev_seed().master_key().unwrap();
    let published = [
        "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
        "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
        "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    ];
    for (i, expected) in published.iter().enumerate() {
        let path: DerivationPath = format!("m/44'/60'/0'/0/{i}").parse().unwrap();
        let key = master.derive_path(&path).unwrap();
        assert_eq!(
            &hex::encode(key.secret.to_secret_bytes()),
            expected,
            "{path}"
        );
    }
}
