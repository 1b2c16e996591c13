//! Transactions: `POST /api/v1/transactions` submits a signed transfer to the mempool (through
//! the driver, which relays it); `GET /api/v1/transactions/{txid}` says whether a transfer is
//! pending or confirmed, and how deeply.
//!
//! Every refusal of the mempool keeps its own code (`fee_too_low`, `nonce_too_low`, ...) and
//! gets the status that fits: 422 for a transfer that can never be valid as sent, 409 for a
//! conflict with the chain or the pool, 429 and 503 for limits.
use super::views::{
    fee_rate, SubmitTransferRequest, SubmitTransferResponse, TransactionView, TransferView,
};
use super::{body, driver_reply, parse_address, to_driver, ApiError, ApiState};
use crate::core::consensus::ChainSpec;
use crate::core::logic::SubmitRefusal;
use crate::core::mempool::MempoolError;
use crate::core::primitives::{Amount, Signature, Transfer, Txid};
use crate::node::driver::DriverEvent;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use tokio::sync::oneshot;

/// The transfer a submission describes, or why it is malformed.
pub fn transfer_from_request(
    spec: &ChainSpec,
    request: SubmitTransferRequest,
) -> Result<Transfer, ApiError> {
    let memo = hex::decode(request.memo_hex.trim())
        .map_err(|e| ApiError::malformed(format!("memo_hex is not hex: {e}")))?;
    let signature: [u8; 64] = hex::decode(request.signature.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| ApiError::malformed("signature must be 128 hex digits (64 bytes)"))?;
    Ok(Transfer {
        chain_id: request.chain_id,
        from: parse_address(spec, &request.from)?,
        to: parse_address(spec, &request.to)?,
        amount: Amount::from_units(request.amount),
        fee: Amount::from_units(request.fee),
        nonce: request.nonce,
        memo,
        signature: Signature(signature),
    })
}

/// The HTTP status of a mempool refusal.
pub fn refusal_status(error: &MempoolError) -> StatusCode {
    match error {
        MempoolError::NonceTooLow { .. }
        | MempoolError::ReplacementUnderpriced { .. }
        | MempoolError::AlreadyKnown { .. } => StatusCode::CONFLICT,
        MempoolError::SenderFull { .. } => StatusCode::TOO_MANY_REQUESTS,
        MempoolError::PoolFull { .. } => StatusCode::SERVICE_UNAVAILABLE,
        MempoolError::State(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

fn refused(error: MempoolError) -> ApiError {
    ApiError::Refused {
        status: refusal_status(&error),
        code: error.code(),
        message: format!("transfer refused: {error}"),
    }
}

pub(super) async fn submit(
    State(state): State<ApiState>,
    request: Result<Json<SubmitTransferRequest>, JsonRejection>,
) -> Result<Json<SubmitTransferResponse>, ApiError> {
    let transfer = transfer_from_request(&state.spec, body(request)?)?;
    let txid = transfer.txid();
    let (reply, answer) = oneshot::channel();
    to_driver(&state, DriverEvent::SubmitTransfer { transfer, reply })?;
    let pending = |replaced: Option<Txid>| SubmitTransferResponse {
        txid: txid.to_hex(),
        status: "pending".to_string(),
        replaced: replaced.map(|r| r.to_hex()),
    };
    let refusal = match driver_reply(answer).await? {
        Ok(admitted) => return Ok(Json(pending(admitted.replaced))),
        Err(SubmitRefusal::NotDurable(message)) => {
            return Err(ApiError::Refused {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "not_durable",
                message: format!("transfer not accepted: {message}"),
            })
        }
        Err(SubmitRefusal::Mempool(refusal)) => refusal,
    };
    match refusal {
        // Submitting again what the pool holds is not an error: clients may retry.
        MempoolError::AlreadyKnown { .. } => Ok(Json(pending(None))),
        error @ MempoolError::NonceTooLow { .. } => match state.store.tx_location(&txid)? {
            Some(location) => Err(ApiError::Refused {
                status: StatusCode::CONFLICT,
                code: "already_confirmed",
                message: format!(
                    "transfer {txid} is already confirmed in block {} at height {}",
                    location.block, location.height
                ),
            }),
            None => Err(refused(error)),
        },
        error => Err(refused(error)),
    }
}

pub(super) async fn status(
    State(state): State<ApiState>,
    Path(txid): Path<String>,
) -> Result<Json<TransactionView>, ApiError> {
    let txid: Txid = txid.trim().parse().map_err(|_| {
        ApiError::BadRequest(format!("{txid:?} is not a transaction id (64 hex digits)"))
    })?;
    transaction_view(&state, txid).map(Json)
}

/// Where transfer `txid` is: the mempool or the best chain (`404` if neither).
pub(crate) fn transaction_view(state: &ApiState, txid: Txid) -> Result<TransactionView, ApiError> {
    let pooled = state
        .shared
        .mempool
        .read()
        .map_err(|_| ApiError::Internal("mempool lock poisoned".into()))?
        .get(&txid)
        .map(|entry| entry.transfer.clone());
    if let Some(transfer) = pooled {
        return Ok(TransactionView {
            txid: txid.to_hex(),
            status: "pending".to_string(),
            confirmations: 0,
            block_hash: None,
            height: None,
            time: None,
            fee_rate: fee_rate(&transfer),
            transfer: TransferView::new(&state.spec, &transfer),
        });
    }
    let not_found = || {
        ApiError::NotFound(format!(
            "no transaction {txid} in the best chain or the mempool"
        ))
    };
    let location = state.store.tx_location(&txid)?.ok_or_else(not_found)?;
    let block = state.store.block(&location.block)?.ok_or_else(not_found)?;
    let transfer = block
        .transfers
        .get(location.position as usize)
        .ok_or_else(|| {
            ApiError::Internal(format!("transaction index of {txid} points past its block"))
        })?;
    let tip = state.store.tip()?;
    Ok(TransactionView {
        txid: txid.to_hex(),
        status: "confirmed".to_string(),
        confirmations: tip.height().saturating_sub(location.height) + 1,
        block_hash: Some(location.block.to_hex()),
        height: Some(location.height),
        time: Some(block.header.time),
        fee_rate: fee_rate(transfer),
        transfer: TransferView::new(&state.spec, transfer),
    })
}
