//! The keystore: one JSON file, `wallet.json`, in the wallet directory.
//!
//! Owns the wallet file: creating it (never over an existing one unless asked), reading and
//! checking it, decrypting its secret with the passphrase, and saving changes (a new
//! address, the chain it talked to) atomically. It does not talk to a node or ask for the
//! passphrase (see `passphrase`).
//!
//! # File format (version 1)
//!
//! ```json
//! {
//!   "format": "cairn-wallet-keystore",
//!   "version": 1,
//!   "created": 1795300000,
//!   "derivation_path": "m/44'/7370'/0'/0/i",
//!   "receive_index": 0,
//!   "accounts": [ { "index": 0, "xonly": "<64 hex digits>" } ],
//!   "chain": { "name": "Cairn Dev", "chain_id": 1337, "genesis_hash": "…",
//!              "symbol": "dCAIRN", "decimals": 8, "address_prefix": "cairndev" },
//!   "secret": {
//!     "kind": "bip39-entropy",
//!     "kdf": { "algorithm": "argon2id", "version": 19, "m_cost_kib": 65536,
//!              "t_cost": 3, "p_cost": 1, "salt": "<32 hex digits or more>" },
//!     "cipher": "xchacha20poly1305",
//!     "nonce": "<48 hex digits>",
//!     "ciphertext": "<hex: the entropy, then the 16-byte tag>"
//!   }
//! }
//! ```
//!
//! In the clear: the creation time (Unix seconds), the number of derived addresses and
//! their x-only public keys by index (account `i` is `m/44'/7370'/0'/0/i`, see `keys`), the
//! index of the current receive address, and the chain the wallet first talked to (`null`
//! until it has; only used to show addresses offline). Sealed: the BIP39 entropy of the
//! mnemonic (16 to 32 bytes; the mnemonic has no BIP39 passphrase). The key is
//! `argon2id(passphrase, salt)` (32 bytes, parameters as stored; default m = 64 MiB, t = 3,
//! p = 1); the cipher XChaCha20-Poly1305 with a random 24-byte nonce and the associated data
//! `cairn-wallet keystore v1`. Salt and nonce are fresh for every write of the secret.
//!
//! A wrong passphrase and a damaged ciphertext both fail the AEAD tag
//! ([`KeystoreError::WrongPassphrase`]). The public part is not covered by the tag (it must
//! be readable without the passphrase); [`Keystore::unlock`] re-derives every stored key
//! from the secret and refuses a file whose public keys do not match it, so a tampered
//! address list is caught before anything is signed.
//!
//! The file is written to a temporary file in the same directory with mode 0600, synced,
//! then moved into place (a hard link when it must not replace a file, else a rename), so a
//! crash leaves either the old or the new wallet. The directory is created with mode 0700.
//!
//! # Invariants
//!
//! * `accounts` is non-empty and `accounts[i].index == i`.
//! * `receive_index < accounts.len()`.
//! * Once unlocked, `accounts[i].xonly` is the key of account `i` of the sealed mnemonic.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use bip39::Mnemonic;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secp256k1::Keypair;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::chain::ChainParams;
use crate::keys::{self, KeyError, Seed, CAIRN_ACCOUNT_PATH_PREFIX};

/// The keystore's file name inside the wallet directory.
pub const KEYSTORE_FILE: &str = "wallet.json";
/// The `format` field of every keystore file.
pub const KEYSTORE_FORMAT: &str = "cairn-wallet-keystore";
/// The file version this code writes and reads.
pub const KEYSTORE_VERSION: u32 = 1;

const SECRET_KIND: &str = "bip39-entropy";
const KDF_ALGORITHM: &str = "argon2id";
const CIPHER: &str = "xchacha20poly1305";
const ASSOCIATED_DATA: &[u8] = b"cairn-wallet keystore v1";
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;

