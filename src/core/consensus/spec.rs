//! Chain specifications: the human-editable TOML that defines a chain, parsed and checked
//! into a [`ChainSpec`]. No I/O: callers read the file and pass its text.
//!
//! A spec fixes everything consensus depends on (genesis, difficulty parameters, subsidy,
//! limits) plus network defaults. Its genesis hash names the chain everywhere.
use super::asert::AsertParams;
use super::target::{CompactTarget, Target};
use crate::core::primitives::{Address, Amount};
use serde::{Deserialize, Serialize};

/// The embedded development chain's spec text.
pub const DEV_SPEC_TOML: &str = include_str!("../../../chain-spec/dev.toml");
/// The embedded test network's spec text.
pub const TESTNET_SPEC_TOML: &str = include_str!("../../../chain-spec/testnet.toml");

/// The names of the built-in specs, accepted wherever a spec file is.
pub const BUILTIN_SPECS: &[&str] = &["dev", "testnet"];

/// A chain spec as written in TOML (amounts in coins, targets as hex strings).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSpecFile {
    /// Human-readable name, e.g. "Cairn Dev".
    pub name: String,
    /// Short identifier used in data directory names, e.g. "dev".
    pub id: String,
    /// Numeric chain id every transfer carries.
    pub chain_id: u32,
    /// Ticker symbol of the coin.
    pub symbol: String,
    /// Decimal places of one coin.
    pub decimals: u8,
    /// bech32m human-readable prefix of addresses.
    pub address_prefix: String,
    /// The first block.
    pub genesis: GenesisFile,
    /// Consensus parameters.
    pub consensus: ConsensusFile,
    /// Network defaults.
    pub network: NetworkFile,
}

/// The `[genesis]` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisFile {
    /// Genesis timestamp, seconds since the Unix epoch.
    pub time: u32,
    /// Compact target of genesis, which the first blocks inherit, e.g. "0x1f00ffff".
    pub bits: String,
    /// A message committed in the genesis block.
    pub message: String,
    /// Accounts funded at genesis.
    #[serde(default)]
    pub allocations: Vec<AllocationFile>,
}

/// One `[[genesis.allocations]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocationFile {
    /// bech32m address with the chain's prefix.
    pub address: String,
    /// Coins, as a decimal string, e.g. "1000000".
    pub amount: String,
    /// Optional note, e.g. which dev key this is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The `[consensus]` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusFile {
    /// The block interval ASERT aims for, in seconds.
    pub ideal_block_time_secs: u32,
    /// ASERT half-life in seconds: being this far ahead of schedule doubles the difficulty.
    pub asert_half_life_secs: u32,
    /// The easiest allowed target, compact, e.g. "0x207fffff".
    pub pow_limit_bits: String,
    /// The subsidy of the first blocks, in coins.
    pub initial_subsidy: String,
    /// Blocks between subsidy halvings.
    pub halving_interval: u32,
    /// Largest encoded block, in bytes.
    pub max_block_bytes: u32,
    /// Most transfers in one block.
    pub max_block_transfers: u32,
    /// How far ahead of the local clock a block's time may be, in seconds.
    pub max_future_drift_secs: u32,
}

/// The `[network]` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkFile {
    /// Default peer-to-peer TCP port.
    pub p2p_port: u16,
    /// Default HTTP API port.
    pub http_port: u16,
    /// Multiaddrs of well-known peers.
    #[serde(default)]
    pub bootnodes: Vec<String>,
    /// Whether local-network discovery (mDNS) is on by default.
    #[serde(default)]
    pub mdns: bool,
}

/// A checked chain spec, ready for consensus code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainSpec {
    /// The file it was read from (kept to print it back).
    pub file: ChainSpecFile,
    /// Genesis compact target.
    pub genesis_bits: CompactTarget,
    /// Genesis target.
    pub genesis_target: Target,
    /// The easiest target.
    pub pow_limit: Target,
    /// Initial subsidy in base units.
    pub initial_subsidy: Amount,
    /// Genesis allocations, decoded.
    pub allocations: Vec<(Address, Amount)>,
}

