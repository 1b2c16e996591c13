//! Sending coins: check the request, fill nonce and fee, sign, submit, wait for blocks.
//!
//! ```text
//!   prepare:  parse recipient, amount, fee, memo  (the chain's prefix and decimals)
//!             GET /accounts/{from}  -> nonce = next_nonce, balance − pending_outgoing
//!             GET /fees (no --fee)  -> fee = suggested_fee_rate × size (164 + memo bytes)
//!             check amount + fee <= available
//!   sign_and_submit:  BIP340 with fresh aux randomness -> POST /transactions
//!                     (the node's rejection code -> a sentence that says what to do)
//!   wait_for_confirmations:  GET /transactions/{txid} every second until N confirmations
//! ```
//!
//! The key is asked for between `prepare` and `sign_and_submit`, so every check that needs
//! no secret fails before the passphrase is typed. Time is read here (the poll loop); the
//! checks themselves are plain functions of the node's answers.

use std::thread;
use std::time::{Duration, Instant};

use cairn::core::primitives::transfer::{Signature, Transfer, UnsignedTransfer};
use cairn::core::primitives::{Address, AddressError, Amount, AmountError, Txid, MAX_MEMO_BYTES};
use secp256k1::Keypair;
use serde::Serialize;

use crate::chain::ChainParams;
use crate::client::{AccountView, ClientError, NodeClient, SubmitTransferRequest, TransactionView};
use crate::signing::{fresh_aux_rand, sign_transfer};

/// Why a transfer was not sent (or not confirmed in time).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The recipient is not an address of this chain (typo, or another chain's prefix).
    #[error("bad recipient address: {0}")]
    BadRecipient(AddressError),
    /// The amount is not a number of coins.
    #[error("bad --amount: {0}")]
    BadAmount(AmountError),
    /// The fee is not a number of coins.
    #[error("bad --fee: {0}")]
    BadFee(AmountError),
    /// The memo is longer than the chain allows.
    #[error("the memo is {len} bytes; the chain allows at most {max}")]
    MemoTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The sender cannot cover amount + fee.
    #[error(
        "insufficient funds: {} has {} available (balance {} minus {} in pending transfers), \
         but this transfer needs {} ({} + fee {})",
        .0.address, .0.available, .0.balance, .0.pending, .0.needed, .0.amount, .0.fee
    )]
    InsufficientFunds(Box<Shortfall>),
    /// Amount plus fee (or the fee computation) overflows 64 bits.
    #[error("amount plus fee is too large")]
    Overflow,
    /// The node refused the transfer.
    #[error("the node rejected the transfer ({code}): {explanation}")]
    Rejected {
        /// The node's code, e.g. `fee_too_low`.
        code: String,
        /// What it means and what to do.
        explanation: String,
    },
    /// The node could not be asked, or answered nonsense.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The key given does not own the sending address.
    #[error("internal error: the key does not match the sending address {0}")]
    WrongKey(String),
    /// The node's txid differs from the one the wallet computed.
    #[error("the node reports txid {node} for the transfer the wallet computed as {local}")]
    TxidMismatch {
        /// The wallet's.
        local: Txid,
        /// The node's.
        node: String,
    },
    /// `--wait` gave up.
    #[error(
        "transfer {txid} has {confirmations} of {wanted} confirmations after {waited_secs} s \
         (--timeout); it may still confirm: see `cairn-wallet history`"
    )]
    Timeout {
        /// The transfer.
        txid: Txid,
        /// Confirmations seen last.
        confirmations: u64,
        /// Confirmations asked for.
        wanted: u64,
        /// Seconds waited.
        waited_secs: u64,
    },
    /// The node forgot the transfer while we waited.
    #[error(
        "transfer {txid} is no longer known to the node (dropped from its mempool or replaced); \
         check `cairn-wallet balance` and send again"
    )]
    Dropped {
        /// The transfer.
        txid: Txid,
    },
    /// The operating system's random generator failed.
    #[error("the random number generator failed: {0}")]
    Random(String),
}

/// The numbers of an [`SendError::InsufficientFunds`], in coins with the symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    /// The sender.
    pub address: String,
    /// Balance minus pending outgoing.
    pub available: String,
    /// The balance.
    pub balance: String,
    /// Pending outgoing amount + fee.
    pub pending: String,
    /// Amount + fee.
    pub needed: String,
    /// The amount.
    pub amount: String,
    /// The fee.
    pub fee: String,
}