/// Errors of the keystore. Messages name the file and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// No wallet file in the directory.
    #[error(
        "no wallet at {}: create one with `cairn-wallet init`, `restore` or `import-dev` \
         (or point --wallet-dir at an existing one)",
        path.display()
    )]
    NotFound {
        /// The file looked for.
        path: PathBuf,
    },
    /// Creating a wallet where one exists, without the explicit flag.
    #[error(
        "a wallet already exists at {}: refusing to overwrite it (pass --force to replace it; \
         its coins are lost unless you have its mnemonic)",
        path.display()
    )]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// The AEAD tag did not verify: the passphrase is wrong (or the ciphertext damaged).
    #[error(
        "wrong passphrase: cannot decrypt the wallet at {} (if the passphrase is right, the \
         file's encrypted part is damaged)",
        path.display()
    )]
    WrongPassphrase {
        /// The wallet file.
        path: PathBuf,
    },
    /// The file is not a well-formed keystore.
    #[error("the wallet file {} is corrupt: {reason}", path.display())]
    Corrupt {
        /// The wallet file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A keystore of a version this code does not know.
    #[error(
        "the wallet file {} has version {found}; this cairn-wallet reads version {supported} \
         only (use a newer cairn-wallet)",
        path.display()
    )]
    UnknownVersion {
        /// The wallet file.
        path: PathBuf,
        /// The version found.
        found: u64,
        /// The version supported.
        supported: u32,
    },
    /// Reading or writing failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done (`read`, `write`, `create`).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// An empty passphrase for a new wallet.
    #[error("the passphrase must not be empty")]
    EmptyPassphrase,
    /// Argon2 parameters out of range.
    #[error("invalid key derivation parameters: {0}")]
    KdfParams(String),
    /// The operating system's random generator failed.
    #[error("the random number generator failed: {0}")]
    Random(String),
    /// Deriving a key failed (an index beyond 2^31 - 1).
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl KeystoreError {
    fn io<'a>(
        action: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(io::Error) -> KeystoreError + 'a {
        move |source| KeystoreError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Passes over the memory.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl KdfParams {
    /// What new wallets use: 64 MiB, 3 passes, 1 lane (about a third of a second).
    pub const DEFAULT: KdfParams = KdfParams {
        m_cost_kib: 64 * 1024,
        t_cost: 3,
        p_cost: 1,
    };

    /// Cheap parameters for tests only: they protect nothing.
    pub const INSECURE_FOR_TESTS: KdfParams = KdfParams {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };

    /// The most memory a file may ask for (4 GiB), so a hostile file cannot exhaust memory.
    pub const MAX_M_COST_KIB: u32 = 4 * 1024 * 1024;
    /// The most passes a file may ask for.
    pub const MAX_T_COST: u32 = 100;
    /// The most lanes a file may ask for.
    pub const MAX_P_COST: u32 = 64;

    /// Checks the parameters are ones this code accepts.
    pub fn validate(&self) -> Result<(), KeystoreError> {
        let bad = |what: String| Err(KeystoreError::KdfParams(what));
        if self.p_cost == 0 || self.p_cost > Self::MAX_P_COST {
            return bad(format!(
                "p_cost {} (1 to {})",
                self.p_cost,
                Self::MAX_P_COST
            ));
        }
        if self.t_cost == 0 || self.t_cost > Self::MAX_T_COST {
            return bad(format!(
                "t_cost {} (1 to {})",
                self.t_cost,
                Self::MAX_T_COST
            ));
        }
        let min_m = 8 * self.p_cost;
        if self.m_cost_kib < min_m || self.m_cost_kib > Self::MAX_M_COST_KIB {
            return bad(format!(
                "m_cost_kib {} ({min_m} to {})",
                self.m_cost_kib,
                Self::MAX_M_COST_KIB
            ));
        }
        Ok(())
    }

    /// The 32-byte key of `passphrase` and `salt`.
    fn derive_key(
        &self,
        passphrase: &[u8],
        salt: &[u8],
    ) -> Result<Zeroizing<[u8; KEY_LEN]>, KeystoreError> {
        self.validate()?;
        let params = Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(KEY_LEN))
            .map_err(|e| KeystoreError::KdfParams(e.to_string()))?;
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase, salt, key.as_mut())
            .map_err(|e| KeystoreError::KdfParams(e.to_string()))?;
        Ok(key)
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams::DEFAULT
    }
}

/// One derived address: account `index` and its x-only public key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountEntry {
    /// The last step of `m/44'/7370'/0'/0/index`.
    pub index: u32,
    /// The account's x-only public key (its address, before bech32m).
    #[serde(with = "cairn::core::primitives::serde_hex")]
    pub xonly: [u8; 32],
}

impl AccountEntry {
    /// The account's derivation path, e.g. `m/44'/7370'/0'/0/3`.
    pub fn path(&self) -> String {
        format!("{CAIRN_ACCOUNT_PATH_PREFIX}/{}", self.index)
    }