/// Why a spec was refused.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Not valid TOML, or fields missing, mistyped or unknown.
    #[error("chain spec is not valid: {0}")]
    Toml(toml::de::Error),
    /// A field has a value consensus cannot use.
    #[error("chain spec field `{field}` is invalid: {reason}")]
    Invalid {
        /// The field's path, e.g. `consensus.pow_limit_bits`.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// Neither a file nor a built-in name.
    #[error("unknown chain spec {0:?}: give a file path or one of: dev, testnet")]
    UnknownBuiltin(String),
}

impl From<toml::de::Error> for SpecError {
    fn from(e: toml::de::Error) -> Self {
        // Not `#[from]`: the message already carries the detail, and a source link would
        // make error reports print it twice.
        SpecError::Toml(e)
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field,
        reason: reason.into(),
    }
}

fn parse_bits(field: &'static str, text: &str) -> Result<(CompactTarget, Target), SpecError> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    let raw = u32::from_str_radix(digits, 16).map_err(|_| {
        invalid(
            field,
            format!("{text:?} is not a hex u32 such as 0x207fffff"),
        )
    })?;
    let bits = CompactTarget::from_consensus(raw);
    let target = Target::from_compact(bits).map_err(|e| invalid(field, e.to_string()))?;
    Ok((bits, target))
}

impl ChainSpec {
    /// Parses and checks a spec from TOML text.
    pub fn from_toml(text: &str) -> Result<ChainSpec, SpecError> {
        let file: ChainSpecFile = toml::from_str(text)?;
        ChainSpec::from_file(file)
    }

    /// The built-in spec called `name` (`dev` or `testnet`).
    pub fn builtin(name: &str) -> Result<ChainSpec, SpecError> {
        match name {
            "dev" => ChainSpec::from_toml(DEV_SPEC_TOML),
            "testnet" => ChainSpec::from_toml(TESTNET_SPEC_TOML),
            other => Err(SpecError::UnknownBuiltin(other.to_string())),
        }
    }

    /// The embedded development chain.
    pub fn dev() -> ChainSpec {
        ChainSpec::builtin("dev").expect("the embedded dev spec is checked by a unit test")
    }

    /// Checks a parsed spec file.
    pub fn from_file(file: ChainSpecFile) -> Result<ChainSpec, SpecError> {
        if file.decimals > 18 {
            return Err(invalid("decimals", "at most 18"));
        }
        Address::default()
            .to_bech32(&file.address_prefix)
            .map_err(|e| invalid("address_prefix", e.to_string()))?;
        if file.address_prefix.to_lowercase() != file.address_prefix {
            return Err(invalid("address_prefix", "must be lowercase"));
        }
        let c = &file.consensus;
        if c.ideal_block_time_secs == 0 {
            return Err(invalid(
                "consensus.ideal_block_time_secs",
                "must be at least 1",
            ));
        }
        if c.asert_half_life_secs == 0 {
            return Err(invalid(
                "consensus.asert_half_life_secs",
                "must be at least 1",
            ));
        }
        if c.halving_interval == 0 {
            return Err(invalid("consensus.halving_interval", "must be at least 1"));
        }
        if c.max_block_transfers == 0 || c.max_block_bytes < 1024 {
            return Err(invalid(
                "consensus.max_block_bytes",
                "blocks must allow at least 1 KiB and 1 transfer",
            ));
        }
        let (_, pow_limit) = parse_bits("consensus.pow_limit_bits", &c.pow_limit_bits)?;
        let (genesis_bits, genesis_target) = parse_bits("genesis.bits", &file.genesis.bits)?;
        if genesis_target > pow_limit {
            return Err(invalid(
                "genesis.bits",
                "easier than consensus.pow_limit_bits",
            ));
        }
        let initial_subsidy = Amount::parse_coins(&c.initial_subsidy, file.decimals)
            .map_err(|e| invalid("consensus.initial_subsidy", e.to_string()))?;
        let mut allocations = Vec::with_capacity(file.genesis.allocations.len());
        for entry in &file.genesis.allocations {
            let address = Address::from_bech32(&entry.address, &file.address_prefix)
                .map_err(|e| invalid("genesis.allocations.address", e.to_string()))?;
            let amount = Amount::parse_coins(&entry.amount, file.decimals)
                .map_err(|e| invalid("genesis.allocations.amount", e.to_string()))?;
            if allocations.iter().any(|(a, _)| *a == address) {
                return Err(invalid(
                    "genesis.allocations.address",
                    format!("{} is funded twice", entry.address),
                ));
            }
            allocations.push((address, amount));
        }
        if Amount::checked_sum(allocations.iter().map(|(_, a)| *a)).is_none() {
            return Err(invalid(
                "genesis.allocations",
                "total overflows u64 base units",
            ));
        }
        Ok(ChainSpec {
            file,
            genesis_bits,
            genesis_target,
            pow_limit,
            initial_subsidy,
            allocations,
        })
    }

