//! Accounts: `GET /api/v1/accounts/{address}` (balance, nonce, what is pending),
//! `GET /api/v1/accounts/{address}/history` (confirmed entries newest first, paged by an
//! opaque cursor, and pending transfers on the first page) and
//! `GET /api/v1/accounts/{address}/proof[?block=HEIGHT|HASH]` (the account, or its absence,
//! proven against a best-chain block's state root).
use super::chain::{find_entry, parse_block_id};
use super::views::{
    AccountProofView, AccountStateView, AccountView, HistoryEntryView, HistoryView, TransferView,
};
use super::{parse_address, ApiError, ApiState};
use crate::core::primitives::{Address, Block, BlockHash};
use crate::core::state::proof::Terminal;
use crate::node::store::HistoryItem;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Default history page size.
pub const DEFAULT_HISTORY_PAGE: usize = 50;
/// Largest history page.
pub const MAX_HISTORY_PAGE: usize = 500;

pub(super) async fn account(
    State(state): State<ApiState>,
    Path(address): Path<String>,
) -> Result<Json<AccountView>, ApiError> {
    account_view(&state, &address).map(Json)
}

/// Balance, nonce and what is pending of `address` (`400 bad_address` if malformed).
pub(crate) fn account_view(state: &ApiState, address: &str) -> Result<AccountView, ApiError> {
    let address_parsed = parse_address(&state.spec, address)?;
    let account = state.store.account(&address_parsed)?.unwrap_or_default();
    let pool = state
        .shared
        .mempool
        .read()
        .map_err(|_| ApiError::Internal("mempool lock poisoned".into()))?;
    Ok(AccountView {
        address: address.trim().to_string(),
        balance: account.balance.as_units(),
        nonce: account.nonce,
        next_nonce: pool.next_nonce(&address_parsed, account.nonce),
        pending: pool.sender_entries(&address_parsed).count(),
        pending_outgoing: pool.pending_outgoing(&address_parsed).as_units(),
    })
}

/// Query of the proof call.
#[derive(Debug, Deserialize)]
pub(super) struct ProofQuery {
    block: Option<String>,
}

pub(super) async fn proof(
    State(state): State<ApiState>,
    Path(address): Path<String>,
    query: Result<Query<ProofQuery>, QueryRejection>,
) -> Result<Json<AccountProofView>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::malformed(e.body_text()))?;
    proof_view(&state, &address, query.block.as_deref()).map(Json)
}

/// The proof of `address`'s account (or of its absence) against the state root of `block`
/// (a height or hash on the best chain; the durable tip by default).
pub(crate) fn proof_view(
    state: &ApiState,
    address: &str,
    block: Option<&str>,
) -> Result<AccountProofView, ApiError> {
    let address_parsed = parse_address(&state.spec, address)?;
    let store = &state.store;
    let entry = match block.map(parse_block_id).transpose()? {
        None => store.tip()?,
        Some(id) => match find_entry(state, id)? {
            (entry, true) => entry,
            (entry, false) => {
                return Err(ApiError::NotFound(format!(
                    "block {} is not on this node's best chain: proofs are served against \
                     best-chain blocks only",
                    entry.hash()
                )))
            }
        },
    };
    let root = entry.header.state_root;
    let proof = store.account_proof(root.0, &address_parsed)?;
    let account = match proof.terminal {
        Terminal::Account(account) => Some(AccountStateView {
            balance: account.balance.as_units(),
            nonce: account.nonce,
        }),
        Terminal::Empty | Terminal::Other { .. } => None,
    };
    Ok(AccountProofView {
        address: address.trim().to_string(),
        block_hash: entry.hash().to_hex(),
        height: entry.height(),
        header: entry.header.to_hex(),
        state_root: root.to_hex(),
        account,
        proof: proof.to_view(),
    })
}

/// Query of the history call.
#[derive(Debug, Deserialize)]
pub(super) struct HistoryQuery {
    limit: Option<usize>,
    cursor: Option<String>,
}

/// `(height, position)` from a cursor: 8 hex digits of each.
fn parse_cursor(cursor: &str) -> Result<(u32, u32), ApiError> {
    let bad = || {
        ApiError::malformed(format!(
            "{cursor:?} is not a history cursor (use the `next` of the previous page)"
        ))
    };
    if cursor.len() != 16 || !cursor.is_ascii() {
        return Err(bad());
    }
    let height = u32::from_str_radix(&cursor[..8], 16).map_err(|_| bad())?;
    let position = u32::from_str_radix(&cursor[8..], 16).map_err(|_| bad())?;
    Ok((height, position))
}