    /// The account's address.
    pub fn address(&self) -> cairn::core::primitives::Address {
        cairn::core::primitives::Address::from_xonly(self.xonly)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct KeystoreFile {
    format: String,
    version: u32,
    created: u64,
    derivation_path: String,
    receive_index: u32,
    accounts: Vec<AccountEntry>,
    chain: Option<ChainParams>,
    secret: SealedSecret,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SealedSecret {
    kind: String,
    kdf: KdfSection,
    cipher: String,
    #[serde(with = "hex::serde")]
    nonce: Vec<u8>,
    #[serde(with = "hex::serde")]
    ciphertext: Vec<u8>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct KdfSection {
    algorithm: String,
    version: u32,
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
    #[serde(with = "hex::serde")]
    salt: Vec<u8>,
}

impl KdfSection {
    fn params(&self) -> KdfParams {
        KdfParams {
            m_cost_kib: self.m_cost_kib,
            t_cost: self.t_cost,
            p_cost: self.p_cost,
        }
    }
}

/// How to create a keystore.
#[derive(Clone, Debug)]
pub struct CreateOptions {
    /// Argon2id costs ([`KdfParams::DEFAULT`] outside tests).
    pub kdf: KdfParams,
    /// How many addresses to derive at once (at least 1).
    pub addresses: u32,
    /// Replace an existing wallet file (`--force`).
    pub overwrite: bool,
    /// Creation time, Unix seconds.
    pub created: u64,
    /// The chain, if a node was reachable.
    pub chain: Option<ChainParams>,
}

/// A keystore file, loaded: its public data, and its secret still sealed.
#[derive(Clone, Debug)]
pub struct Keystore {
    path: PathBuf,
    file: KeystoreFile,
}

/// The decrypted secret: the mnemonic's seed. Zeroized on drop; its `Debug` is redacted.
pub struct UnlockedWallet {
    seed: Seed,
}

impl UnlockedWallet {
    /// The key pair of account `index` (for signing).
    pub fn keypair(&self, index: u32) -> Result<Keypair, KeyError> {
        Ok(keys::try_account_keypair(&self.seed, index)?)
    }

    /// The x-only public key of account `index`.
    pub fn xonly(&self, index: u32) -> Result<[u8; 32], KeyError> {
        let mut keypair = self.keypair(index)?;
        let xonly = keypair.x_only_public_key().0.to_byte_array();
        keypair.non_secure_erase();
        Ok(xonly)
    }

    fn from_mnemonic(mnemonic: &Mnemonic) -> Self {
        UnlockedWallet {
            seed: keys::seed_from_mnemonic(mnemonic, ""),
        }
    }
}

impl std::fmt::Debug for UnlockedWallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnlockedWallet(<redacted>)")
    }
}

impl Keystore {
    /// The keystore file of the wallet directory `dir`.
    pub fn file_path(dir: &Path) -> PathBuf {
        dir.join(KEYSTORE_FILE)
    }

    /// Creates `dir/wallet.json` for `mnemonic`, sealed with `passphrase`, with the first
    /// `options.addresses` addresses derived. Refuses to replace an existing file unless
    /// `options.overwrite`.
    pub fn create(
        dir: &Path,
        mnemonic: &Mnemonic,
        passphrase: &str,
        options: CreateOptions,
    ) -> Result<(Keystore, UnlockedWallet), KeystoreError> {
        let path = Keystore::file_path(dir);
        if passphrase.is_empty() {
            return Err(KeystoreError::EmptyPassphrase);
        }
        options.kdf.validate()?;
        if !options.overwrite && path.exists() {
            return Err(KeystoreError::AlreadyExists { path });
        }
        let unlocked = UnlockedWallet::from_mnemonic(mnemonic);
        let accounts = (0..options.addresses.max(1))
            .map(|index| {
                Ok(AccountEntry {
                    index,
                    xonly: unlocked.xonly(index)?,
                })
            })
            .collect::<Result<Vec<_>, KeyError>>()?;
        let (entropy, len) = mnemonic.to_entropy_array();
        let entropy = Zeroizing::new(entropy);
        let secret = seal(&entropy[..len], passphrase, options.kdf)?;
        let keystore = Keystore {
            path,
            file: KeystoreFile {
                format: KEYSTORE_FORMAT.to_string(),
                version: KEYSTORE_VERSION,
                created: options.created,
                derivation_path: format!("{CAIRN_ACCOUNT_PATH_PREFIX}/i"),
                receive_index: 0,
                accounts,
                chain: options.chain,
                secret,
            },
        };
        ensure_dir(dir)?;
        write_atomically(&keystore.path, &keystore.to_bytes(), options.overwrite)?;
        Ok((keystore, unlocked))
    }

    /// Reads and checks `dir/wallet.json` (the secret stays sealed).
    pub fn open(dir: &Path) -> Result<Keystore, KeystoreError> {
        let path = Keystore::file_path(dir);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(KeystoreError::NotFound { path })
            }
            Err(e) => return Err(KeystoreError::io("read", &path)(e)),
        };
        let file = parse(&path, &text)?;
        Ok(Keystore { path, file })
    }

