//! BIP32 hierarchical deterministic keys.
//!
//! Implements the parts of [BIP32] the wallet needs, directly on top of `secp256k1`:
//!
//! * the master key from a seed (`HMAC-SHA512(key = "Bitcoin seed", seed)`),
//! * private child derivation (CKDpriv), hardened and normal,
//! * public child derivation (CKDpub) for normal children,
//! * derivation paths such as `m/44'/7370'/0'/0/5` (`'`, `h` or `H` mark hardened steps),
//! * key identifiers and fingerprints (HASH160 of the compressed public key),
//! * the mainnet `xprv` / `xpub` Base58Check serialization, both ways.
//!
//! Secrets are never printed by `Debug`: [`ExtendedPrivateKey`] has a redacting `Debug`
//! and no `Display`; its `xprv` string is only produced by the explicit
//! [`ExtendedPrivateKey::to_xprv`].
//!
//! [BIP32]: https://github.com/bitcoin/bips/blob/master/bip-0032.mediawiki

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, KeyInit, Mac};
use ripemd::Ripemd160;
use secp256k1::{Keypair, PublicKey, Scalar, SecretKey, XOnlyPublicKey};
use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

type HmacSha512 = Hmac<Sha512>;

/// The bit that marks a hardened child index (`2^31`).
pub const HARDENED_BIT: u32 = 1 << 31;
/// Version bytes of a mainnet extended private key (`xprv`).
pub const XPRV_VERSION: [u8; 4] = [0x04, 0x88, 0xAD, 0xE4];
/// Version bytes of a mainnet extended public key (`xpub`).
pub const XPUB_VERSION: [u8; 4] = [0x04, 0x88, 0xB2, 0x1E];
/// Length of a serialized extended key, before the Base58Check checksum.
pub const EXTENDED_KEY_LEN: usize = 78;
/// Shortest seed BIP32 allows (128 bits).
pub const MIN_SEED_LEN: usize = 16;
/// Longest seed BIP32 allows (512 bits).
pub const MAX_SEED_LEN: usize = 64;

const MASTER_HMAC_KEY: &[u8] = b"Bitcoin seed";

/// First four bytes of a key's [identifier](ExtendedPrivateKey::identifier).
pub type Fingerprint = [u8; 4];
/// The 32-byte chain code of an extended key.
pub type ChainCode = [u8; 32];

/// `RIPEMD160(SHA256(data))`.
pub fn hash160(data: &[u8]) -> [u8; 20] {
    let sha = Sha256::digest(data);
    Ripemd160::digest(sha).into()
}

fn hmac_sha512(key: &[u8], parts: &[&[u8]]) -> Zeroizing<[u8; 64]> {
    let mut mac = HmacSha512::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    Zeroizing::new(mac.finalize().into_bytes().into())
}

/// Splits `I` into `(I_L, I_R)`.
fn split_i(i: &[u8; 64]) -> (Zeroizing<[u8; 32]>, ChainCode) {
    let mut il = Zeroizing::new([0u8; 32]);
    let mut ir = [0u8; 32];
    il.copy_from_slice(&i[..32]);
    ir.copy_from_slice(&i[32..]);
    (il, ir)
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Errors from key derivation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Bip32Error {
    /// BIP32 seeds are 128 to 512 bits long.
    #[error("seed must be {MIN_SEED_LEN} to {MAX_SEED_LEN} bytes long, got {0}")]
    InvalidSeedLength(usize),
    /// `I_L` of the master HMAC is zero or not below the curve order (probability < 2^-127).
    #[error("seed gives an invalid master key (I_L is zero or not below the curve order)")]
    InvalidMasterKey,
    /// Deriving this child gives an invalid key (probability < 2^-127); BIP32 says to
    /// proceed with the next index.
    #[error("child {index} gives an invalid key; BIP32 says to use the next index")]
    InvalidChildKey {
        /// The child that could not be derived.
        index: ChildNumber,
    },
    /// A normal or hardened index must be below `2^31`.
    #[error("child index {0} is out of range: it must be below 2^31")]
    IndexOutOfRange(u32),
    /// Hardened children need the parent private key.
    #[error("cannot derive hardened child {0} from an extended public key")]
    HardenedFromPublic(ChildNumber),
    /// The depth field is one byte: no key can sit below depth 255.
    #[error("cannot derive a child below depth 255")]
    DepthOverflow,
    /// A derivation path string did not parse.
    #[error(transparent)]
    Path(#[from] PathError),
    /// An `xprv` / `xpub` string did not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Errors from parsing a derivation path such as `m/44'/7370'/0'/0/5`.
///
/// `position` counts the components after `m`, starting at 1 (0 when a lone
/// [`ChildNumber`] is parsed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The empty string is not a path (the master key is `m`).
    #[error("derivation path is empty (the master key is written \"m\")")]
    Empty,
    /// Paths start with `m`.
    #[error("derivation path must start with \"m\", found {0:?}")]
    MissingMaster(String),
    /// `//`, or a trailing `/`.
    #[error("derivation path has an empty component at position {position}")]
    EmptyComponent {
        /// 1-based component position after `m`.
        position: usize,
    },
    /// Not a canonical decimal number, optionally followed by `'`, `h` or `H`.
    #[error(
        "invalid derivation path component {component:?} at position {position}: \
         expected a decimal index optionally followed by ', h or H"
    )]
    InvalidComponent {
        /// 1-based component position after `m`.
        position: usize,
        /// The offending text.
        component: String,
    },
    /// The index is `2^31` or more.
    #[error(
        "derivation path component {component:?} at position {position} is out of range: \
         the index must be below 2^31"
    )]
    IndexOutOfRange {
        /// 1-based component position after `m`.
        position: usize,
        /// The offending text.
        component: String,
    },
}