fn format_cursor(height: u32, position: u32) -> String {
    format!("{height:08x}{position:08x}")
}

pub(super) async fn history(
    State(state): State<ApiState>,
    Path(address): Path<String>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<HistoryView>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::malformed(e.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_HISTORY_PAGE);
    history_view(&state, &address, limit, query.cursor.as_deref()).map(Json)
}

/// One page of `address`'s history, newest first: at most `limit` (clamped to
/// 1..=[`MAX_HISTORY_PAGE`]) entries below `cursor`, and pending transfers on the first page.
pub(crate) fn history_view(
    state: &ApiState,
    address: &str,
    limit: usize,
    cursor: Option<&str>,
) -> Result<HistoryView, ApiError> {
    let address_parsed = parse_address(&state.spec, address)?;
    let limit = limit.clamp(1, MAX_HISTORY_PAGE);
    let below = cursor.map(parse_cursor).transpose()?;
    // One more than asked, to know whether there is a next page.
    let rows = state
        .store
        .address_history_page(&address_parsed, below, limit + 1)?;
    let next = (rows.len() > limit).then(|| {
        let (height, position, _) = rows[limit - 1];
        format_cursor(height, position)
    });
    let tip_height = state.store.tip()?.height();
    let mut blocks: BTreeMap<BlockHash, Block> = BTreeMap::new();
    let mut items = Vec::with_capacity(limit);
    for (height, position, item) in rows.into_iter().take(limit) {
        let hash = match item {
            HistoryItem::Transfer { block, .. } | HistoryItem::Reward { block } => block,
        };
        let block = match blocks.entry(hash) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => {
                entry.insert(state.store.block(&hash)?.ok_or_else(|| {
                    ApiError::Internal(format!("history of {address} names missing block {hash}"))
                })?)
            }
        };
        items.push(history_entry(
            state,
            &address_parsed,
            block,
            height,
            position,
            tip_height,
        )?);
    }
    let pending = if below.is_none() {
        let pool = state
            .shared
            .mempool
            .read()
            .map_err(|_| ApiError::Internal("mempool lock poisoned".into()))?;
        pool.involving(&address_parsed)
            .into_iter()
            .map(|entry| TransferView::new(&state.spec, &entry.transfer))
            .collect()
    } else {
        Vec::new()
    };
    Ok(HistoryView {
        address: address.trim().to_string(),
        items,
        pending,
        next,
    })
}

fn history_entry(
    state: &ApiState,
    address: &Address,
    block: &Block,
    height: u32,
    position: u32,
    tip_height: u32,
) -> Result<HistoryEntryView, ApiError> {
    let spec = &state.spec;
    let bech32 = |a: &Address| {
        a.to_bech32(spec.hrp())
            .unwrap_or_else(|_| a.to_string_hex())
    };
    let confirmations = tip_height.saturating_sub(height) + 1;
    if position == 0 {
        return Ok(HistoryEntryView {
            kind: "reward".to_string(),
            txid: None,
            height,
            block_hash: block.hash().to_hex(),
            time: block.header.time,
            confirmations,
            from: None,
            to: bech32(&block.reward_address),
            amount: block.reward.as_units(),
            fee: 0,
            nonce: None,
            memo: String::new(),
            memo_hex: String::new(),
        });
    }
    let transfer = block.transfers.get(position as usize - 1).ok_or_else(|| {
        ApiError::Internal(format!(
            "history entry past the end of block {}",
            block.hash()
        ))
    })?;
    let view = TransferView::new(spec, transfer);
    let kind = match (transfer.from == *address, transfer.to == *address) {
        (true, true) => "self",
        (true, false) => "sent",
        _ => "received",
    };
    Ok(HistoryEntryView {
        kind: kind.to_string(),
        txid: Some(view.txid),
        height,
        block_hash: block.hash().to_hex(),
        time: block.header.time,
        confirmations,
        from: Some(view.from),
        to: view.to,
        amount: view.amount,
        fee: view.fee,
        nonce: Some(view.nonce),
        memo: view.memo,
        memo_hex: view.memo_hex,
    })
}