    /// The wallet file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creation time, Unix seconds.
    pub fn created(&self) -> u64 {
        self.file.created
    }

    /// The derived addresses, by index (never empty).
    pub fn accounts(&self) -> &[AccountEntry] {
        &self.file.accounts
    }

    /// Address `index`, if derived.
    pub fn account(&self, index: u32) -> Option<&AccountEntry> {
        self.file.accounts.get(usize::try_from(index).ok()?)
    }

    /// The current receive address.
    pub fn receive_account(&self) -> &AccountEntry {
        &self.file.accounts[self.file.receive_index as usize]
    }

    /// The chain the wallet recorded, if any.
    pub fn chain(&self) -> Option<&ChainParams> {
        self.file.chain.as_ref()
    }

    /// The Argon2id costs of the sealed secret.
    pub fn kdf(&self) -> KdfParams {
        self.file.secret.kdf.params()
    }

    /// Decrypts the secret with `passphrase` and checks every stored public key against it.
    pub fn unlock(&self, passphrase: &str) -> Result<UnlockedWallet, KeystoreError> {
        let secret = &self.file.secret;
        let key = secret
            .kdf
            .params()
            .derive_key(passphrase.as_bytes(), &secret.kdf.salt)?;
        let cipher = XChaCha20Poly1305::new((&*key).into());
        let entropy = Zeroizing::new(
            cipher
                .decrypt(
                    XNonce::from_slice(&secret.nonce),
                    Payload {
                        msg: &secret.ciphertext,
                        aad: ASSOCIATED_DATA,
                    },
                )
                .map_err(|_| KeystoreError::WrongPassphrase {
                    path: self.path.clone(),
                })?,
        );
        let mnemonic = Mnemonic::from_entropy(&entropy).map_err(|e| self.corrupt(e))?;
        let unlocked = UnlockedWallet::from_mnemonic(&mnemonic);
        for account in &self.file.accounts {
            if unlocked.xonly(account.index)? != account.xonly {
                return Err(self.corrupt(format!(
                    "the stored public key of address {} does not match the wallet's secret \
                     (the file was modified)",
                    account.index
                )));
            }
        }
        Ok(unlocked)
    }

    /// Derives the next address (the secret is needed: the path has hardened steps), makes
    /// it the receive address and saves the file.
    pub fn derive_next(
        &mut self,
        unlocked: &UnlockedWallet,
    ) -> Result<AccountEntry, KeystoreError> {
        let index = u32::try_from(self.file.accounts.len())
            .map_err(|_| self.corrupt("too many addresses"))?;
        let entry = AccountEntry {
            index,
            xonly: unlocked.xonly(index)?,
        };
        let mut file = self.file.clone();
        file.accounts.push(entry.clone());
        file.receive_index = index;
        self.replace(file)?;
        Ok(entry)
    }

    /// Records the chain the wallet talks to and saves the file.
    pub fn set_chain(&mut self, chain: ChainParams) -> Result<(), KeystoreError> {
        let mut file = self.file.clone();
        file.chain = Some(chain);
        self.replace(file)
    }

    fn replace(&mut self, file: KeystoreFile) -> Result<(), KeystoreError> {
        let updated = Keystore {
            path: self.path.clone(),
            file,
        };
        write_atomically(&updated.path, &updated.to_bytes(), true)?;
        *self = updated;
        Ok(())
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut bytes =
            serde_json::to_vec_pretty(&self.file).expect("a keystore always serializes to JSON");
        bytes.push(b'\n');
        bytes
    }

    fn corrupt(&self, reason: impl ToString) -> KeystoreError {
        KeystoreError::Corrupt {
            path: self.path.clone(),
            reason: reason.to_string(),
        }
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N], KeystoreError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| KeystoreError::Random(e.to_string()))?;
    Ok(bytes)
}