/// Errors from decoding an `xprv` / `xpub` string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not Base58 at all.
    #[error("extended key is not valid Base58")]
    Base58,
    /// The Base58Check checksum does not match.
    #[error("extended key has a bad Base58Check checksum")]
    Checksum,
    /// The payload is not 78 bytes.
    #[error("extended key payload is {0} bytes long, expected {EXTENDED_KEY_LEN}")]
    Length(usize),
    /// Neither `xprv` nor `xpub` version bytes.
    #[error("unknown extended key version {}", hex::encode(.0))]
    UnknownVersion([u8; 4]),
    /// A valid `xpub` where an `xprv` was expected, or the other way round.
    #[error("expected an extended {expected} key, found an extended {found} key")]
    WrongKind {
        /// `"private"` or `"public"`.
        expected: &'static str,
        /// `"private"` or `"public"`.
        found: &'static str,
    },
    /// The version says private but the key data is a public key, or the other way round.
    #[error("version bytes say {version} key but the key data holds a {data} key")]
    VersionKeyMismatch {
        /// `"private"` or `"public"`.
        version: &'static str,
        /// `"private"` or `"public"`.
        data: &'static str,
    },
    /// Private key data must start with `0x00`.
    #[error("private key data must start with 0x00, found 0x{0:02x}")]
    PrivateKeyPrefix(u8),
    /// The private key is 0 or not below the curve order.
    #[error("private key is not in 1..n-1")]
    PrivateKeyRange,
    /// Public key data must start with `0x02` or `0x03`.
    #[error("public key data must start with 0x02 or 0x03, found 0x{0:02x}")]
    PublicKeyPrefix(u8),
    /// The public key is not a point on the curve.
    #[error("public key is not a valid curve point")]
    PublicKeyPoint,
    /// A master key (depth 0) has no parent.
    #[error("depth 0 key with a non-zero parent fingerprint")]
    ZeroDepthParentFingerprint,
    /// A master key (depth 0) has child number 0.
    #[error("depth 0 key with a non-zero child number")]
    ZeroDepthChildNumber,
}

// ---------------------------------------------------------------------------
// ChildNumber
// ---------------------------------------------------------------------------

/// A BIP32 child index: `0..2^31` are normal children, `2^31..2^32` hardened ones.
///
/// Displays as `5` or `44'`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChildNumber(u32);

impl ChildNumber {
    /// From the raw 32-bit index (hardened when the top bit is set).
    pub const fn from_index(index: u32) -> Self {
        ChildNumber(index)
    }

    /// Normal child `value` (must be below `2^31`).
    pub const fn normal(value: u32) -> Result<Self, Bip32Error> {
        if value & HARDENED_BIT != 0 {
            Err(Bip32Error::IndexOutOfRange(value))
        } else {
            Ok(ChildNumber(value))
        }
    }

