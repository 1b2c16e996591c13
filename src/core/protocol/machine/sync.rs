//! Header-first sync: answers to our requests (statuses, headers, blocks), the download
//! queue, the requests sent to each useful peer, and connecting downloaded blocks in order.
//!
//! # Invariants
//! - Only blocks of a branch with more header work than the tip are requested.
//! - At most `max_requests_per_peer` requests are in flight to one peer, within its budget.
//! - A request that fails or times out gives its blocks back to the queue.
use super::*;

/// What a headers request asked, to judge its answer by.
#[derive(Clone, Debug)]
pub(super) struct HeadersAsked {
    /// The chain work the peer claimed in its last status (its chain work never falls, so
    /// the headers it answers with must show at least as much).
    claimed: Option<Work>,
    /// The most work of any block in our locator: an honest peer that answers with no
    /// headers has its tip on the locator, so no more work than this.
    asked_from: Work,
    /// The hashes of the locator we sent: an honest answer starts after one of them.
    locator: Vec<BlockHash>,
}

impl<P: Ord + Clone + std::fmt::Debug> Protocol<P> {
    pub(super) fn on_response<S: ChainStore>(
        &mut self,
        peer: P,
        id: u64,
        response: SyncResponse,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        let Some(request) = self.requests.get(&id) else {
            return Ok(()); // Late: it already timed out.
        };
        if request.peer != peer {
            return Ok(());
        }
        let request = self.requests.remove(&id).expect("just looked up");
        if let Some(info) = self.peers.get_mut(&peer) {
            info.requests_in_flight = info.requests_in_flight.saturating_sub(1);
            info.stalls = 0;
        }
        match (request.pending, response) {
            (Pending::Status, SyncResponse::Status(status)) => {
                self.on_status(peer, status, chain, now_ms, out);
            }
            (Pending::Headers(asked), SyncResponse::Headers(headers)) => {
                self.headers_request = None;
                self.on_headers(peer, headers, asked, chain, now_ms, out)?;
            }
            (Pending::Blocks(requested), SyncResponse::Blocks(blocks)) => {
                if let Err(e) = check_blocks_response(&blocks, &requested) {
                    self.download.unassign(&peer, id, &requested);
                    self.penalize(
                        &peer,
                        Misbehavior::ProtocolViolation,
                        now_ms,
                        e.to_string(),
                        out,
                    );
                } else {
                    self.download.receive(&peer, id, &requested, blocks);
                    self.connect_downloaded(chain, now_ms, out)?;
                }
            }
            (Pending::Relay(relay), response) => {
                self.on_relay_response(peer, relay, response, chain, now_ms, out)?;
            }
            (Pending::StatePages, SyncResponse::StatePages(pages)) => {
                self.on_state_pages(peer, id, pages, chain, now_ms, out)?;
            }
            (Pending::OldBlocks, SyncResponse::Blocks(blocks)) => {
                self.on_old_blocks(peer, id, blocks, chain, now_ms, out)?;
            }
            (pending, _) => {
                if let Pending::Blocks(requested) = &pending {
                    self.download.unassign(&peer, id, requested);
                }
                if let Pending::StatePages = &pending {
                    self.state_pages_failed(&peer, id);
                }
                if let Pending::OldBlocks = &pending {
                    self.old_blocks_failed(&peer, id);
                }
                if matches!(pending, Pending::Headers(_)) {
                    self.headers_request = None;
                }
                self.penalize(
                    &peer,
                    Misbehavior::ProtocolViolation,
                    now_ms,
                    "answered with the wrong kind of response".into(),
                    out,
                );
            }
        }
        Ok(())
    }

    pub(super) fn on_status<S: ChainStore>(
        &mut self,
        peer: P,
        status: Status,
        chain: &ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) {
        if status.genesis != chain.genesis_hash() {
            self.penalize(
                &peer,
                Misbehavior::WrongChain,
                now_ms,
                "another chain".into(),
                out,
            );
            return;
        }
        if let Some(info) = self.peers.get_mut(&peer) {
            info.exhausted = false;
            info.status = Some(status);
        }
    }

