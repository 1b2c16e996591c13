//! `/api/v1/peers` and the admin calls on peers. Reading needs nothing; changing needs the
//! admin cookie's token in `Authorization: Bearer <token>`.
//!
//! ```text
//!   GET  /api/v1/peers                       connected peers, bans, own addresses
//!   POST /api/v1/admin/peers/connect         {"address": "<multiaddr>"}   dial
//!   POST /api/v1/admin/peers/disconnect      {"peer": "<peer id>"}        close
//!   POST /api/v1/admin/peers/ban             {"peer": "<peer id>"}        close, refuse, persist
//!   POST /api/v1/admin/peers/unban           {"peer": "<peer id>"}        lift
//! ```
use super::views::PeersView;
use super::{authorize, body, snapshot, to_driver, ApiError, ApiState};
use crate::node::driver::DriverEvent;
use crate::node::net::{Multiaddr, NetCommand, PeerId};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};

/// Body of `connect`.
#[derive(Debug, Deserialize, Serialize)]
pub struct ConnectBody {
    /// Where to dial, e.g. `/ip4/10.0.0.2/tcp/7370/p2p/12D3...`.
    pub address: String,
}

/// Body of `disconnect`, `ban`, `unban`.
#[derive(Debug, Deserialize, Serialize)]
pub struct PeerBody {
    /// The peer id.
    pub peer: String,
}

/// What an admin call did.
#[derive(Debug, Deserialize, Serialize)]
pub struct AdminDone {
    /// A sentence for people.
    pub result: String,
}

pub(super) async fn peers(State(state): State<ApiState>) -> Result<Json<PeersView>, ApiError> {
    peers_view(&state).map(Json)
}

/// The network as the driver last saw it.
pub(crate) fn peers_view(state: &ApiState) -> Result<PeersView, ApiError> {
    snapshot(&state.shared.peers, "peers")
}

fn parse_peer(text: &str) -> Result<PeerId, ApiError> {
    text.trim()
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("{text:?} is not a peer id (like 12D3KooW...)")))
}

pub(super) async fn connect(
    State(state): State<ApiState>,
    headers: HeaderMap,
    request: Result<Json<ConnectBody>, JsonRejection>,
) -> Result<Json<AdminDone>, ApiError> {
    authorize(&state, &headers)?;
    let text = body(request)?.address;
    let address: Multiaddr = text.trim().parse().map_err(|e| {
        ApiError::BadRequest(format!(
            "{text:?} is not a multiaddr ({e}); e.g. /ip4/127.0.0.1/tcp/7370"
        ))
    })?;
    state.admin.net.send(NetCommand::Dial(address.clone()));
    Ok(Json(AdminDone {
        result: format!("dialing {address}"),
    }))
}

/// An admin call that names a peer: authorize, parse, then `act` says what was done.
fn peer_call(
    state: &ApiState,
    headers: &HeaderMap,
    request: Result<Json<PeerBody>, JsonRejection>,
    act: impl FnOnce(&ApiState, PeerId) -> Result<String, ApiError>,
) -> Result<Json<AdminDone>, ApiError> {
    authorize(state, headers)?;
    let peer = parse_peer(&body(request)?.peer)?;
    Ok(Json(AdminDone {
        result: act(state, peer)?,
    }))
}

pub(super) async fn disconnect(
    State(state): State<ApiState>,
    headers: HeaderMap,
    request: Result<Json<PeerBody>, JsonRejection>,
) -> Result<Json<AdminDone>, ApiError> {
    peer_call(&state, &headers, request, |state, peer| {
        state.admin.net.send(NetCommand::Disconnect(peer));
        Ok(format!("disconnecting {peer}"))
    })
}

pub(super) async fn ban(
    State(state): State<ApiState>,
    headers: HeaderMap,
    request: Result<Json<PeerBody>, JsonRejection>,
) -> Result<Json<AdminDone>, ApiError> {
    peer_call(&state, &headers, request, |state, peer| {
        to_driver(state, DriverEvent::Ban(peer))?;
        Ok(format!("banned {peer}"))
    })
}

pub(super) async fn unban(
    State(state): State<ApiState>,
    headers: HeaderMap,
    request: Result<Json<PeerBody>, JsonRejection>,
) -> Result<Json<AdminDone>, ApiError> {
    peer_call(&state, &headers, request, |state, peer| {
        to_driver(state, DriverEvent::Unban(peer))?;
        Ok(format!("unbanned {peer}"))
    })
}
