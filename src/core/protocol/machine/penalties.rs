//! Penalties and bans: misbehaviour scores through `peers::PeerPolicy`, and forgetting a
//! peer that left.
//!
//! # Invariants
//! - A banned peer is disconnected and its requests are forgotten.
use super::*;

impl<P: Ord + Clone + std::fmt::Debug> Protocol<P> {
    pub(super) fn penalize(
        &mut self,
        peer: &P,
        fault: Misbehavior,
        now_ms: u64,
        reason: String,
        out: &mut Vec<Action<P>>,
    ) {
        let action = self.policy.on_misbehavior(peer, fault, now_ms);
        self.apply_policy(peer.clone(), action, reason, out);
    }

    pub(super) fn apply_policy(
        &mut self,
        peer: P,
        action: PeerAction,
        reason: String,
        out: &mut Vec<Action<P>>,
    ) {
        match action {
            PeerAction::None => {}
            PeerAction::Disconnect => {
                out.push(Action::Disconnect(peer.clone()));
                self.drop_peer(&peer);
            }
            PeerAction::Ban { until_ms } => self.banned(peer, until_ms, reason, out),
        }
    }

    pub(super) fn banned(
        &mut self,
        peer: P,
        until_ms: u64,
        reason: String,
        out: &mut Vec<Action<P>>,
    ) {
        self.orphans.remove_from_peer(&peer);
        self.drop_peer(&peer);
        out.push(Action::Ban {
            peer,
            until_ms,
            reason,
        });
    }

    pub(super) fn drop_peer(&mut self, peer: &P) {
        // The peer's score stays (see `peers`): reconnecting does not wipe it.
        self.peers.remove(peer);
        let theirs: Vec<u64> = self
            .requests
            .iter()
            .filter(|(_, r)| r.peer == *peer)
            .map(|(id, _)| *id)
            .collect();
        for id in theirs {
            if let Some(request) = self.requests.remove(&id) {
                self.give_back(id, request);
            }
        }
        // The queue stays even if its source leaves: its headers were checked here, and the
        // source still answers (its score outlives the connection) for the branch it
        // announced. `schedule` drops the queue when no connected peer can serve it.
    }
}