    /// Hardened child `value'` (`value` must be below `2^31`).
    pub const fn hardened(value: u32) -> Result<Self, Bip32Error> {
        if value & HARDENED_BIT != 0 {
            Err(Bip32Error::IndexOutOfRange(value))
        } else {
            Ok(ChildNumber(value | HARDENED_BIT))
        }
    }

    /// The raw 32-bit index, with the hardened bit (what `ser32(i)` serializes).
    pub const fn index(self) -> u32 {
        self.0
    }

    /// The index without the hardened bit (`44` for `44'`).
    pub const fn value(self) -> u32 {
        self.0 & !HARDENED_BIT
    }

    /// Whether this is a hardened child.
    pub const fn is_hardened(self) -> bool {
        self.0 & HARDENED_BIT != 0
    }

    fn parse_component(text: &str, position: usize) -> Result<Self, PathError> {
        if text.is_empty() {
            return Err(PathError::EmptyComponent { position });
        }
        let (digits, hardened) = match text.strip_suffix(['\'', 'h', 'H']) {
            Some(digits) => (digits, true),
            None => (text, false),
        };
        let canonical = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !(digits.len() > 1 && digits.starts_with('0'));
        if !canonical {
            return Err(PathError::InvalidComponent {
                position,
                component: text.to_owned(),
            });
        }
        let out_of_range = || PathError::IndexOutOfRange {
            position,
            component: text.to_owned(),
        };
        let value: u32 = digits.parse().map_err(|_| out_of_range())?;
        if value & HARDENED_BIT != 0 {
            return Err(out_of_range());
        }
        Ok(ChildNumber(if hardened {
            value | HARDENED_BIT
        } else {
            value
        }))
    }
}

impl fmt::Display for ChildNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.value())?;
        if self.is_hardened() {
            f.write_str("'")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ChildNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChildNumber({self})")
    }
}

impl FromStr for ChildNumber {
    type Err = PathError;

    /// Parses `5`, `44'`, `44h` or `44H`.
    fn from_str(s: &str) -> Result<Self, PathError> {
        ChildNumber::parse_component(s, 0)
    }
}

impl From<ChildNumber> for u32 {
    fn from(child: ChildNumber) -> u32 {
        child.index()
    }
}

// ---------------------------------------------------------------------------
// DerivationPath
// ---------------------------------------------------------------------------

/// A sequence of child steps from the master key, written `m/44'/7370'/0'/0/5`.
///
/// Parsing accepts `'`, `h` or `H` for hardened steps; [`Display`](fmt::Display) always
/// writes `'`. The master key itself is `m` (the empty path).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct DerivationPath(Vec<ChildNumber>);

impl DerivationPath {
    /// The empty path, `m`.
    pub const fn master() -> Self {
        DerivationPath(Vec::new())
    }

    /// This path extended by one step.
    pub fn child(&self, child: ChildNumber) -> Self {
        let mut path = self.clone();
        path.0.push(child);
        path
    }

    /// Appends a step.
    pub fn push(&mut self, child: ChildNumber) {
        self.0.push(child);
    }

    /// The steps.
    pub fn as_slice(&self) -> &[ChildNumber] {
        &self.0
    }

    /// Iterates over the steps.
    pub fn iter(&self) -> std::slice::Iter<'_, ChildNumber> {
        self.0.iter()
    }

    /// Number of steps (the depth of the derived key).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether this is `m`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for DerivationPath {
    type Err = PathError;

    fn from_str(s: &str) -> Result<Self, PathError> {
        if s.is_empty() {
            return Err(PathError::Empty);
        }
        let mut parts = s.split('/');
        let first = parts.next().unwrap_or_default();
        if first != "m" {
            return Err(PathError::MissingMaster(first.to_owned()));
        }
        parts
            .enumerate()
            .map(|(k, part)| ChildNumber::parse_component(part, k + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(DerivationPath)
    }
}

impl fmt::Display for DerivationPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("m")?;
        for child in &self.0 {
            write!(f, "/{child}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for DerivationPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DerivationPath({self})")
    }
}

impl From<Vec<ChildNumber>> for DerivationPath {
    fn from(steps: Vec<ChildNumber>) -> Self {
        DerivationPath(steps)
    }
}