    pub(super) fn on_headers<S: ChainStore>(
        &mut self,
        peer: P,
        headers: Vec<crate::core::primitives::Header>,
        asked: HeadersAsked,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        if let Err(e) = check_headers_response(&headers, MAX_HEADERS as u32) {
            self.penalize(
                &peer,
                Misbehavior::ProtocolViolation,
                now_ms,
                e.to_string(),
                out,
            );
            return Ok(());
        }
        // Skip what we already have (the answer starts at the fork with our locator).
        let mut start = 0;
        while let Some(header) = headers.get(start) {
            // (Headers already queued are not skipped: an answer that starts inside the
            // queue is another branch from our tip, and replaces the queue.)
            let hash = header.hash();
            match chain.entry(&hash)? {
                Some(entry) if entry.status == BlockStatus::Valid => start += 1,
                Some(_) => {
                    self.penalize(
                        &peer,
                        Misbehavior::InvalidBlock,
                        now_ms,
                        "its best chain holds an invalid block".into(),
                        out,
                    );
                    return Ok(());
                }
                None => break,
            }
        }
        let full = headers.len() >= MAX_HEADERS;
        let new = &headers[start..];
        let Some(first) = new.first() else {
            if let Some(info) = self.peers.get_mut(&peer) {
                info.exhausted = true;
            }
            if !full {
                // The peer's chain ends at a block we know: its last header, or (nothing
                // sent) the first hash of our locator, by the protocol.
                let shown = match headers.last() {
                    None => Some(asked.asked_from),
                    Some(last) => match self.download.entry(&last.hash()) {
                        Some(entry) => Some(entry.chain_work),
                        None => chain.entry(&last.hash())?.map(|e| e.chain_work),
                    },
                };
                if let Some(shown) = shown {
                    self.check_claimed_work(&peer, asked.claimed, shown, now_ms, out);
                }
            }
            return Ok(());
        };
        let parent = match self.download.last() {
            Some(last) if last.hash == first.prev_hash => last.entry.clone(),
            _ => match chain.entry(&first.prev_hash)? {
                Some(parent) if parent.status == BlockStatus::Valid => parent,
                _ if asked.locator.contains(&first.prev_hash) => {
                    // It extends a hash we named, as asked: what we knew then (the
                    // download queue's end) was dropped before the answer came. Ask again
                    // from what we know now.
                    if let Some(info) = self.peers.get_mut(&peer) {
                        info.exhausted = false;
                    }
                    return Ok(());
                }
                _ => {
                    self.penalize(
                        &peer,
                        Misbehavior::ProtocolViolation,
                        now_ms,
                        "headers that extend nothing we know".into(),
                        out,
                    );
                    return Ok(());
                }
            },
        };
        let checked = match check_header_chain(
            chain.store(),
            &self.download,
            parent,
            new,
            chain.spec(),
            now_ms / 1000,
        )? {
            Ok(checked) => checked,
            Err(invalid) => {
                self.penalize(
                    &peer,
                    Misbehavior::InvalidBlock,
                    now_ms,
                    format!("header {} breaks a rule: {}", invalid.hash, invalid.error),
                    out,
                );
                if self.download.source() == Some(&peer) {
                    self.download.reset();
                }
                return Ok(());
            }
        };
        let held = checked.held_at.is_some();
        self.download.queue(peer.clone(), checked.wanted);
        // A full answer without a header from the future: the peer has more to send.
        let more = full && !held;
        if let Some(info) = self.peers.get_mut(&peer) {
            info.exhausted = !more;
        }
        let Some(shown) = self.download.last().map(|w| w.entry.chain_work) else {
            return Ok(());
        };
        if !more && !held && !self.check_claimed_work(&peer, asked.claimed, shown, now_ms, out) {
            return Ok(());
        }
        let tip_work = chain.tip().chain_work;
        let too_long = self.download.len() >= self.config.max_queued_headers;
        if shown <= tip_work && (!more || too_long) {
            // The whole branch is here (or as much as we hold) and it is not heavier than
            // our tip: nothing to fetch, nothing was written.
            self.reset_download();
        }
        Ok(())
    }

