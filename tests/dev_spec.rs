//! The embedded dev chain funds exactly the accounts derived from the published test mnemonic,
//! so a newcomer can spend them with the wallet at once.
use cairn::core::consensus::ChainSpec;
use cairn::core::primitives::Address;
use cairn_wallet::keys::{dev_xonly, DEV_MNEMONIC};

#[test]
fn dev_allocations_are_the_test_mnemonic_accounts() {
    assert_eq!(
        DEV_MNEMONIC,
        "test test test test test test test test test test test junk"
    );
    let spec = ChainSpec::dev();
    assert_eq!(spec.allocations.len(), 10);
    for (i, (address, amount)) in spec.allocations.iter().enumerate() {
        assert_eq!(
            *address,
            Address::from_xonly(dev_xonly(i as u32)),
            "dev account {i} is m/44'/7370'/0'/0/{i} of the test mnemonic"
        );
        assert_eq!(
            amount.to_coins_string(spec.file.decimals),
            "1000000.00000000"
        );
    }
}
