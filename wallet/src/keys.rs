//! Cairn account keys: BIP39 mnemonic -> seed -> BIP32 `m/44'/7370'/0'/0/i` -> BIP340 key pair.
//!
//! ```
//! use cairn_wallet::keys::{account_xonly, mnemonic_to_seed, DEV_MNEMONIC};
//!
//! let seed = mnemonic_to_seed(DEV_MNEMONIC, "").unwrap();
//! let xonly = account_xonly(&seed, 0);
//! assert_eq!(xonly, cairn_wallet::keys::dev_xonly(0));
//! ```

use std::fmt;
use std::sync::OnceLock;

use bip39::{Language, Mnemonic};
use secp256k1::Keypair;
use zeroize::Zeroize;

pub use crate::bip32::{
    hash160, Bip32Error, ChainCode, ChildNumber, DecodeError, DerivationPath, ExtendedKey,
    ExtendedPrivateKey, ExtendedPublicKey, Fingerprint, PathError, HARDENED_BIT,
};

/// The dev chain's published test mnemonic (the one Hardhat and Anvil publish), used with
/// an empty BIP39 passphrase. Every key derived from it is public knowledge: dev/test only.
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// Cairn's BIP44 coin type.
pub const CAIRN_COIN_TYPE: u32 = 7370;

/// Account `i` lives at `CAIRN_ACCOUNT_PATH_PREFIX/i`, i.e. `m/44'/7370'/0'/0/i`.
pub const CAIRN_ACCOUNT_PATH_PREFIX: &str = "m/44'/7370'/0'/0";

/// The steps of [`CAIRN_ACCOUNT_PATH_PREFIX`]: `44'`, `7370'`, `0'`, `0`.
const ACCOUNT_PREFIX_STEPS: [ChildNumber; 4] = [
    ChildNumber::from_index(44 | HARDENED_BIT),
    ChildNumber::from_index(CAIRN_COIN_TYPE | HARDENED_BIT),
    ChildNumber::from_index(HARDENED_BIT),
    ChildNumber::from_index(0),
];

/// Errors from turning a mnemonic into keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Unknown word, bad word count or bad checksum.
    #[error("invalid BIP39 mnemonic: {0}")]
    Mnemonic(#[from] bip39::Error),
    /// Key derivation failed.
    #[error(transparent)]
    Bip32(#[from] Bip32Error),
}

/// A 64-byte BIP39 seed. Zeroized on drop; `Debug` does not print it.
#[derive(Clone)]
pub struct Seed([u8; 64]);

impl Seed {
    /// Wraps raw seed bytes.
    pub fn from_bytes(bytes: [u8; 64]) -> Self {
        Seed(bytes)
    }

    /// The seed bytes.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }

    /// The BIP32 master key of this seed.
    pub fn master_key(&self) -> Result<ExtendedPrivateKey, Bip32Error> {
        ExtendedPrivateKey::new_master(&self.0)
    }
}

impl AsRef<[u8]> for Seed {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Seed {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(<redacted>)")
    }
}

/// Parses an English BIP39 mnemonic (checks the words and the checksum; the phrase is
/// NFKD-normalized first).
pub fn parse_mnemonic(phrase: &str) -> Result<Mnemonic, KeyError> {
    Ok(Mnemonic::parse_in(Language::English, phrase)?)
}

/// The BIP39 seed of `mnemonic` with `passphrase` (`""` for none):
/// `PBKDF2-HMAC-SHA512(mnemonic, "mnemonic" + passphrase, 2048)`.
pub fn seed_from_mnemonic(mnemonic: &Mnemonic, passphrase: &str) -> Seed {
    Seed(mnemonic.to_seed(passphrase))
}

/// Parses an English mnemonic and returns its BIP39 seed with `passphrase` (`""` for none).
pub fn mnemonic_to_seed(phrase: &str, passphrase: &str) -> Result<Seed, KeyError> {
    Ok(seed_from_mnemonic(&parse_mnemonic(phrase)?, passphrase))
}

/// The path of Cairn account `i`: `m/44'/7370'/0'/0/i`, or an error if `i >= 2^31`.
pub fn try_account_path(i: u32) -> Result<DerivationPath, Bip32Error> {
    let last = ChildNumber::normal(i)?;
    Ok(ACCOUNT_PREFIX_STEPS
        .iter()
        .copied()
        .chain(std::iter::once(last))
        .collect())
}

/// The path of Cairn account `i`: `m/44'/7370'/0'/0/i`.
///
/// # Panics
///
/// If `i >= 2^31` (the last step is a normal index). Use [`try_account_path`] for input
/// that has not been checked.
pub fn account_path(i: u32) -> DerivationPath {
    try_account_path(i).unwrap_or_else(|e| panic!("account index {i}: {e}"))
}

/// The extended private key of Cairn account `i` of `seed`.
pub fn account_extended_key(
    seed: impl AsRef<[u8]>,
    i: u32,
) -> Result<ExtendedPrivateKey, Bip32Error> {
    let path = try_account_path(i)?;
    ExtendedPrivateKey::new_master(seed.as_ref())?.derive_path(&path)
}

/// The key pair of Cairn account `i` of `seed`.
///
/// Errors if `i >= 2^31`, if the seed is not 16 to 64 bytes, or (probability < 2^-127)
/// if a derivation step gives an invalid key.
pub fn try_account_keypair(seed: impl AsRef<[u8]>, i: u32) -> Result<Keypair, Bip32Error> {
    Ok(account_extended_key(seed, i)?.keypair())
}

/// The key pair of Cairn account `i` of `seed`.
///
/// # Panics
///
/// When [`try_account_keypair`] errors: `i >= 2^31`, a seed that is not 16 to 64 bytes
/// (BIP39 seeds are 64), or an invalid derived key (probability < 2^-127).
pub fn account_keypair(seed: impl AsRef<[u8]>, i: u32) -> Keypair {
    try_account_keypair(seed, i).unwrap_or_else(|e| panic!("account {i}: {e}"))
}

/// The BIP340 x-only public key of Cairn account `i` of `seed`: a Cairn address key.
///
/// # Panics
///
/// As [`account_keypair`].
pub fn account_xonly(seed: impl AsRef<[u8]>, i: u32) -> [u8; 32] {
    account_keypair(seed, i)
        .x_only_public_key()
        .0
        .to_byte_array()
}

/// The seed of [`DEV_MNEMONIC`] with no passphrase (computed once).
pub fn dev_seed() -> &'static Seed {
    static DEV_SEED: OnceLock<Seed> = OnceLock::new();
    DEV_SEED.get_or_init(|| {
        mnemonic_to_seed(DEV_MNEMONIC, "").expect("DEV_MNEMONIC is a valid BIP39 mnemonic")
    })
}

