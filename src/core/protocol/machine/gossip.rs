//! Gossiped blocks and transfers: verdicts for gossipsub, the orphan pool, and blame.
//!
//! # Invariants
//! - A block is answered `Accept` only if it is on the best chain after it was submitted.
//! - An orphan is held only if its own work is near what the tip's child needs.
//! - A transfer is rejected (and its relayer penalised) only for a fault its relayer could
//!   have checked itself.
use super::*;

impl<P: Ord + Clone + std::fmt::Debug> Protocol<P> {
    pub(super) fn on_gossip_block<S: ChainStore>(
        &mut self,
        peer: P,
        block: Block,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        let hash = block.hash();
        let verdict = |verdict| block_verdict(hash, &peer, verdict);
        if !self.is_new_with_work(&peer, &block.header, chain, now_ms, out)? {
            return Ok(());
        }
        if chain.entry(&block.header.prev_hash)?.is_none() {
            out.push(verdict(Verdict::Ignore));
            if !self.orphan_has_enough_work(&block.header, chain)? {
                // Far easier than anything near our tip: a cheap header, or a branch with
                // much less hash power. Not held, not asked about; a flood costs a connection.
                self.note_junk(&peer, now_ms, out);
                return Ok(());
            }
            if let OrphanInsert::Added { .. } =
                self.orphans.insert(block, peer.clone(), now_ms / 1000)
            {
                // The peer has blocks we lack: fetch its headers (if no one else is).
                self.wake_headers(&peer, chain, now_ms, out)?;
            }
            return Ok(());
        }
        match self.submit(
            block,
            Blame::Relayer(&peer),
            TipSource::Gossip,
            true,
            chain,
            now_ms,
            out,
        )? {
            // On the best chain now: vouched for, so forwarded.
            Ok(BlockOutcome::Extended { .. } | BlockOutcome::Reorganized { .. }) => {
                out.push(verdict(Verdict::Accept))
            }
            Ok(BlockOutcome::LowWork) => {
                out.push(verdict(Verdict::Ignore));
                self.note_junk(&peer, now_ms, out);
            }
            // A side branch (stored, not validated against state) or a duplicate: not
            // forwarded, no fault.
            Ok(BlockOutcome::SideBranch | BlockOutcome::AlreadyKnown) => {
                out.push(verdict(Verdict::Ignore))
            }
            Err(e) if e.is_permanent() => out.push(verdict(Verdict::Reject)),
            Err(_) => out.push(verdict(Verdict::Ignore)),
        }
        Ok(())
    }

