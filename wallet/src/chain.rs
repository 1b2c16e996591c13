//! What the wallet knows of a chain: its id, genesis hash, coin and address prefix.
//!
//! Key derivation is chain-independent (an account is an x-only public key); the chain only
//! decides how an address is written (bech32m with the chain's prefix), how amounts are
//! shown (decimals and symbol), and what a transfer is signed for (chain id and genesis
//! hash). A node's `GET /api/v1/info` gives these ([`ChainParams::from_info`]); the keystore
//! records the chain it first talked to so addresses can be shown offline; the embedded dev
//! chain is the fallback when neither is known ([`ChainParams::dev`]). No I/O.

use cairn::core::consensus::{genesis::genesis_hash, ChainSpec};
use cairn::core::primitives::{Address, AddressError, Amount, AmountError, BlockHash};
use serde::{Deserialize, Serialize};

use cairn::core::views::InfoView;

/// The chain parameters a wallet needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainParams {
    /// The chain's name, e.g. `Cairn Dev`.
    pub name: String,
    /// The id every transfer carries.
    pub chain_id: u32,
    /// The genesis block's hash, which every signature commits to.
    pub genesis_hash: BlockHash,
    /// The coin's symbol, e.g. `dCAIRN`.
    pub symbol: String,
    /// Base units per coin are `10^decimals`.
    pub decimals: u8,
    /// The bech32m human-readable prefix of addresses, e.g. `cairndev`.
    pub address_prefix: String,
}

impl ChainParams {
    /// The parameters a node reports in `/info`; an error if its genesis hash is not a hash.
    pub fn from_info(info: &InfoView) -> Result<Self, String> {
        let genesis_hash: BlockHash = info
            .genesis_hash
            .parse()
            .map_err(|e| format!("genesis_hash: {e}"))?;
        Ok(ChainParams {
            name: info.chain.clone(),
            chain_id: info.chain_id,
            genesis_hash,
            symbol: info.symbol.clone(),
            decimals: info.decimals,
            address_prefix: info.address_prefix.clone(),
        })
    }

    /// The parameters of a chain spec.
    pub fn from_spec(spec: &ChainSpec) -> Self {
        ChainParams {
            name: spec.file.name.clone(),
            chain_id: spec.chain_id(),
            genesis_hash: genesis_hash(spec),
            symbol: spec.file.symbol.clone(),
            decimals: spec.file.decimals,
            address_prefix: spec.hrp().to_string(),
        }
    }

    /// The embedded dev chain (`chain-spec/dev.toml`).
    pub fn dev() -> Self {
        ChainParams::from_spec(&ChainSpec::dev())
    }

    /// `address` in bech32m with this chain's prefix.
    ///
    /// # Panics
    ///
    /// If the prefix is not a valid bech32 human-readable part; prefixes come from a checked
    /// chain spec or a node, and [`ChainParams::validate`] checks those from outside.
    pub fn address_string(&self, address: &Address) -> String {
        address
            .to_bech32(&self.address_prefix)
            .unwrap_or_else(|e| panic!("chain {:?}: {e}", self.name))
    }

    /// Decodes an address of this chain (checksum and prefix checked).
    pub fn parse_address(&self, input: &str) -> Result<Address, AddressError> {
        Address::from_bech32(input.trim(), &self.address_prefix)
    }

    /// Parses an amount typed in coins, e.g. `12.5`.
    pub fn parse_coins(&self, input: &str) -> Result<Amount, AmountError> {
        Amount::parse_coins(input, self.decimals)
    }

    /// `amount` in coins with the symbol, e.g. `12.50000000 dCAIRN`.
    pub fn format_coins(&self, amount: Amount) -> String {
        format!("{} {}", amount.to_coins_string(self.decimals), self.symbol)
    }

    /// Checks parameters that came from outside (a node or a keystore file): the prefix
    /// must be a valid bech32 prefix and the decimals at most 18 (as in a chain spec).
    pub fn validate(&self) -> Result<(), String> {
        Address::default()
            .to_bech32(&self.address_prefix)
            .map_err(|e| e.to_string())?;
        if self.decimals > 18 {
            return Err(format!("{} decimals (at most 18)", self.decimals));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_chain_parameters() {
        let dev = ChainParams::dev();
        assert_eq!(dev.chain_id, 1337);
        assert_eq!(dev.address_prefix, "cairndev");
        assert_eq!(dev.symbol, "dCAIRN");
        assert_eq!(dev.decimals, 8);
        assert!(dev.validate().is_ok());
        assert_eq!(
            dev.format_coins(Amount::from_units(1_250_000_000)),
            "12.50000000 dCAIRN"
        );
        assert_eq!(
            dev.parse_coins("12.5").unwrap(),
            Amount::from_units(1_250_000_000)
        );
    }

    #[test]
    fn addresses_round_trip_and_other_chains_are_refused() {
        let dev = ChainParams::dev();
        let address = Address::from_xonly([42u8; 32]);
        let text = dev.address_string(&address);
        assert!(text.starts_with("cairndev1"));
        assert_eq!(dev.parse_address(&text).unwrap(), address);
        let other = ChainParams {
            address_prefix: "cairntest".into(),
            ..dev.clone()
        };
        assert!(matches!(
            other.parse_address(&text),
            Err(AddressError::WrongChain { .. })
        ));
        let bad = ChainParams {
            address_prefix: "no spaces".into(),
            ..dev
        };
        assert!(bad.validate().is_err());
    }
}
