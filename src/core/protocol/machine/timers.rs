//! What the clock drives: request timeouts, statuses exchanged again, the block-stall
//! rule, and progress reports.
//!
//! # Invariants
//! - A request past its deadline is failed and its blocks go back to the queue; a relay
//!   request's compact block is returned to the caller for its next step.
//! - A peer that stalls `max_stalls` times in a row is disconnected.
use super::*;

impl<P: Ord + Clone + std::fmt::Debug> Protocol<P> {
    /// Returns the relay requests that timed out, for `relay` to take their next step.
    pub(super) fn on_tick<S: ChainStore>(
        &mut self,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Vec<(P, relay::RelayRequest)> {
        let mut failed_relays = Vec::new();
        let expired: Vec<u64> = self
            .requests
            .iter()
            .filter(|(_, r)| r.deadline_ms <= now_ms)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let Some(request) = self.requests.remove(&id) else {
                continue;
            };
            let peer = request.peer.clone();
            if let Some(relay) = self.give_back(id, request) {
                failed_relays.push((peer.clone(), relay));
            }
            if let Some(info) = self.peers.get_mut(&peer) {
                info.stalls += 1;
                if info.stalls >= self.config.max_stalls {
                    out.push(Action::Disconnect(peer.clone()));
                    self.drop_peer(&peer);
                }
            }
        }
        let due: Vec<P> = self
            .peers
            .iter()
            .filter(|(_, info)| {
                now_ms.saturating_sub(info.status_asked_ms) >= self.config.status_interval_ms
            })
            .map(|(p, _)| p.clone())
            .collect();
        for peer in due {
            self.ask_status(&peer, chain, now_ms, out);
        }
        self.disconnect_window_staller(chain, now_ms, out);
        self.orphans.expire(now_ms / 1000);
        for peer in self.policy.expire_bans(now_ms) {
            out.push(Action::Unbanned(peer));
        }
        self.policy.expire_records(now_ms);
        self.report_progress(chain, now_ms, out);
        failed_relays
    }

    /// A peer whose request for the next block to connect has waited `block_stall_ms` while
    /// the download window is full holds every other peer up (a slow liar, or a slow link):
    /// it is disconnected and its blocks go to the others, as Bitcoin Core does. Each such
    /// stall doubles the allowance (up to `max_block_stall_ms`), so a network that is slow
    /// everywhere does not lose all its peers; it returns to the base when sync is done.
    pub(super) fn disconnect_window_staller<S: ChainStore>(
        &mut self,
        chain: &ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) {
        let Some(id) = self.download.front_request() else {
            return;
        };
        let Some(request) = self.requests.get(&id) else {
            return;
        };
        let window_full = self
            .download
            .unassigned_in_window(self.config.download_window)
            == 0
            || self.download.buffered_bytes() >= self.config.max_download_bytes;
        let waited = now_ms.saturating_sub(request.sent_ms);
        let our_work = chain.tip().chain_work;
        let staller = request.peer.clone();
        let others = self.peers.iter().any(|(p, info)| {
            *p != staller
                && info
                    .status
                    .as_ref()
                    .is_some_and(|s| s.chain_work > our_work)
        });
        if window_full && others && waited >= self.block_stall_ms {
            out.push(Action::Disconnect(staller.clone()));
            self.drop_peer(&staller);
            self.block_stall_ms = self
                .block_stall_ms
                .saturating_mul(2)
                .min(self.config.max_block_stall_ms);
        }
    }

    pub(super) fn report_progress<S: ChainStore>(
        &mut self,
        chain: &ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) {
        let elapsed_ms = now_ms.saturating_sub(self.progress.at_ms);
        if elapsed_ms < self.config.progress_interval_ms {
            return;
        }
        if let Some((report, pages)) = self.snapshot_progress(elapsed_ms) {
            out.push(report);
            self.progress = ProgressMark {
                at_ms: now_ms,
                height: chain.tip().height(),
                pages,
            };
            return;
        }
        let height = chain.tip().height();
        let target_height = self
            .peers
            .values()
            .filter_map(|info| info.status.as_ref().map(|s| s.height))
            .chain(self.download.last().map(|w| w.entry.height()))
            .max()
            .unwrap_or(height);
        let behind = self.is_syncing() && target_height > height;
        if behind && self.progress.at_ms != 0 {
            let (blocks_per_sec, eta_secs) = pace(
                u64::from(height.saturating_sub(self.progress.height)),
                elapsed_ms,
                u64::from(target_height - height),
            );
            out.push(Action::Progress {
                height,
                target_height,
                blocks_per_sec,
                eta_secs,
            });
        }
        self.progress = ProgressMark {
            at_ms: now_ms,
            height,
            pages: 0,
        };
    }
}

/// The pace of work between two reports: `done` units in `elapsed_ms`, per second, and the
/// seconds the `left` units take at that pace (none if nothing moved). The one rule of every
/// progress report (blocks synced, state pages, blocks below a snapshot).
pub(super) fn pace(done: u64, elapsed_ms: u64, left: u64) -> (f64, Option<u64>) {
    let per_sec = done as f64 * 1000.0 / elapsed_ms.max(1) as f64;
    let eta_secs = (per_sec > 0.0).then(|| (left as f64 / per_sec).ceil() as u64);
    (per_sec, eta_secs)
}