impl From<&[ChildNumber]> for DerivationPath {
    fn from(steps: &[ChildNumber]) -> Self {
        DerivationPath(steps.to_vec())
    }
}

impl FromIterator<ChildNumber> for DerivationPath {
    fn from_iter<I: IntoIterator<Item = ChildNumber>>(iter: I) -> Self {
        DerivationPath(iter.into_iter().collect())
    }
}

impl AsRef<[ChildNumber]> for DerivationPath {
    fn as_ref(&self) -> &[ChildNumber] {
        &self.0
    }
}

impl<'a> IntoIterator for &'a DerivationPath {
    type Item = &'a ChildNumber;
    type IntoIter = std::slice::Iter<'a, ChildNumber>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl serde::Serialize for DerivationPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for DerivationPath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------
// Extended keys
// ---------------------------------------------------------------------------

/// An extended private key: a secp256k1 secret plus the BIP32 chain code and metadata.
///
/// `Debug` redacts the secret and the chain code; there is no `Display`. Use
/// [`to_xprv`](Self::to_xprv) to serialize on purpose.
#[derive(Clone)]
pub struct ExtendedPrivateKey {
    /// The private key `k`.
    pub secret: SecretKey,
    /// The chain code `c`.
    pub chain_code: ChainCode,
    /// 0 for the master key, 1 for its children, ...
    pub depth: u8,
    /// Fingerprint of the parent key (zero for the master key).
    pub parent_fingerprint: Fingerprint,
    /// Which child of its parent this key is (zero for the master key).
    pub child_number: ChildNumber,
}

impl Drop for ExtendedPrivateKey {
    /// Erases the secret key and the chain code (best effort: see
    /// `SecretKey::non_secure_erase`).
    fn drop(&mut self) {
        self.secret.non_secure_erase();
        zeroize::Zeroize::zeroize(&mut self.chain_code);
    }
}

impl ExtendedPrivateKey {
    /// The master key of `seed`: `I = HMAC-SHA512(key = "Bitcoin seed", data = seed)`.
    ///
    /// Seeds must be 16 to 64 bytes long (a BIP39 seed is 64).
    pub fn new_master(seed: &[u8]) -> Result<Self, Bip32Error> {
        if !(MIN_SEED_LEN..=MAX_SEED_LEN).contains(&seed.len()) {
            return Err(Bip32Error::InvalidSeedLength(seed.len()));
        }
        let i = hmac_sha512(MASTER_HMAC_KEY, &[seed]);
        let (il, chain_code) = split_i(&i);
        let secret = SecretKey::from_secret_bytes(*il).map_err(|_| Bip32Error::InvalidMasterKey)?;
        Ok(ExtendedPrivateKey {
            secret,
            chain_code,
            depth: 0,
            parent_fingerprint: [0; 4],
            child_number: ChildNumber(0),
        })
    }

    /// CKDpriv: the private child `child` (hardened or normal).
    pub fn derive_child(&self, child: ChildNumber) -> Result<Self, Bip32Error> {
        let depth = self.depth.checked_add(1).ok_or(Bip32Error::DepthOverflow)?;
        let index = child.index().to_be_bytes();
        let i = if child.is_hardened() {
            let secret = Zeroizing::new(self.secret.to_secret_bytes());
            hmac_sha512(&self.chain_code, &[&[0u8], &secret[..], &index])
        } else {
            hmac_sha512(&self.chain_code, &[&self.public_key().serialize(), &index])
        };
        let (il, chain_code) = split_i(&i);
        let invalid = || Bip32Error::InvalidChildKey { index: child };
        // k_i = parse256(I_L) + k_par (mod n); invalid if I_L >= n or k_i == 0.
        let tweak = Scalar::from_be_bytes(*il).map_err(|_| invalid())?;
        let secret = self.secret.add_tweak(&tweak).map_err(|_| invalid())?;
        Ok(ExtendedPrivateKey {
            secret,
            chain_code,
            depth,
            parent_fingerprint: self.fingerprint(),
            child_number: child,
        })
    }

    /// Derives every step of `path` in turn, starting from this key.
    pub fn derive_path(&self, path: impl AsRef<[ChildNumber]>) -> Result<Self, Bip32Error> {
        let mut key = self.clone();
        for &child in path.as_ref() {
            key = key.derive_child(child)?;
        }
        Ok(key)
    }

