//! Mining: `GET /api/v1/mining` (on or off, threads, hash rate, blocks found) and the admin
//! call `POST /api/v1/admin/mining` `{"enabled": bool}` that pauses or resumes the miner.
use super::peers::AdminDone;
use super::views::MiningView;
use super::{authorize, body, driver_reply, snapshot, to_driver, ApiError, ApiState};
use crate::node::driver::DriverEvent;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

/// Body of `POST /api/v1/admin/mining`.
#[derive(Debug, Deserialize, Serialize)]
pub struct MiningBody {
    /// Mine or not.
    pub enabled: bool,
}

pub(super) async fn mining(State(state): State<ApiState>) -> Result<Json<MiningView>, ApiError> {
    snapshot(&state.shared.mining, "mining").map(Json)
}

pub(super) async fn set_mining(
    State(state): State<ApiState>,
    headers: HeaderMap,
    request: Result<Json<MiningBody>, JsonRejection>,
) -> Result<Json<AdminDone>, ApiError> {
    authorize(&state, &headers)?;
    let enabled = body(request)?.enabled;
    let (reply, answer) = oneshot::channel();
    to_driver(&state, DriverEvent::SetMining { enabled, reply })?;
    driver_reply(answer)
        .await?
        .map_err(|message| ApiError::Refused {
            status: StatusCode::CONFLICT,
            code: "not_mining",
            message,
        })?;
    Ok(Json(AdminDone {
        result: format!("mining {}", if enabled { "on" } else { "off" }),
    }))
}
