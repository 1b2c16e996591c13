//! Health: `GET /api/v1/health` says whether the node can write its store, and so take in
//! and mine blocks and accept transfers; `200` when it can, `503` (same body) when it cannot,
//! so that a load balancer or a supervisor needs no JSON.
use super::views::HealthView;
use super::{ApiError, ApiState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

pub(super) async fn health(
    State(state): State<ApiState>,
) -> Result<(StatusCode, Json<HealthView>), ApiError> {
    let view = state
        .shared
        .health
        .read()
        .map_err(|_| ApiError::Internal("health view lock poisoned".into()))?
        .clone();
    let status = if view.writable {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, Json(view)))
}