    /// Writes the spec back as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(&self.file).expect("a spec file always serialises")
    }

    /// The ASERT parameters of this chain.
    pub fn asert_params(&self) -> AsertParams {
        AsertParams {
            ideal_block_time: i64::from(self.file.consensus.ideal_block_time_secs),
            half_life: i64::from(self.file.consensus.asert_half_life_secs),
            pow_limit: self.pow_limit,
        }
    }

    /// The subsidy of the block at `height`: halves every `halving_interval` blocks.
    pub fn subsidy_at(&self, height: u32) -> Amount {
        let halvings = height / self.file.consensus.halving_interval;
        if halvings >= 64 {
            return Amount::ZERO;
        }
        Amount::from_units(self.initial_subsidy.as_units() >> halvings)
    }

    /// Who `--mine` pays when no address is given: dev account 0 on the dev chain, nobody
    /// elsewhere (a real chain's miner must choose).
    pub fn default_miner_address(&self) -> Option<Address> {
        (self.file.id == "dev")
            .then(|| self.allocations.first().map(|(address, _)| *address))
            .flatten()
    }

    /// The address prefix.
    pub fn hrp(&self) -> &str {
        &self.file.address_prefix
    }

    /// The chain id transfers must carry.
    pub fn chain_id(&self) -> u32 {
        self.file.chain_id
    }

    /// The largest encoded block.
    pub fn max_block_bytes(&self) -> usize {
        self.file.consensus.max_block_bytes as usize
    }

    /// The most transfers in a block.
    pub fn max_block_transfers(&self) -> usize {
        self.file.consensus.max_block_transfers as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_specs_parse() {
        for name in BUILTIN_SPECS {
            let spec = ChainSpec::builtin(name).unwrap();
            assert_eq!(&spec.file.id, name);
            assert!(!spec.allocations.is_empty() || *name == "testnet");
        }
        assert!(matches!(
            ChainSpec::builtin("mainnet"),
            Err(SpecError::UnknownBuiltin(_))
        ));
    }

    #[test]
    fn spec_round_trips_through_toml() {
        let spec = ChainSpec::dev();
        assert_eq!(ChainSpec::from_toml(&spec.to_toml()).unwrap(), spec);
    }

    #[test]
    fn bad_fields_are_named() {
        let text = DEV_SPEC_TOML.replace("ideal_block_time_secs = 10", "ideal_block_time_secs = 0");
        let err = ChainSpec::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("ideal_block_time_secs"), "{err}");
        let text = DEV_SPEC_TOML.replace(
            "pow_limit_bits = \"0x207fffff\"",
            "pow_limit_bits = \"0x04923456\"",
        );
        let err = ChainSpec::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("pow_limit_bits"), "{err}");
        let err = ChainSpec::from_toml("name = 1").unwrap_err();
        assert!(matches!(err, SpecError::Toml(_)));
    }

    #[test]
    fn only_the_dev_chain_has_a_default_miner() {
        let dev = ChainSpec::dev();
        assert_eq!(dev.default_miner_address(), Some(dev.allocations[0].0));
        assert_eq!(
            ChainSpec::builtin("testnet")
                .unwrap()
                .default_miner_address(),
            None
        );
    }

    #[test]
    fn subsidy_halves() {
        let spec = ChainSpec::dev();
        let interval = spec.file.consensus.halving_interval;
        assert_eq!(spec.subsidy_at(0), spec.initial_subsidy);
        assert_eq!(
            spec.subsidy_at(interval).as_units(),
            spec.initial_subsidy.as_units() / 2
        );
    }
}