    /// At the end of `peer`'s header chain, whose work is `shown`: a peer whose status
    /// claimed more work than its own headers add up to lied (it knows its chain). Returns
    /// whether the claim held.
    pub(super) fn check_claimed_work(
        &mut self,
        peer: &P,
        claimed: Option<Work>,
        shown: Work,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> bool {
        match claimed {
            Some(claimed) if claimed > shown => {
                if self.download.source() == Some(peer) {
                    self.download.reset();
                }
                if let Some(info) = self.peers.get_mut(peer) {
                    // Not useful until its next status.
                    info.status = None;
                }
                self.penalize(
                    peer,
                    Misbehavior::ProtocolViolation,
                    now_ms,
                    "its status claimed more chain work than its headers show".into(),
                    out,
                );
                false
            }
            _ => true,
        }
    }

    /// Hands downloaded blocks to the chain, in order, at most `connect_chunk` of them; asks
    /// for [`Event::Continue`] if more are ready.
    pub(super) fn connect_downloaded<S: ChainStore>(
        &mut self,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        if self.blocks_paused {
            return Ok(());
        }
        let chunk = self.config.connect_chunk.max(1);
        // More blocks than a chunk still to connect: the store may leave its indexes for
        // later (they catch up once sync is done).
        chain.set_catching_up(self.download.len() > chunk);
        let mut connected = 0;
        while let Some(front) = self.download.front() {
            if chain.entry(&front)?.is_some() {
                self.download.skip_front();
                continue;
            }
            if connected == chunk {
                if self.download.front_ready() {
                    out.push(Action::Continue);
                }
                break;
            }
            let Some((block, from)) = self.download.pop_ready() else {
                break;
            };
            connected += 1;
            let announcer = self.download.source().cloned();
            let blame = Blame::Sync {
                provider: &from,
                announcer: announcer.as_ref(),
            };
            if self
                .submit(block, blame, TipSource::Sync, true, chain, now_ms, out)?
                .is_err()
            {
                // Start over from fresh headers, after the source's next status (a block
                // from the future, say, will not be valid again before then).
                self.reset_download();
                break;
            }
        }
        chain.set_catching_up(self.download.len() > chunk);
        Ok(())
    }

    /// Sends the requests sync needs now.
    pub(super) fn schedule<S: ChainStore>(
        &mut self,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        let our_work = chain.tip().chain_work;
        // Headers: from the peer with the most work beyond what we have or queued. While the
        // queued branch is not yet heavier than our tip, more of its headers are needed
        // before any block is fetched (up to `max_queued_headers`).
        let queued_work = self
            .download
            .last()
            .map_or(our_work, |w| w.entry.chain_work);
        let heavier = queued_work > our_work;
        let low_queue = self.download.len() < self.config.download_window
            || (!heavier && self.download.len() < self.config.max_queued_headers)
            || self.snapshot_wants_headers();
        if self.headers_request.is_none() && low_queue {
            let best = self
                .peers
                .iter()
                .filter(|(_, info)| !info.exhausted)
                .filter_map(|(p, info)| info.status.as_ref().map(|s| (p, s.chain_work)))
                .filter(|(_, work)| *work > queued_work)
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
                .map(|(p, _)| p.clone());
            if let Some(peer) = best {
                self.ask_headers(&peer, chain, now_ms, out)?;
            }
        }
        if self.download.is_empty() {
            self.block_stall_ms = self.config.block_stall_ms;
            // Idle: the blocks below a snapshot, if any are missing.
            return self.schedule_backfill(chain, now_ms, out);
        }
        let source_done = self
            .download
            .source()
            .is_none_or(|s| self.peers.get(s).is_none_or(|info| info.exhausted));
        if !heavier && self.headers_request.is_none() && source_done {
            // The queue fell behind our tip (we moved on by other means) and its source has
            // nothing more: it will never be worth fetching.
            self.download.reset();
            return Ok(());
        }
        if !heavier || self.blocks_paused {
            // Headers first: no block of a branch that does not beat our tip (nor while
            // blocks are paused).
            return Ok(());
        }
        if self.schedule_snapshot(chain, now_ms, out)? {
            // Every header, then the state, before any block.
            return Ok(());
        }
        // Blocks: round-robin over the peers that may have them.
        let useful: Vec<P> = self
            .peers
            .iter()
            .filter(|(p, info)| {
                Some(*p) == self.download.source()
                    || info
                        .status
                        .as_ref()
                        .is_some_and(|s| s.chain_work > our_work)
            })
            .map(|(p, _)| p.clone())
            .collect();
        if useful.is_empty() {
            if self
                .download
                .source()
                .is_none_or(|s| !self.peers.contains_key(s))
            {
                // Nobody left to ask: forget the branch; a later peer announces it anew.
                self.download.reset();
            }
            return Ok(());
        }
        if self.download.is_stuck(useful.iter()) {
            // Blame the source only if it answered without a block its headers announced;
            // a request that failed may have been lost on the way.
            let source = self.download.source().cloned();
            if let Some(source) = source.filter(|s| self.download.front_omitted_by(s)) {
                self.penalize(
                    &source,
                    Misbehavior::ProtocolViolation,
                    now_ms,
                    "announced blocks no one delivers".into(),
                    out,
                );
            }
            self.reset_download();
            return Ok(());
        }
        self.rotation = self.rotation.wrapping_add(1);
        let start = (self.rotation as usize) % useful.len();
        let mut progress = true;
        while progress {
            progress = false;
            for i in 0..useful.len() {
                let peer = &useful[(start + i) % useful.len()];
                let full = self.download.buffered_bytes() >= self.config.max_download_bytes;
                if full || !self.may_request(peer, now_ms) {
                    continue;
                }
                let id = self.next_id;
                let batch =
                    self.download
                        .next_batch(peer, id, self.config.download_window, MAX_BLOCKS);
                if batch.is_empty() {
                    continue;
                }
                self.send(
                    peer.clone(),
                    SyncRequest::GetBlocks {
                        hashes: batch.clone(),
                    },
                    Pending::Blocks(batch),
                    now_ms,
                    out,
                );
                progress = true;
            }
        }
        Ok(())
    }

    /// Drops the download queue; its source is not asked for headers again until its next
    /// status.
    pub(super) fn reset_download(&mut self) {
        if let Some(source) = self.download.source() {
            if let Some(info) = self.peers.get_mut(source) {
                info.exhausted = true;
            }
        }
        self.download.reset();
    }

    pub(super) fn ask_headers<S: ChainStore>(
        &mut self,
        peer: &P,
        chain: &ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        if !self.may_request(peer, now_ms) {
            return Ok(());
        }
        let mut locator = chain.locator()?;
        // An honest peer with nothing after our locator has its tip on it: no more work
        // than the heaviest of its entries (the queue's end, or our best chain).
        let asked_from = self.download.last().map_or(chain.tip().chain_work, |last| {
            last.entry.chain_work.max(chain.tip().chain_work)
        });
        if let Some(last) = self.download.last() {
            // Continue after the queue: its end first, then our chain (minus the tip only
            // where that is needed to stay within the limit: genesis must stay, or a peer
            // on another branch shares no block with the locator).
            if locator.len() < MAX_LOCATOR_HASHES {
                locator.insert(0, last.hash);
            } else {
                locator[0] = last.hash;
            }
        }
        let claimed = self
            .peers
            .get(peer)
            .and_then(|info| info.status.as_ref())
            .map(|status| status.chain_work);
        let id = self.send(
            peer.clone(),
            SyncRequest::GetHeaders {
                locator: locator.clone(),
                max: MAX_HEADERS as u32,
            },
            Pending::Headers(HeadersAsked {
                claimed,
                asked_from,
                locator,
            }),
            now_ms,
            out,
        );
        self.headers_request = Some(id);
        Ok(())
    }

    /// Marks `peer` as having blocks we lack and asks its headers, unless headers are
    /// already on their way from someone.
    pub(super) fn wake_headers<S: ChainStore>(
        &mut self,
        peer: &P,
        chain: &ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        if let Some(info) = self.peers.get_mut(peer) {
            info.exhausted = false;
        }
        if self.headers_request.is_none() {
            self.ask_headers(peer, chain, now_ms, out)?;
        }
        Ok(())
    }

    pub(super) fn ask_status<S: ChainStore>(
        &mut self,
        peer: &P,
        chain: &ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) {
        if let Some(info) = self.peers.get_mut(peer) {
            info.status_asked_ms = now_ms;
        }
        self.send(
            peer.clone(),
            SyncRequest::Status(Self::status(chain)),
            Pending::Status,
            now_ms,
            out,
        );
    }

    /// Whether `peer` has a free request slot and budget (charging the budget if so).
    pub(super) fn may_request(&mut self, peer: &P, now_ms: u64) -> bool {
        let per_sec = self.config.outbound_requests_per_sec;
        let max_in_flight = self.config.max_requests_per_peer;
        let Some(info) = self.peers.get_mut(peer) else {
            return false;
        };
        if info.requests_in_flight >= max_in_flight {
            return false;
        }
        info.budget.take(now_ms, u64::from(per_sec) * 1000, per_sec)
    }

    pub(super) fn send(
        &mut self,
        peer: P,
        request: SyncRequest,
        pending: Pending,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        if let Some(info) = self.peers.get_mut(&peer) {
            info.requests_in_flight += 1;
        }
        self.requests.insert(
            id,
            Outstanding {
                peer: peer.clone(),
                sent_ms: now_ms,
                deadline_ms: now_ms.saturating_add(self.config.request_timeout_ms),
                pending,
            },
        );
        out.push(Action::Request { peer, id, request });
        id
    }

    /// A request that failed or timed out: its blocks go back to the queue. A relay
    /// request is returned, for its compact block's next step.
    pub(super) fn give_back(
        &mut self,
        id: u64,
        request: Outstanding<P>,
    ) -> Option<relay::RelayRequest> {
        if let Some(info) = self.peers.get_mut(&request.peer) {
            info.requests_in_flight = info.requests_in_flight.saturating_sub(1);
        }
        match request.pending {
            Pending::Blocks(hashes) => self.download.unassign(&request.peer, id, &hashes),
            Pending::Headers(_) => {
                self.headers_request = None;
                if let Some(info) = self.peers.get_mut(&request.peer) {
                    info.exhausted = true;
                }
            }
            Pending::Status => {}
            Pending::StatePages => self.state_pages_failed(&request.peer, id),
            Pending::OldBlocks => self.old_blocks_failed(&request.peer, id),
            Pending::Relay(relay) => return Some(relay),
        }
        None
    }
}
