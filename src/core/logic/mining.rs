//! The miner's templates: when one is due (the tip moved, transfers came in, or it grew
//! old), and what goes in it (the pool's best transfers on the tip, once their journal
//! records are durable).
//!
//! # Invariants
//! - A template is built only on the chain's tip, only while mining is on and the store
//!   writes; otherwise the miner is paused.
//! - No template holds a transfer whose journal record is not yet durable.
use super::{LogicConfig, NodeLogic, Output};
use crate::core::chain::manager::{ChainManager, ChainStore};
use crate::core::miner::template_on;
use crate::core::primitives::Block;

/// When the last template was built and what has changed since.
#[derive(Clone, Copy, Debug)]
pub(super) struct TemplateClock {
    /// When the last template was built.
    built_ms: u64,
    /// The tip moved since.
    pub(super) stale: bool,
    /// Transfers came into the pool since.
    pub(super) lacks_transfers: bool,
    /// A [`Output::SyncJournal`] is out; the template is built on its answer.
    awaiting_sync: bool,
}

impl TemplateClock {
    /// A clock whose first template is due at once.
    pub(super) fn due_now(now_ms: u64) -> TemplateClock {
        TemplateClock {
            built_ms: now_ms,
            stale: true,
            lacks_transfers: false,
            awaiting_sync: false,
        }
    }

    /// Whether a new template is due at `now_ms`.
    pub(super) fn is_due(&self, config: &LogicConfig, now_ms: u64) -> bool {
        if self.awaiting_sync {
            return false;
        }
        let age = now_ms.saturating_sub(self.built_ms);
        (self.stale && age >= config.template_coalesce_ms)
            || (self.lacks_transfers && age >= config.template_transfers_coalesce_ms)
            || age >= config.template_refresh_ms
    }
}

impl<P: Ord + Clone + std::fmt::Debug> NodeLogic<P> {
    /// Gives the miner a template on the tip with the pool's best transfers, after their
    /// journal records are durable; or pauses it while mining is off or the store cannot
    /// write.
    pub(super) fn publish_template<S: ChainStore>(
        &mut self,
        chain: &ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Output<P>>,
    ) {
        self.template.stale = false;
        self.template.lacks_transfers = false;
        self.template.built_ms = now_ms;
        if self.mining.is_none() {
            return;
        }
        if !self.mining_on || self.unwritable.is_some() {
            self.template.awaiting_sync = false;
            out.push(Output::PauseMining);
            return;
        }
        if std::mem::take(&mut self.journal_unsynced) {
            self.template.awaiting_sync = true;
            out.push(Output::SyncJournal);
            return;
        }
        self.build_template(chain, now_ms, out);
    }

    /// The journal is durable up to what was appended when [`Output::SyncJournal`] went
    /// out, unless more was appended since (then it is asked again).
    pub(super) fn on_journal_synced<S: ChainStore>(
        &mut self,
        chain: &ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Output<P>>,
    ) {
        if !std::mem::take(&mut self.template.awaiting_sync) {
            return;
        }
        self.publish_template(chain, now_ms, out);
    }

    fn build_template<S: ChainStore>(
        &mut self,
        chain: &ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Output<P>>,
    ) {
        let Some(mining) = &mut self.mining else {
            return;
        };
        mining.extra_nonce = mining.extra_nonce.wrapping_add(1);
        let (reward_address, extra_nonce) = (mining.reward_address, mining.extra_nonce);
        let spec = chain.spec();
        let budget = spec
            .max_block_bytes()
            .saturating_sub(Block::empty_encoded_size());
        let transfers = self
            .pool_read()
            .select(chain.store(), budget, spec.max_block_transfers())
            .unwrap_or_else(|e| {
                out.push(Output::TemplateFailed(format!(
                    "cannot select transfers: {e}"
                )));
                Vec::new()
            });
        let now = now_ms / 1000;
        let with_transfers = !transfers.is_empty();
        let mut result = template_on(chain, reward_address, now, extra_nonce, transfers);
        if with_transfers {
            if let Err(e) = &result {
                // The pool only offers transfers valid on the tip; if that ever fails,
                // mining goes on with an empty block rather than stopping.
                out.push(Output::TemplateFailed(format!(
                    "template with the pool's transfers failed ({e}); mining an empty block"
                )));
                result = template_on(chain, reward_address, now, extra_nonce, Vec::new());
            }
        }
        match result {
            Ok(template) => out.push(Output::Mine(template)),
            Err(e) => out.push(Output::TemplateFailed(format!(
                "cannot build a block template: {e}"
            ))),
        }
    }
}