    /// The public key `K = k·G`.
    pub fn public_key(&self) -> PublicKey {
        self.secret.public_key()
    }

    /// The key pair, for signing (BIP340 Schnorr or ECDSA).
    pub fn keypair(&self) -> Keypair {
        self.secret.keypair()
    }

    /// The BIP340 x-only public key.
    pub fn x_only_public_key(&self) -> XOnlyPublicKey {
        self.keypair().x_only_public_key().0
    }

    /// HASH160 of the compressed public key.
    pub fn identifier(&self) -> [u8; 20] {
        hash160(&self.public_key().serialize())
    }

    /// The first four bytes of the [identifier](Self::identifier).
    pub fn fingerprint(&self) -> Fingerprint {
        fingerprint_of(&self.public_key())
    }

    /// The matching extended public key (the BIP32 "neuter" function `N`).
    pub fn to_extended_public_key(&self) -> ExtendedPublicKey {
        ExtendedPublicKey {
            public_key: self.public_key(),
            chain_code: self.chain_code,
            depth: self.depth,
            parent_fingerprint: self.parent_fingerprint,
            child_number: self.child_number,
        }
    }

    /// The 78-byte serialization (with `xprv` version bytes), zeroized on drop.
    pub fn to_bytes(&self) -> Zeroizing<[u8; EXTENDED_KEY_LEN]> {
        let mut out = Zeroizing::new([0u8; EXTENDED_KEY_LEN]);
        let mut key = Zeroizing::new([0u8; 33]);
        key[1..].copy_from_slice(&self.secret.to_secret_bytes());
        write_payload(
            &mut out,
            XPRV_VERSION,
            self.depth,
            self.parent_fingerprint,
            self.child_number,
            &self.chain_code,
            &key,
        );
        out
    }

    /// The Base58Check `xprv...` string, zeroized on drop. This is the secret: handle with care.
    pub fn to_xprv(&self) -> Zeroizing<String> {
        Zeroizing::new(
            bs58::encode(&self.to_bytes()[..])
                .with_check()
                .into_string(),
        )
    }

    /// Decodes an `xprv...` string.
    pub fn from_xprv(s: &str) -> Result<Self, DecodeError> {
        match parse_extended_key(s)? {
            ExtendedKey::Private(key) => Ok(key),
            ExtendedKey::Public(_) => Err(DecodeError::WrongKind {
                expected: "private",
                found: "public",
            }),
        }
    }
}

impl FromStr for ExtendedPrivateKey {
    type Err = DecodeError;

    fn from_str(s: &str) -> Result<Self, DecodeError> {
        ExtendedPrivateKey::from_xprv(s)
    }
}

impl fmt::Debug for ExtendedPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtendedPrivateKey")
            .field("secret", &format_args!("<redacted>"))
            .field("chain_code", &format_args!("<redacted>"))
            .field("depth", &self.depth)
            .field(
                "parent_fingerprint",
                &format_args!("{}", hex::encode(self.parent_fingerprint)),
            )
            .field("child_number", &self.child_number)
            .field(
                "fingerprint",
                &format_args!("{}", hex::encode(self.fingerprint())),
            )
            .finish()
    }
}

/// An extended public key: a secp256k1 point plus the BIP32 chain code and metadata.
///
/// Not secret in the way a private key is, but an `xpub` together with any non-hardened
/// child private key reveals the parent private key, and it links all the child
/// addresses: share it deliberately. `Display` / `FromStr` use the `xpub...` string.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtendedPublicKey {
    /// The public key `K`.
    pub public_key: PublicKey,
    /// The chain code `c`.
    pub chain_code: ChainCode,
    /// 0 for the master key, 1 for its children, ...
    pub depth: u8,
    /// Fingerprint of the parent key (zero for the master key).
    pub parent_fingerprint: Fingerprint,
    /// Which child of its parent this key is (zero for the master key).
    pub child_number: ChildNumber,
}

