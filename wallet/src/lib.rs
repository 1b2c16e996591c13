//! Cairn wallet library: key derivation (BIP39 mnemonic, BIP32 keys) and signing.
pub mod bip32;
pub mod keys;