    /// The first checks of a gossiped block, whole or compact: `false` (with its verdict
    /// given) if it is known already (ignored) or its proof of work fails (rejected, the
    /// relayer penalised).
    pub(super) fn is_new_with_work<S: ChainStore>(
        &mut self,
        peer: &P,
        header: &Header,
        chain: &ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<bool, ChainError> {
        let hash = header.hash();
        if chain.entry(&hash)?.is_some() || self.orphans.contains(&hash) {
            out.push(block_verdict(hash, peer, Verdict::Ignore));
            return Ok(false);
        }
        if let Err(e) = check_proof_of_work(header) {
            out.push(block_verdict(hash, peer, Verdict::Reject));
            self.penalize(peer, Misbehavior::InvalidBlock, now_ms, e.to_string(), out);
            return Ok(false);
        }
        Ok(true)
    }

    /// Whether an orphan's own proof of work (its `header`'s) is near what the tip's child
    /// needs: its target at most `orphan_max_easier` times the tip's next target. An honest
    /// orphan is a block a little ahead of our tip; ASERT moves the target by a bounded
    /// factor per block.
    pub(super) fn orphan_has_enough_work<S: ChainStore>(
        &self,
        header: &Header,
        chain: &ChainManager<S>,
    ) -> Result<bool, ChainError> {
        let next = child_context(chain.store(), chain.tip(), chain.spec())?.expected_bits;
        let (Ok(ours), Ok(theirs)) = (
            Target::from_compact(next),
            Target::from_compact(header.bits),
        ) else {
            return Ok(false);
        };
        let allowance = ours
            .as_u256()
            .saturating_mul(ruint::aliases::U256::from(self.config.orphan_max_easier));
        Ok(theirs.as_u256() <= allowance)
    }

    /// Counts a useless unsolicited block from `peer`; past its allowance the peer is
    /// disconnected. No score: an honest node on a weaker branch sends such blocks too.
    pub(super) fn note_junk(&mut self, peer: &P, now_ms: u64, out: &mut Vec<Action<P>>) {
        let burst = self.config.junk_burst;
        // One token every `junk_refill_ms`: 10^6 / refill_ms thousandths a second.
        let per_sec_milli = 1_000_000 / self.config.junk_refill_ms.max(1);
        let Some(info) = self.peers.get_mut(peer) else {
            return;
        };
        if !info.junk.take(now_ms, per_sec_milli, burst) {
            out.push(Action::Disconnect(peer.clone()));
            self.drop_peer(peer);
        }
    }

    pub(super) fn on_gossip_transfer(
        &mut self,
        peer: P,
        txid: Txid,
        admission: Result<(), MempoolError>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) {
        let verdict = match &admission {
            Ok(()) => Verdict::Accept,
            // What no honest node relays: the relayer could have checked it.
            Err(e) if e.is_peer_fault() => Verdict::Reject,
            // Races (a nonce just used, a balance just spent), duplicates and policy (fee
            // floor, full pool) are nobody's fault: not forwarded, not punished.
            Err(_) => Verdict::Ignore,
        };
        out.push(Action::TransferVerdict {
            txid,
            source: peer.clone(),
            verdict,
        });
        if let (Verdict::Reject, Err(e)) = (verdict, admission) {
            self.penalize(
                &peer,
                Misbehavior::InvalidTransfer,
                now_ms,
                format!("relayed invalid transfer {txid}: {e}"),
                out,
            );
        }
    }

    /// Submits a block; reports a new tip, connects waiting orphans (unless `orphans` is
    /// false: the caller is already connecting them), penalizes whoever `blame` names for an
    /// invalid block. A relayed block is unsolicited (a low-work side branch is not stored);
    /// a mined or synced one is stored on any branch. Returns the block's own result.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn submit<S: ChainStore>(
        &mut self,
        block: Block,
        blame: Blame<'_, P>,
        source: TipSource,
        orphans: bool,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<Result<BlockOutcome, BlockError>, ChainError> {
        let hash = block.hash();
        let now = now_ms / 1000;
        let result = match blame {
            Blame::Relayer(_) => chain.submit_unsolicited_block(block, now),
            Blame::Nobody | Blame::Sync { .. } => chain.submit_block(block, now),
        };
        match result {
            Ok(outcome) => {
                let stored = !matches!(outcome, BlockOutcome::AlreadyKnown | BlockOutcome::LowWork);
                tip_changed(outcome.clone(), source, out);
                if stored && orphans {
                    self.connect_orphans(hash, chain, now_ms, out)?;
                }
                Ok(Ok(outcome))
            }
            Err(SubmitError::Chain(e)) => Err(e),
            Err(SubmitError::Invalid {
                hash: failed,
                error,
            }) => {
                let reason = format!("invalid block {failed}: {error}");
                for peer in blamed(blame, &error) {
                    self.penalize(
                        &peer,
                        Misbehavior::InvalidBlock,
                        now_ms,
                        reason.clone(),
                        out,
                    );
                }
                Ok(Err(error))
            }
        }
    }

    /// Connects the orphans waiting for `parent` (and theirs, and so on).
    pub(super) fn connect_orphans<S: ChainStore>(
        &mut self,
        parent: BlockHash,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        let mut parents = vec![parent];
        while let Some(parent) = parents.pop() {
            for (child, from) in self.orphans.take_children(&parent) {
                let hash = child.hash();
                let result = self.submit(
                    child,
                    Blame::Relayer(&from),
                    TipSource::Gossip,
                    false,
                    chain,
                    now_ms,
                    out,
                )?;
                if matches!(
                    result,
                    Ok(outcome) if !matches!(outcome, BlockOutcome::AlreadyKnown | BlockOutcome::LowWork)
                ) {
                    parents.push(hash);
                }
            }
        }
        Ok(())
    }
}