impl ExtendedPublicKey {
    /// CKDpub: the public child `child`, which must be a normal (non-hardened) index.
    pub fn derive_child(&self, child: ChildNumber) -> Result<Self, Bip32Error> {
        if child.is_hardened() {
            return Err(Bip32Error::HardenedFromPublic(child));
        }
        let depth = self.depth.checked_add(1).ok_or(Bip32Error::DepthOverflow)?;
        let i = hmac_sha512(
            &self.chain_code,
            &[&self.public_key.serialize(), &child.index().to_be_bytes()],
        );
        let (il, chain_code) = split_i(&i);
        let invalid = || Bip32Error::InvalidChildKey { index: child };
        // K_i = point(parse256(I_L)) + K_par; invalid if I_L >= n or K_i is infinity.
        let tweak = Scalar::from_be_bytes(*il).map_err(|_| invalid())?;
        let public_key = self
            .public_key
            .add_exp_tweak(&tweak)
            .map_err(|_| invalid())?;
        Ok(ExtendedPublicKey {
            public_key,
            chain_code,
            depth,
            parent_fingerprint: self.fingerprint(),
            child_number: child,
        })
    }

    /// Derives every step of `path` in turn (all steps must be normal).
    pub fn derive_path(&self, path: impl AsRef<[ChildNumber]>) -> Result<Self, Bip32Error> {
        let mut key = *self;
        for &child in path.as_ref() {
            key = key.derive_child(child)?;
        }
        Ok(key)
    }

    /// The BIP340 x-only public key.
    pub fn x_only_public_key(&self) -> XOnlyPublicKey {
        self.public_key.x_only_public_key().0
    }

    /// HASH160 of the compressed public key.
    pub fn identifier(&self) -> [u8; 20] {
        hash160(&self.public_key.serialize())
    }

    /// The first four bytes of the [identifier](Self::identifier).
    pub fn fingerprint(&self) -> Fingerprint {
        fingerprint_of(&self.public_key)
    }

    /// The 78-byte serialization (with `xpub` version bytes).
    pub fn to_bytes(&self) -> [u8; EXTENDED_KEY_LEN] {
        let mut out = [0u8; EXTENDED_KEY_LEN];
        write_payload(
            &mut out,
            XPUB_VERSION,
            self.depth,
            self.parent_fingerprint,
            self.child_number,
            &self.chain_code,
            &self.public_key.serialize(),
        );
        out
    }

    /// The Base58Check `xpub...` string (also what `Display` prints).
    pub fn to_xpub(&self) -> String {
        bs58::encode(&self.to_bytes()[..])
            .with_check()
            .into_string()
    }

    /// Decodes an `xpub...` string.
    pub fn from_xpub(s: &str) -> Result<Self, DecodeError> {
        match parse_extended_key(s)? {
            ExtendedKey::Public(key) => Ok(key),
            ExtendedKey::Private(_) => Err(DecodeError::WrongKind {
                expected: "public",
                found: "private",
            }),
        }
    }
}

impl fmt::Display for ExtendedPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_xpub())
    }
}

impl fmt::Debug for ExtendedPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExtendedPublicKey({self})")
    }
}

impl FromStr for ExtendedPublicKey {
    type Err = DecodeError;

    fn from_str(s: &str) -> Result<Self, DecodeError> {
        ExtendedPublicKey::from_xpub(s)
    }
}

/// Either kind of extended key, as decoded by [`parse_extended_key`].
#[derive(Clone, Debug)]
pub enum ExtendedKey {
    /// An `xprv`.
    Private(ExtendedPrivateKey),
    /// An `xpub`.
    Public(ExtendedPublicKey),
}

impl FromStr for ExtendedKey {
    type Err = DecodeError;

    fn from_str(s: &str) -> Result<Self, DecodeError> {
        parse_extended_key(s)
    }
}

fn fingerprint_of(public_key: &PublicKey) -> Fingerprint {
    let id = hash160(&public_key.serialize());
    [id[0], id[1], id[2], id[3]]
}

fn write_payload(
    out: &mut [u8; EXTENDED_KEY_LEN],
    version: [u8; 4],
    depth: u8,
    parent_fingerprint: Fingerprint,
    child_number: ChildNumber,
    chain_code: &ChainCode,
    key: &[u8; 33],
) {
    out[0..4].copy_from_slice(&version);
    out[4] = depth;
    out[5..9].copy_from_slice(&parent_fingerprint);
    out[9..13].copy_from_slice(&child_number.index().to_be_bytes());
    out[13..45].copy_from_slice(chain_code);
    out[45..78].copy_from_slice(key);
}