/// What the user asked to send (amounts as typed, in coins).
#[derive(Clone, Debug, Default)]
pub struct SendRequest {
    /// The recipient, bech32m.
    pub to: String,
    /// Coins, e.g. `12.5`.
    pub amount: String,
    /// Coins; `None` to pay the node's suggested fee rate.
    pub fee: Option<String>,
    /// Memo bytes.
    pub memo: Vec<u8>,
}

/// A checked transfer, ready to sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedTransfer {
    /// The sending address.
    pub from: Address,
    /// What will be signed.
    pub unsigned: UnsignedTransfer,
    /// Encoded size in bytes (what the fee rate multiplies).
    pub size: usize,
    /// The fee rate used, when the fee was not given.
    pub fee_rate: Option<u64>,
    /// The sender's balance minus its pending outgoing transfers, before this one.
    pub available: Amount,
}

/// A transfer the node accepted into its mempool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SubmittedTransfer {
    /// Its id.
    pub txid: Txid,
    /// The transfer it replaced by fee, if any, hex.
    pub replaced: Option<String>,
    /// The signed transfer.
    #[serde(skip)]
    pub transfer: Transfer,
}

/// Encoded size of a transfer with this memo: 164 bytes plus the memo (docs/API.md).
pub fn transfer_size(unsigned: &UnsignedTransfer) -> usize {
    Transfer {
        chain_id: unsigned.chain_id,
        from: Address::default(),
        to: unsigned.to,
        amount: unsigned.amount,
        fee: unsigned.fee,
        nonce: unsigned.nonce,
        memo: unsigned.memo.clone(),
        signature: Signature([0u8; 64]),
    }
    .encoded_size()
}

/// Checks `request` against the chain and the sender's account, and fills nonce and fee.
///
/// `suggested_fee_rate` is `/fees`' rate; it is only used when `request.fee` is `None`.
/// `max_memo_bytes` is the chain's limit (`/info`), [`MAX_MEMO_BYTES`] if unknown.
pub fn plan_transfer(
    chain: &ChainParams,
    from: Address,
    request: &SendRequest,
    account: &AccountView,
    suggested_fee_rate: Option<u64>,
    max_memo_bytes: Option<usize>,
) -> Result<PreparedTransfer, SendError> {
    let to = chain
        .parse_address(&request.to)
        .map_err(SendError::BadRecipient)?;
    let amount = chain
        .parse_coins(&request.amount)
        .map_err(SendError::BadAmount)?;
    let max = max_memo_bytes.unwrap_or(MAX_MEMO_BYTES);
    if request.memo.len() > max {
        return Err(SendError::MemoTooLong {
            len: request.memo.len(),
            max,
        });
    }
    let mut unsigned = UnsignedTransfer {
        chain_id: chain.chain_id,
        to,
        amount,
        fee: Amount::ZERO,
        nonce: account.next_nonce,
        memo: request.memo.clone(),
    };
    let size = transfer_size(&unsigned);
    let fee_rate = match &request.fee {
        Some(fee) => {
            unsigned.fee = chain.parse_coins(fee).map_err(SendError::BadFee)?;
            None
        }
        None => {
            let rate = suggested_fee_rate.unwrap_or(1);
            unsigned.fee = (size as u64)
                .checked_mul(rate)
                .map(Amount::from_units)
                .ok_or(SendError::Overflow)?;
            Some(rate)
        }
    };
    let needed = amount
        .checked_add(unsigned.fee)
        .ok_or(SendError::Overflow)?;
    let balance = Amount::from_units(account.balance);
    let pending = Amount::from_units(account.pending_outgoing);
    let available = balance.checked_sub(pending).unwrap_or(Amount::ZERO);
    if needed > available {
        return Err(SendError::InsufficientFunds(Box::new(Shortfall {
            address: chain.address_string(&from),
            available: chain.format_coins(available),
            balance: chain.format_coins(balance),
            pending: chain.format_coins(pending),
            needed: chain.format_coins(needed),
            amount: chain.format_coins(amount),
            fee: chain.format_coins(unsigned.fee),
        })));
    }
    Ok(PreparedTransfer {
        from,
        unsigned,
        size,
        fee_rate,
        available,
    })
}