/// 32 bytes of fresh entropy: a new 24-word mnemonic.
pub fn generate_mnemonic() -> Result<Mnemonic, KeystoreError> {
    let entropy = Zeroizing::new(random_bytes::<32>()?);
    Ok(Mnemonic::from_entropy(&*entropy).expect("32 bytes is a valid BIP39 entropy length"))
}

fn seal(entropy: &[u8], passphrase: &str, kdf: KdfParams) -> Result<SealedSecret, KeystoreError> {
    let salt = random_bytes::<SALT_LEN>()?;
    let nonce = random_bytes::<NONCE_LEN>()?;
    let key = kdf.derive_key(passphrase.as_bytes(), &salt)?;
    let ciphertext = XChaCha20Poly1305::new((&*key).into())
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: entropy,
                aad: ASSOCIATED_DATA,
            },
        )
        .expect("XChaCha20-Poly1305 encrypts any message shorter than 256 GiB");
    Ok(SealedSecret {
        kind: SECRET_KIND.to_string(),
        kdf: KdfSection {
            algorithm: KDF_ALGORITHM.to_string(),
            version: 0x13,
            m_cost_kib: kdf.m_cost_kib,
            t_cost: kdf.t_cost,
            p_cost: kdf.p_cost,
            salt: salt.to_vec(),
        },
        cipher: CIPHER.to_string(),
        nonce: nonce.to_vec(),
        ciphertext,
    })
}

/// Parses and checks a keystore file's text.
fn parse(path: &Path, text: &str) -> Result<KeystoreFile, KeystoreError> {
    let corrupt = |reason: String| KeystoreError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| corrupt(format!("not JSON: {e}")))?;
    if value.get("format").and_then(|f| f.as_str()) != Some(KEYSTORE_FORMAT) {
        return Err(corrupt(format!(
            "not a Cairn wallet file (no \"format\": \"{KEYSTORE_FORMAT}\")"
        )));
    }
    let version = value
        .get("version")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| corrupt("no version number".to_string()))?;
    if version != u64::from(KEYSTORE_VERSION) {
        return Err(KeystoreError::UnknownVersion {
            path: path.to_path_buf(),
            found: version,
            supported: KEYSTORE_VERSION,
        });
    }
    let file: KeystoreFile = serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?;
    if file.accounts.is_empty() {
        return Err(corrupt("no addresses".to_string()));
    }
    if let Some(i) = (0..file.accounts.len()).find(|&i| file.accounts[i].index as usize != i) {
        return Err(corrupt(format!(
            "address {i} has index {}",
            file.accounts[i].index
        )));
    }
    if file.receive_index as usize >= file.accounts.len() {
        return Err(corrupt(format!(
            "receive_index {} but only {} addresses",
            file.receive_index,
            file.accounts.len()
        )));
    }
    if let Some(chain) = &file.chain {
        chain
            .validate()
            .map_err(|e| corrupt(format!("chain: {e}")))?;
    }
    let secret = &file.secret;
    let kdf = &secret.kdf;
    if secret.kind != SECRET_KIND || kdf.algorithm != KDF_ALGORITHM || secret.cipher != CIPHER {
        return Err(corrupt(format!(
            "unsupported secret {:?} sealed with {:?} / {:?} (expected {SECRET_KIND}, \
             {KDF_ALGORITHM}, {CIPHER})",
            secret.kind, kdf.algorithm, secret.cipher
        )));
    }
    if kdf.version != 0x13 {
        return Err(corrupt(format!(
            "argon2 version {} (expected 19)",
            kdf.version
        )));
    }
    kdf.params()
        .validate()
        .map_err(|e| corrupt(e.to_string()))?;
    if kdf.salt.len() < 8 || kdf.salt.len() > 64 {
        return Err(corrupt(format!("salt of {} bytes", kdf.salt.len())));
    }
    if secret.nonce.len() != NONCE_LEN {
        return Err(corrupt(format!(
            "nonce of {} bytes (expected {NONCE_LEN})",
            secret.nonce.len()
        )));
    }
    let entropy_len = secret.ciphertext.len().saturating_sub(TAG_LEN);
    if secret.ciphertext.len() < TAG_LEN || !(16..=32).contains(&entropy_len) {
        return Err(corrupt(format!(
            "ciphertext of {} bytes",
            secret.ciphertext.len()
        )));
    }
    Ok(file)
}