/// Decodes an `xprv...` or `xpub...` string, checking everything BIP32 asks of an
/// imported key (checksum, length, version, key prefix and range, depth-0 metadata).
pub fn parse_extended_key(s: &str) -> Result<ExtendedKey, DecodeError> {
    let data = Zeroizing::new(bs58::decode(s).with_check(None).into_vec().map_err(
        |e| match e {
            bs58::decode::Error::InvalidChecksum { .. } => DecodeError::Checksum,
            bs58::decode::Error::NoChecksum => DecodeError::Length(0),
            _ => DecodeError::Base58,
        },
    )?);
    if data.len() != EXTENDED_KEY_LEN {
        return Err(DecodeError::Length(data.len()));
    }
    let version: [u8; 4] = data[0..4].try_into().expect("4 bytes");
    let depth = data[4];
    let parent_fingerprint: Fingerprint = data[5..9].try_into().expect("4 bytes");
    let child_number = ChildNumber(u32::from_be_bytes(data[9..13].try_into().expect("4 bytes")));
    let chain_code: ChainCode = data[13..45].try_into().expect("32 bytes");
    let key_data = &data[45..78];

    let key = if version == XPRV_VERSION {
        match key_data[0] {
            0x00 => {
                let bytes = Zeroizing::new(<[u8; 32]>::try_from(&key_data[1..]).expect("32 bytes"));
                let secret = SecretKey::from_secret_bytes(*bytes)
                    .map_err(|_| DecodeError::PrivateKeyRange)?;
                KeyData::Private(secret)
            }
            0x02 | 0x03 => {
                return Err(DecodeError::VersionKeyMismatch {
                    version: "private",
                    data: "public",
                })
            }
            other => return Err(DecodeError::PrivateKeyPrefix(other)),
        }
    } else if version == XPUB_VERSION {
        match key_data[0] {
            0x02 | 0x03 => KeyData::Public(
                PublicKey::from_slice(key_data).map_err(|_| DecodeError::PublicKeyPoint)?,
            ),
            0x00 => {
                return Err(DecodeError::VersionKeyMismatch {
                    version: "public",
                    data: "private",
                })
            }
            other => return Err(DecodeError::PublicKeyPrefix(other)),
        }
    } else {
        return Err(DecodeError::UnknownVersion(version));
    };

    if depth == 0 && parent_fingerprint != [0; 4] {
        return Err(DecodeError::ZeroDepthParentFingerprint);
    }
    if depth == 0 && child_number.index() != 0 {
        return Err(DecodeError::ZeroDepthChildNumber);
    }

    Ok(match key {
        KeyData::Private(secret) => ExtendedKey::Private(ExtendedPrivateKey {
            secret,
            chain_code,
            depth,
            parent_fingerprint,
            child_number,
        }),
        KeyData::Public(public_key) => ExtendedKey::Public(ExtendedPublicKey {
            public_key,
            chain_code,
            depth,
            parent_fingerprint,
            child_number,
        }),
    })
}

enum KeyData {
    Private(SecretKey),
    Public(PublicKey),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector1_master() -> ExtendedPrivateKey {
        ExtendedPrivateKey::new_master(&hex::decode("000102030405060708090a0b0c0d0e0f").unwrap())
            .unwrap()
    }

    #[test]
    fn debug_redacts_secret_and_chain_code() {
        let key = vector1_master();
        let debug = format!("{key:?}");
        let alt = format!("{key:#?}");
        let secret_hex = hex::encode(key.secret.to_secret_bytes());
        let chain_hex = hex::encode(key.chain_code);
        for text in [&debug, &alt] {
            assert!(text.contains("<redacted>"), "{text}");
            assert!(!text.contains(&secret_hex), "secret leaked: {text}");
            assert!(!text.contains(&chain_hex), "chain code leaked: {text}");
            assert!(
                !text.contains(key.to_xprv().as_str()),
                "xprv leaked: {text}"
            );
        }
        // The public metadata is still there.
        assert!(debug.contains("3442193e"), "{debug}");
        // Nor does the enum wrapper leak it.
        let wrapped = format!("{:?}", ExtendedKey::Private(key.clone()));
        assert!(!wrapped.contains(&secret_hex), "{wrapped}");
    }