/// Asks the node for the sender's account (and the fee rate when no fee is given), then
/// [`plan_transfer`].
pub fn prepare(
    client: &NodeClient,
    chain: &ChainParams,
    max_memo_bytes: Option<usize>,
    from: Address,
    request: &SendRequest,
) -> Result<PreparedTransfer, SendError> {
    // Check what needs no node first, so a typo is reported as such.
    chain
        .parse_address(&request.to)
        .map_err(SendError::BadRecipient)?;
    let account = client.account(&chain.address_string(&from))?;
    let rate = match request.fee {
        Some(_) => None,
        None => Some(client.fees()?.suggested_fee_rate),
    };
    plan_transfer(chain, from, request, &account, rate, max_memo_bytes)
}

/// Signs `prepared` with `keypair` (fresh BIP340 aux randomness) and submits it.
pub fn sign_and_submit(
    client: &NodeClient,
    chain: &ChainParams,
    prepared: &PreparedTransfer,
    keypair: &Keypair,
) -> Result<SubmittedTransfer, SendError> {
    if keypair.x_only_public_key().0.to_byte_array() != *prepared.from.as_bytes() {
        return Err(SendError::WrongKey(chain.address_string(&prepared.from)));
    }
    let aux = fresh_aux_rand().map_err(|e| SendError::Random(e.to_string()))?;
    let transfer = sign_transfer(
        prepared.unsigned.clone(),
        keypair,
        &chain.genesis_hash,
        &aux,
    );
    let body = SubmitTransferRequest::from_transfer(&transfer, &chain.address_prefix)
        .unwrap_or_else(|e| panic!("chain {:?}: {e}", chain.name));
    let answer = client.submit(&body).map_err(explain_rejection)?;
    let local = transfer.txid();
    if answer.txid.parse::<Txid>() != Ok(local) {
        return Err(SendError::TxidMismatch {
            local,
            node: answer.txid,
        });
    }
    Ok(SubmittedTransfer {
        txid: local,
        replaced: answer.replaced,
        transfer,
    })
}

/// Turns the node's rejection of a submission into a [`SendError::Rejected`] that says
/// what happened and what to do; other errors pass through.
pub fn explain_rejection(error: ClientError) -> SendError {
    let ClientError::Api { code, message, .. } = &error else {
        return SendError::Client(error);
    };
    let advice = match code.as_str() {
        "fee_too_low" => {
            "the fee is below the node's minimum; pass a higher --fee, or leave \
                          --fee out to pay the suggested fee"
        }
        "nonce_too_low" => {
            "another transfer from this address was confirmed with this nonce \
                            meanwhile; send again (the wallet will use the next nonce)"
        }
        "replacement_underpriced" => {
            "a pending transfer from this address already uses this \
                                      nonce and this fee is not high enough to replace it; \
                                      wait for it to confirm, or raise --fee"
        }
        "insufficient_balance" => {
            "the balance does not cover amount + fee after this \
                                   address's pending transfers"
        }
        "nonce_too_far_ahead" => {
            "the nonce is too far above the account's; wait for the \
                                  pending transfers to confirm"
        }
        "sender_limit" => {
            "this address has too many pending transfers; wait for some to \
                           confirm"
        }
        "mempool_full" => "the node's mempool is full; raise --fee or try again later",
        "already_confirmed" => "this very transfer is already in the chain",
        "wrong_chain" => "the node is on another chain than the transfer was built for",
        "bad_signature" => "the signature does not verify for the node's chain",
        "bad_address" => "the node does not accept one of the addresses",
        "memo_too_long" => "the memo is longer than the chain allows",
        "overflow" => "amount plus fee is too large",
        "malformed" | "payload_too_large" => "the node could not read the transfer",
        _ => "",
    };
    let explanation = if advice.is_empty() {
        message.clone()
    } else {
        format!("{advice} (node: {message})")
    };
    SendError::Rejected {
        code: code.clone(),
        explanation,
    }
}

/// How `--wait` waits.
#[derive(Clone, Copy, Debug)]
pub struct WaitOptions {
    /// Confirmations to wait for (the block itself counts as one).
    pub confirmations: u64,
    /// Give up after this long.
    pub timeout: Duration,
    /// Time between two polls.
    pub poll_interval: Duration,
}

