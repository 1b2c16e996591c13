//! Every JSON body the HTTP API parses. The same bytes are read as each body:
//! `POST /api/v1/transactions` (`SubmitTransferRequest`, in core) and, with the `node`
//! feature, the admin bodies (`MiningBody`, `ConnectBody`, `PeerBody`) and what the handlers
//! make of them. Never panics; every body survives a JSON round trip; a submission that
//! converts to a transfer converts back to a request for the same transfer, and that
//! transfer's encoding round-trips.
#![no_main]
use cairn::core::views::SubmitTransferRequest;
use cairn_fuzz::json_round_trip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(request) = json_round_trip::<SubmitTransferRequest>(data) {
        #[cfg(feature = "node")]
        node::submission(request);
        #[cfg(not(feature = "node"))]
        let _ = request;
    }
    #[cfg(feature = "node")]
    node::admin_bodies(data);
});

#[cfg(feature = "node")]
mod node {
    use cairn::core::primitives::{codec, Transfer};
    use cairn::core::views::SubmitTransferRequest;
    use cairn::node::api::mining::MiningBody;
    use cairn::node::api::peers::{ConnectBody, PeerBody};
    use cairn::node::api::transactions::transfer_from_request;
    use cairn::node::net::{Multiaddr, PeerId};
    use cairn_fuzz::{json_round_trip_as_values, test_context};

    /// `transactions::submit` before the mempool: request to transfer, and back.
    pub fn submission(request: SubmitTransferRequest) {
        let spec = &test_context().spec;
        let Ok(transfer) = transfer_from_request(spec, request) else {
            return;
        };
        let back = SubmitTransferRequest::from_transfer(&transfer, spec.hrp())
            .expect("the test chain's prefix is valid");
        let again =
            transfer_from_request(spec, back).expect("a request built from a transfer converts");
        assert_eq!(again, transfer);
        let bytes = codec::encode(&transfer).expect("a transfer encodes");
        assert_eq!(codec::decode::<Transfer>(&bytes).ok(), Some(transfer));
    }

    /// The admin bodies and the parsing their handlers do.
    pub fn admin_bodies(data: &[u8]) {
        let _ = json_round_trip_as_values::<MiningBody>(data);
        if let Some(body) = json_round_trip_as_values::<ConnectBody>(data) {
            let _ = body.address.trim().parse::<Multiaddr>();
        }
        if let Some(body) = json_round_trip_as_values::<PeerBody>(data) {
            let _ = body.peer.trim().parse::<PeerId>();
        }
    }
}