/// Creates the wallet directory (mode 0700) if needed.
fn ensure_dir(dir: &Path) -> Result<(), KeystoreError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(KeystoreError::io("create", dir))
}

/// Writes `bytes` to `path` through a temporary file with mode 0600 in the same directory.
/// With `overwrite` false, fails with `AlreadyExists` if `path` exists (checked atomically).
fn write_atomically(path: &Path, bytes: &[u8], overwrite: bool) -> Result<(), KeystoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let suffix = hex::encode(random_bytes::<6>()?);
    let tmp = dir.join(format!(".{KEYSTORE_FILE}.{suffix}.tmp"));
    let result = write_new_file(&tmp, bytes).and_then(|()| {
        if overwrite {
            fs::rename(&tmp, path).map_err(KeystoreError::io("write", path))
        } else {
            // A hard link fails if `path` exists: no window between the check and the write.
            match fs::hard_link(&tmp, path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    Err(KeystoreError::AlreadyExists {
                        path: path.to_path_buf(),
                    })
                }
                Err(e) => Err(KeystoreError::io("write", path)(e)),
            }
        }
    });
    // After a rename the temporary name is gone; after a link (or a failure) remove it.
    let _ = fs::remove_file(&tmp);
    result?;
    if let Ok(dir) = fs::File::open(dir) {
        // Make the rename durable; not every platform can sync a directory.
        let _ = dir.sync_all();
    }
    Ok(())
}

fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), KeystoreError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(KeystoreError::io("write", path))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(KeystoreError::io("write", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{dev_xonly, parse_mnemonic, DEV_MNEMONIC};

    fn options(addresses: u32) -> CreateOptions {
        CreateOptions {
            kdf: KdfParams::INSECURE_FOR_TESTS,
            addresses,
            overwrite: false,
            created: 1_795_300_000,
            chain: None,
        }
    }

    #[test]
    fn kdf_bounds() {
        assert!(KdfParams::DEFAULT.validate().is_ok());
        assert!(KdfParams::INSECURE_FOR_TESTS.validate().is_ok());
        for bad in [
            KdfParams {
                m_cost_kib: 4,
                ..KdfParams::INSECURE_FOR_TESTS
            },
            KdfParams {
                t_cost: 0,
                ..KdfParams::INSECURE_FOR_TESTS
            },
            KdfParams {
                p_cost: 0,
                ..KdfParams::INSECURE_FOR_TESTS
            },
            KdfParams {
                m_cost_kib: KdfParams::MAX_M_COST_KIB + 1,
                ..KdfParams::INSECURE_FOR_TESTS
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn derive_next_extends_the_list_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mnemonic = parse_mnemonic(DEV_MNEMONIC).unwrap();
        let (mut keystore, unlocked) =
            Keystore::create(dir.path(), &mnemonic, "pw", options(2)).unwrap();
        assert_eq!(keystore.receive_account().index, 0);
        let entry = keystore.derive_next(&unlocked).unwrap();
        assert_eq!(entry.index, 2);
        assert_eq!(entry.xonly, dev_xonly(2));
        let reopened = Keystore::open(dir.path()).unwrap();
        assert_eq!(reopened.accounts().len(), 3);
        assert_eq!(reopened.receive_account().index, 2);
        assert_eq!(reopened.account(2).unwrap().path(), "m/44'/7370'/0'/0/2");
        reopened.unlock("pw").unwrap();
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [KEYSTORE_FILE]);
    }

    #[test]
    fn fresh_salt_and_nonce_for_every_wallet() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let mnemonic = parse_mnemonic(DEV_MNEMONIC).unwrap();
        let (ka, _) = Keystore::create(a.path(), &mnemonic, "pw", options(1)).unwrap();
        let (kb, _) = Keystore::create(b.path(), &mnemonic, "pw", options(1)).unwrap();
        assert_ne!(ka.file.secret.kdf.salt, kb.file.secret.kdf.salt);
        assert_ne!(ka.file.secret.nonce, kb.file.secret.nonce);
        assert_ne!(ka.file.secret.ciphertext, kb.file.secret.ciphertext);
    }

    #[test]
    fn generated_mnemonics_have_24_words() {
        let a = generate_mnemonic().unwrap();
        let b = generate_mnemonic().unwrap();
        assert_eq!(a.word_count(), 24);
        assert_ne!(a.to_string(), b.to_string());
    }
}