/// What `--wait` saw at one poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum WaitProgress {
    /// Still in the mempool.
    Pending {
        /// Seconds since waiting started.
        elapsed_secs: u64,
    },
    /// In a block of the best chain.
    Confirmed {
        /// The block's height.
        height: u64,
        /// Its confirmations.
        confirmations: u64,
    },
}

impl std::fmt::Display for WaitProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitProgress::Pending { elapsed_secs } => {
                write!(f, "pending in the mempool… {elapsed_secs} s")
            }
            WaitProgress::Confirmed {
                height,
                confirmations,
            } => write!(
                f,
                "confirmed in block {height} ({confirmations} confirmation{})",
                if *confirmations == 1 { "" } else { "s" }
            ),
        }
    }
}

/// Polls the transfer until it has `options.confirmations` confirmations, calling
/// `progress` whenever what it sees changes (every poll while pending); errors after
/// `options.timeout`, or if the node forgets it.
pub fn wait_for_confirmations(
    client: &NodeClient,
    txid: &Txid,
    options: WaitOptions,
    mut progress: impl FnMut(WaitProgress),
) -> Result<TransactionView, SendError> {
    let start = Instant::now();
    let mut last = None;
    loop {
        let status = match client.transaction(txid) {
            Ok(status) => status,
            Err(e) if e.api_code() == Some("not_found") => {
                return Err(SendError::Dropped { txid: *txid })
            }
            Err(e) => return Err(e.into()),
        };
        let elapsed = start.elapsed();
        let confirmed = status.status == "confirmed";
        let confirmations = u64::from(status.confirmations);
        let now = match status.height {
            Some(height) if confirmed => WaitProgress::Confirmed {
                height: height.into(),
                confirmations,
            },
            _ => WaitProgress::Pending {
                elapsed_secs: elapsed.as_secs(),
            },
        };
        // A line per second while pending; once in a block, a line per new confirmation.
        if last != Some(now) {
            progress(now);
            last = Some(now);
        }
        if confirmed && confirmations >= options.confirmations {
            return Ok(status);
        }
        if elapsed >= options.timeout {
            return Err(SendError::Timeout {
                txid: *txid,
                confirmations,
                wanted: options.confirmations,
                waited_secs: elapsed.as_secs(),
            });
        }
        thread::sleep(options.poll_interval.min(options.timeout - elapsed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> ChainParams {
        ChainParams::dev()
    }

    fn account(balance: u64, pending_outgoing: u64) -> AccountView {
        AccountView {
            address: String::new(),
            balance,
            nonce: 3,
            next_nonce: 5,
            pending: 2,
            pending_outgoing,
        }
    }

    fn request(amount: &str, fee: Option<&str>, memo: &[u8]) -> SendRequest {
        SendRequest {
            to: chain().address_string(&Address::from_xonly([7u8; 32])),
            amount: amount.into(),
            fee: fee.map(Into::into),
            memo: memo.to_vec(),
        }
    }

    const FROM: Address = Address::from_xonly([1u8; 32]);

    #[test]
    fn fills_nonce_and_suggested_fee() {
        let plan = plan_transfer(
            &chain(),
            FROM,
            &request("1.5", None, b"hello"),
            &account(10_000_000_000, 0),
            Some(3),
            Some(80),
        )
        .unwrap();
        assert_eq!(plan.unsigned.nonce, 5);
        assert_eq!(plan.size, 164 + 5);
        assert_eq!(plan.unsigned.fee, Amount::from_units(3 * 169));
        assert_eq!(plan.unsigned.amount, Amount::from_units(150_000_000));
        assert_eq!(plan.unsigned.chain_id, 1337);
        assert_eq!(plan.fee_rate, Some(3));
    }

    #[test]
    fn explicit_fee_is_used_as_given() {
        let plan = plan_transfer(
            &chain(),
            FROM,
            &request("1", Some("0.00001"), b""),
            &account(10_000_000_000, 0),
            None,
            None,
        )
        .unwrap();
        assert_eq!(plan.unsigned.fee, Amount::from_units(1000));
        assert_eq!(plan.fee_rate, None);
    }

    #[test]
    fn pending_outgoing_counts_against_the_balance() {
        // 2 coins, 1.5 pending: 0.5 available, 0.5 + fee needed.
        let error = plan_transfer(
            &chain(),
            FROM,
            &request("0.5", None, b""),
            &account(200_000_000, 150_000_000),
            Some(1),
            None,
        )
        .unwrap_err();
        let SendError::InsufficientFunds(shortfall) = &error else {
            panic!("{error:?}")
        };
        assert_eq!(shortfall.available, "0.50000000 dCAIRN");
        assert_eq!(shortfall.needed, "0.50000164 dCAIRN");
        assert!(error.to_string().contains("0.50000000 dCAIRN available"));
        // Exactly enough passes.
        assert!(plan_transfer(
            &chain(),
            FROM,
            &request("0.49999836", None, b""),
            &account(200_000_000, 150_000_000),
            Some(1),
            None,
        )
        .is_ok());
    }

    #[test]
    fn bad_input_is_refused_before_anything_else() {
        let accounts = account(u64::MAX, 0);
        let mut bad = request("1", None, b"");
        let last = bad.to.pop().unwrap();
        bad.to.push(if last == 'q' { 'p' } else { 'q' });
        assert!(matches!(
            plan_transfer(&chain(), FROM, &bad, &accounts, Some(1), None),
            Err(SendError::BadRecipient(AddressError::Malformed { .. }))
        ));
        let mut other_chain = request("1", None, b"");
        other_chain.to = Address::from_xonly([7u8; 32])
            .to_bech32("cairntest")
            .unwrap();
        let error =
            plan_transfer(&chain(), FROM, &other_chain, &accounts, Some(1), None).unwrap_err();
        assert!(matches!(
            error,
            SendError::BadRecipient(AddressError::WrongChain { .. })
        ));
        assert!(error.to_string().contains("another chain"), "{error}");
        assert!(matches!(
            plan_transfer(
                &chain(),
                FROM,
                &request("1.123456789", None, b""),
                &accounts,
                Some(1),
                None
            ),
            Err(SendError::BadAmount(AmountError::TooPrecise { .. }))
        ));
        assert!(matches!(
            plan_transfer(
                &chain(),
                FROM,
                &request("1", Some("x"), b""),
                &accounts,
                Some(1),
                None
            ),
            Err(SendError::BadFee(_))
        ));
        assert_eq!(
            plan_transfer(
                &chain(),
                FROM,
                &request("1", None, &[0u8; 81]),
                &accounts,
                Some(1),
                Some(80)
            ),
            Err(SendError::MemoTooLong { len: 81, max: 80 })
        );
        assert_eq!(
            plan_transfer(
                &chain(),
                FROM,
                &request("184467440737.09551615", Some("0.00000001"), b""),
                &accounts,
                None,
                None
            ),
            Err(SendError::Overflow)
        );
    }

    #[test]
    fn rejections_are_explained() {
        let error = explain_rejection(ClientError::Api {
            status: 422,
            code: "fee_too_low".into(),
            message: "fee 10 below 164".into(),
        });
        let text = error.to_string();
        assert!(
            text.contains("fee_too_low") && text.contains("--fee"),
            "{text}"
        );
        assert!(text.contains("fee 10 below 164"), "{text}");
        let unknown = explain_rejection(ClientError::Api {
            status: 422,
            code: "something_new".into(),
            message: "a reason".into(),
        });
        assert!(unknown.to_string().ends_with("a reason"));
        let unreachable = ClientError::NodeUnreachable {
            url: "u".into(),
            detail: "d".into(),
        };
        assert_eq!(
            explain_rejection(unreachable.clone()),
            SendError::Client(unreachable)
        );
    }

    #[test]
    fn progress_lines() {
        assert_eq!(
            WaitProgress::Pending { elapsed_secs: 3 }.to_string(),
            "pending in the mempool… 3 s"
        );
        assert_eq!(
            WaitProgress::Confirmed {
                height: 12,
                confirmations: 1
            }
            .to_string(),
            "confirmed in block 12 (1 confirmation)"
        );
        assert_eq!(
            WaitProgress::Confirmed {
                height: 12,
                confirmations: 2
            }
            .to_string(),
            "confirmed in block 12 (2 confirmations)"
        );
    }
}
