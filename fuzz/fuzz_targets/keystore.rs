//! A keystore file (`wallet.json`), read through `Keystore::open` as the wallet reads it:
//! never panics; what opens answers every accessor; saving it (`set_chain`) writes a file
//! that opens to the same keystore, and saving that again writes the same bytes.
//!
//! Unlocking is left out: it runs Argon2 with the file's own costs (up to 4 GiB, bounded by
//! `KdfParams::validate`), which is the point of the format but not something to run per
//! input. Files live in a per-process directory under `$CAIRN_FUZZ_SCRATCH` if set (CI sets
//! it to its scratch directory, which it removes), else `/dev/shm` when there is one.
#![no_main]
use cairn_wallet::chain::ChainParams;
use cairn_wallet::keystore::Keystore;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn wallet_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = PathBuf::from("/dev/shm");
        let base = match std::env::var_os("CAIRN_FUZZ_SCRATCH") {
            Some(dir) => PathBuf::from(dir),
            None if shm.is_dir() => shm,
            None => std::env::temp_dir(),
        };
        let dir = base.join(format!("cairn-fuzz-keystore-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory for the keystore");
        dir
    })
}

fn dev_chain() -> &'static ChainParams {
    static DEV: OnceLock<ChainParams> = OnceLock::new();
    DEV.get_or_init(ChainParams::dev)
}

fuzz_target!(|data: &[u8]| {
    let dir = wallet_dir();
    let path = Keystore::file_path(dir);
    std::fs::write(&path, data).expect("writing the scratch keystore");
    let Ok(mut keystore) = Keystore::open(dir) else {
        return;
    };
    let chain = keystore.chain().cloned();
    let shown = chain.clone().unwrap_or_else(|| dev_chain().clone());
    for account in keystore.accounts() {
        let _ = account.path();
        let _ = shown.address_string(&account.address());
        assert_eq!(keystore.account(account.index), Some(account));
    }
    let receive = keystore.receive_account().clone();
    let (created, kdf, accounts) = (
        keystore.created(),
        keystore.kdf(),
        keystore.accounts().to_vec(),
    );
    kdf.validate()
        .expect("an opened keystore has checked costs");

    keystore
        .set_chain(shown.clone())
        .expect("saving the keystore");
    let first = std::fs::read(&path).expect("reading the saved keystore");
    let reopened = Keystore::open(dir).unwrap_or_else(|e| {
        panic!(
            "a saved keystore does not open: {e}\n{}",
            String::from_utf8_lossy(&first)
        )
    });
    assert_eq!(reopened.accounts(), &accounts[..]);
    assert_eq!(reopened.receive_account(), &receive);
    assert_eq!(reopened.created(), created);
    assert_eq!(reopened.kdf(), kdf);
    assert_eq!(reopened.chain(), Some(&shown));
    let mut reopened = reopened;
    reopened
        .set_chain(shown)
        .expect("saving the keystore again");
    let second = std::fs::read(&path).expect("reading the saved keystore");
    assert!(
        first == second,
        "saving an opened keystore again changes its bytes"
    );
});
