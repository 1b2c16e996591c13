//! Health: `GET /api/v1/health` says whether the node can write its store, and so take in
//! and mine blocks and accept transfers; `200` when it can, `503` (same body) when it cannot,
//! so that a load balancer or a supervisor needs no JSON.
use super::views::HealthView;
use super::{snapshot, ApiError, ApiState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

pub(super) async fn health(
    State(state): State<ApiState>,
) -> Result<(StatusCode, Json<HealthView>), ApiError> {
    let view = snapshot(&state.shared.health, "health")?;
    let status = if view.writable {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, Json(view)))
}