    #[test]
    fn master_fingerprint_matches_vector_1() {
        // BIP32 test vector 1: m/0' has parent fingerprint 3442193e.
        let master = vector1_master();
        assert_eq!(hex::encode(master.fingerprint()), "3442193e");
        let child = master
            .derive_child(ChildNumber::hardened(0).unwrap())
            .unwrap();
        assert_eq!(child.parent_fingerprint, master.fingerprint());
        assert_eq!(child.depth, 1);
        assert_eq!(child.child_number.index(), HARDENED_BIT);
    }

    #[test]
    fn hash160_known_value() {
        // HASH160 of the empty string.
        assert_eq!(
            hex::encode(hash160(b"")),
            "b472a266d0bd89c13706a4132ccfb16f7c3b9fcb"
        );
    }

    #[test]
    fn seed_length_is_checked() {
        assert_eq!(
            ExtendedPrivateKey::new_master(&[7; 15]).unwrap_err(),
            Bip32Error::InvalidSeedLength(15)
        );
        assert_eq!(
            ExtendedPrivateKey::new_master(&[7; 65]).unwrap_err(),
            Bip32Error::InvalidSeedLength(65)
        );
        assert!(ExtendedPrivateKey::new_master(&[7; 16]).is_ok());
        assert!(ExtendedPrivateKey::new_master(&[7; 64]).is_ok());
    }

    #[test]
    fn child_number_constructors() {
        assert_eq!(ChildNumber::normal(5).unwrap().index(), 5);
        assert_eq!(ChildNumber::hardened(5).unwrap().index(), 5 | HARDENED_BIT);
        assert_eq!(ChildNumber::hardened(5).unwrap().value(), 5);
        assert_eq!(
            ChildNumber::normal(HARDENED_BIT).unwrap_err(),
            Bip32Error::IndexOutOfRange(HARDENED_BIT)
        );
        assert_eq!(
            ChildNumber::hardened(u32::MAX).unwrap_err(),
            Bip32Error::IndexOutOfRange(u32::MAX)
        );
        assert_eq!(
            ChildNumber::from_index(HARDENED_BIT + 44).to_string(),
            "44'"
        );
        assert_eq!("7h".parse::<ChildNumber>().unwrap().to_string(), "7'");
    }

    #[test]
    fn depth_overflow_is_an_error() {
        let mut key = vector1_master();
        key.depth = 255;
        assert_eq!(
            key.derive_child(ChildNumber::normal(0).unwrap())
                .unwrap_err(),
            Bip32Error::DepthOverflow
        );
        let mut xpub = vector1_master().to_extended_public_key();
        xpub.depth = 255;
        assert_eq!(
            xpub.derive_child(ChildNumber::normal(0).unwrap())
                .unwrap_err(),
            Bip32Error::DepthOverflow
        );
    }

    #[test]
    fn public_derivation_refuses_hardened() {
        let xpub = vector1_master().to_extended_public_key();
        let hardened = ChildNumber::hardened(1).unwrap();
        assert_eq!(
            xpub.derive_child(hardened).unwrap_err(),
            Bip32Error::HardenedFromPublic(hardened)
        );
    }

    #[test]
    fn wrong_kind_is_reported() {
        let key = vector1_master();
        let xpub = key.to_extended_public_key().to_string();
        assert_eq!(
            ExtendedPrivateKey::from_xprv(&xpub).unwrap_err(),
            DecodeError::WrongKind {
                expected: "private",
                found: "public"
            }
        );
        assert_eq!(
            ExtendedPublicKey::from_xpub(&key.to_xprv()).unwrap_err(),
            DecodeError::WrongKind {
                expected: "public",
                found: "private"
            }
        );
        assert_eq!(parse_extended_key("0OIl").unwrap_err(), DecodeError::Base58);
        // A valid Base58Check string of the wrong length.
        let short = bs58::encode([1u8, 2, 3]).with_check().into_string();
        assert_eq!(
            parse_extended_key(&short).unwrap_err(),
            DecodeError::Length(3)
        );
    }

    #[test]
    fn derivation_path_serde_round_trip() {
        let path: DerivationPath = "m/44h/7370'/0H/0/5".parse().unwrap();
        let json = serde_json::to_string(&path).unwrap();
        assert_eq!(json, "\"m/44'/7370'/0'/0/5\"");
        let back: DerivationPath = serde_json::from_str(&json).unwrap();
        assert_eq!(back, path);
        assert!(serde_json::from_str::<DerivationPath>("\"m/x\"").is_err());
    }
}