/// Dev account `i`: Cairn account `i` of [`DEV_MNEMONIC`]. Public knowledge; dev chain only.
///
/// # Panics
///
/// If `i >= 2^31`.
pub fn dev_keypair(i: u32) -> Keypair {
    account_keypair(dev_seed(), i)
}

/// The x-only public key of [`dev_keypair`]`(i)`.
///
/// # Panics
///
/// If `i >= 2^31`.
pub fn dev_xonly(i: u32) -> [u8; 32] {
    account_xonly(dev_seed(), i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_prefix_constant_matches_steps() {
        let parsed: DerivationPath = CAIRN_ACCOUNT_PATH_PREFIX.parse().unwrap();
        assert_eq!(parsed.as_slice(), &ACCOUNT_PREFIX_STEPS);
        assert_eq!(account_path(5).to_string(), "m/44'/7370'/0'/0/5");
        assert_eq!(
            account_path(5),
            format!("{CAIRN_ACCOUNT_PATH_PREFIX}/5").parse().unwrap()
        );
    }

    #[test]
    fn account_index_range() {
        assert!(try_account_path(HARDENED_BIT - 1).is_ok());
        assert_eq!(
            try_account_path(HARDENED_BIT).unwrap_err(),
            Bip32Error::IndexOutOfRange(HARDENED_BIT)
        );
        assert_eq!(
            try_account_keypair(dev_seed(), u32::MAX).unwrap_err(),
            Bip32Error::IndexOutOfRange(u32::MAX)
        );
    }

    #[test]
    #[should_panic(expected = "account index 2147483648")]
    fn account_path_panics_out_of_range() {
        let _ = account_path(HARDENED_BIT);
    }

    #[test]
    fn seed_debug_is_redacted() {
        let seed = dev_seed();
        let debug = format!("{seed:?}");
        assert_eq!(debug, "Seed(<redacted>)");
        assert!(!debug.contains(&hex::encode(&seed.as_bytes()[..4])));
    }

    #[test]
    fn bad_mnemonics_are_rejected() {
        // Bad checksum (the last word of DEV_MNEMONIC is "junk").
        assert!(matches!(
            mnemonic_to_seed(
                "test test test test test test test test test test test test",
                ""
            ),
            Err(KeyError::Mnemonic(bip39::Error::InvalidChecksum))
        ));
        assert!(matches!(
            mnemonic_to_seed("test test test", ""),
            Err(KeyError::Mnemonic(bip39::Error::BadWordCount(3)))
        ));
        assert!(matches!(
            mnemonic_to_seed(
                "test test test test test test test test test test test cairnx",
                ""
            ),
            Err(KeyError::Mnemonic(bip39::Error::UnknownWord(11)))
        ));
    }

    #[test]
    fn passphrase_changes_the_seed() {
        let a = mnemonic_to_seed(DEV_MNEMONIC, "").unwrap();
        let b = mnemonic_to_seed(DEV_MNEMONIC, "cairn").unwrap();
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert_eq!(a.as_bytes(), dev_seed().as_bytes());
        assert_ne!(account_xonly(&a, 0), account_xonly(&b, 0));
    }

    #[test]
    fn account_key_metadata() {
        let key = account_extended_key(dev_seed(), 3).unwrap();
        assert_eq!(key.depth, 5);
        assert_eq!(key.child_number, ChildNumber::normal(3).unwrap());
        let parent = dev_seed()
            .master_key()
            .unwrap()
            .derive_path(ACCOUNT_PREFIX_STEPS)
            .unwrap();
        assert_eq!(key.parent_fingerprint, parent.fingerprint());
        // The account's public key can also be derived from the account-chain xpub.
        let public_child = parent
            .to_extended_public_key()
            .derive_child(ChildNumber::normal(3).unwrap())
            .unwrap();
        assert_eq!(public_child, key.to_extended_public_key());
        assert_eq!(
            public_child.x_only_public_key().to_byte_array(),
            dev_xonly(3)
        );
    }
}
