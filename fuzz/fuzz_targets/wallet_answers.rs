//! The wallet's reading of node answers (`wallet::client`: JSON into the `core::views`
//! shapes, then what the wallet does with them). The first byte picks the answer, the rest is
//! its body. Never panics; every shape survives a JSON round trip; then:
//! - `/info`: chain parameters from it either fail the wallet's check or work: addresses
//!   and amounts written with them parse back, and a send can be planned on that chain;
//! - `/accounts/{a}` and `/fees`: planning a send from them does not panic;
//! - `/accounts/{a}/history`, `/transactions/{id}`, the submit answer: the hashes the
//!   client checks parse or fail cleanly, and the history report prints.
#![no_main]
use cairn::core::primitives::{Address, Amount, Txid};
use cairn_fuzz::{json_round_trip, json_round_trip_as_values};
use cairn_wallet::chain::ChainParams;
use cairn_wallet::client::{
    AccountView, FeesView, HistoryView, InfoView, SubmitTransferResponse, TransactionView,
};
use cairn_wallet::report::{CoinAmount, HistoryEntry, HistoryReport};
use cairn_wallet::send::{plan_transfer, SendRequest};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn dev_chain() -> &'static ChainParams {
    static DEV: OnceLock<ChainParams> = OnceLock::new();
    DEV.get_or_init(ChainParams::dev)
}

fn account(balance: u64) -> AccountView {
    AccountView {
        address: String::new(),
        balance,
        nonce: 0,
        next_nonce: 0,
        pending: 0,
        pending_outgoing: 0,
    }
}

/// Plans sending one coin (and, with `fee`, paying it) on `chain`.
fn plan(chain: &ChainParams, account: &AccountView, rate: Option<u64>, fee: Option<&str>) {
    let request = SendRequest {
        to: chain.address_string(&Address([2; 32])),
        amount: "1".to_string(),
        fee: fee.map(str::to_string),
        memo: b"fuzz".to_vec(),
    };
    let _ = plan_transfer(chain, Address([1; 32]), &request, account, rate, None);
}

/// A chain the wallet accepted: what it writes, it reads back.
fn check_chain(chain: &ChainParams, info: &InfoView) {
    for units in [0, 1, info.min_fee_rate, u64::MAX] {
        let amount = Amount::from_units(units);
        let text = amount.to_coins_string(chain.decimals);
        assert_eq!(chain.parse_coins(&text), Ok(amount), "amount {text:?}");
        let _ = chain.format_coins(amount);
    }
    for byte in [0, 0x5a, 0xff] {
        let address = Address([byte; 32]);
        let text = chain.address_string(&address);
        assert_eq!(chain.parse_address(&text), Ok(address), "address {text:?}");
    }
    plan(chain, &account(u64::MAX), Some(info.min_fee_rate), None);
    plan(chain, &account(0), None, Some("0.1"));
}

fn parse_hash(text: Option<&str>) {
    let _ = text.map(str::parse::<Txid>);
}

fn entry(chain: &ChainParams, kind: String, amount: u64, fee: u64) -> HistoryEntry {
    HistoryEntry {
        address: String::new(),
        kind,
        txid: None,
        height: None,
        confirmations: 0,
        time: None,
        from: None,
        to: String::new(),
        amount: CoinAmount::from_units(amount, chain),
        fee: CoinAmount::from_units(fee, chain),
        memo: String::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 6 {
        0 => {
            let Some(info) = json_round_trip_as_values::<InfoView>(body) else {
                return;
            };
            if let Ok(chain) = ChainParams::from_info(&info) {
                if chain.validate().is_ok() {
                    check_chain(&chain, &info);
                }
            }
        }
        1 => {
            if let Some(view) = json_round_trip::<AccountView>(body) {
                plan(dev_chain(), &view, Some(u64::MAX), None);
                plan(dev_chain(), &view, Some(1), None);
                let _ = CoinAmount::from_units(view.pending_outgoing, dev_chain()).to_string();
            }
        }
        2 => {
            if let Some(fees) = json_round_trip::<FeesView>(body) {
                plan(
                    dev_chain(),
                    &account(u64::MAX),
                    Some(fees.suggested_fee_rate),
                    None,
                );
                plan(
                    dev_chain(),
                    &account(fees.min_fee),
                    Some(fees.min_fee_rate),
                    None,
                );
            }
        }
        3 => {
            if let Some(view) = json_round_trip_as_values::<TransactionView>(body) {
                parse_hash(Some(&view.txid));
                parse_hash(view.block_hash.as_deref());
            }
        }
        4 => {
            let Some(view) = json_round_trip::<HistoryView>(body) else {
                return;
            };
            let chain = dev_chain();
            let mut entries = Vec::new();
            for item in view.items {
                parse_hash(item.txid.as_deref());
                parse_hash(Some(&item.block_hash));
                let mut line = entry(chain, item.kind, item.amount, item.fee);
                line.txid = item.txid;
                line.height = Some(item.height.into());
                line.confirmations = item.confirmations.into();
                line.from = item.from;
                line.to = item.to;
                line.memo = item.memo;
                entries.push(line);
            }
            for transfer in view.pending {
                parse_hash(Some(&transfer.txid));
                let mut line = entry(chain, "pending".to_string(), transfer.amount, transfer.fee);
                line.txid = Some(transfer.txid);
                line.from = Some(transfer.from);
                line.to = transfer.to;
                line.memo = transfer.memo;
                entries.push(line);
            }
            let report = HistoryReport {
                chain: chain.name.clone(),
                entries,
                notes: Vec::new(),
            };
            let _ = report.to_string();
        }
        _ => {
            if let Some(answer) = json_round_trip::<SubmitTransferResponse>(body) {
                parse_hash(Some(&answer.txid));
                parse_hash(answer.replaced.as_deref());
            }
        }
    }
});
