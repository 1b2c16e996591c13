//! The node's Prometheus metrics: one registry, the counters and gauges the driver, the API
//! and the miner update, and the text encoding served at `/metrics`.
//!
//! Counters carry the `_total` suffix in the output (the OpenMetrics convention the
//! `prometheus-client` crate applies); every name starts with `cairn_`.
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// The node's metrics. Cheap to update from any thread.
pub struct Metrics {
    registry: Registry,
    /// Height of the best chain's tip.
    pub chain_height: Gauge,
    /// Height up to which transfers and address histories are indexed.
    pub index_height: Gauge,
    /// log2 of the tip's cumulative work.
    pub chain_work_log2: Gauge<f64, AtomicU64>,
    /// Blocks connected to the best chain.
    pub blocks_connected: Counter,
    /// Branch switches.
    pub reorgs: Counter,
    /// Transfers in the mempool.
    pub mempool_transfers: Gauge,
    /// Encoded bytes in the mempool.
    pub mempool_bytes: Gauge,
    /// Transfers the mempool admitted (API and gossip).
    pub mempool_admitted: Counter,
    /// Transfers the mempool refused, by reason code.
    pub mempool_rejected: Family<Vec<(String, String)>, Counter>,
    /// Connected peers.
    pub peers: Gauge,
    /// Bytes read from peers (TCP payload: noise and yamux framing included).
    pub p2p_received_bytes: Counter,
    /// Bytes written to peers.
    pub p2p_sent_bytes: Counter,
    /// Hashes the miner tried.
    pub miner_hashes: Counter,
    /// Blocks this node mined that extended the best chain.
    pub blocks_mined: Counter,
    /// HTTP requests served.
    pub http_requests: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("cairn");
        let metrics = Metrics {
            chain_height: Gauge::default(),
            chain_work_log2: Gauge::default(),
            index_height: Gauge::default(),
            blocks_connected: Counter::default(),
            reorgs: Counter::default(),
            mempool_transfers: Gauge::default(),
            mempool_bytes: Gauge::default(),
            mempool_admitted: Counter::default(),
            mempool_rejected: Family::default(),
            peers: Gauge::default(),
            p2p_received_bytes: Counter::default(),
            p2p_sent_bytes: Counter::default(),
            miner_hashes: Counter::default(),
            blocks_mined: Counter::default(),
            http_requests: Counter::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "chain_height",
            "Height of the best chain's tip",
            metrics.chain_height.clone(),
        );
        r.register(
            "index_height",
            "Height up to which transfers and address histories are indexed (below the tip while the index catches up after sync)",
            metrics.index_height.clone(),
        );
        r.register(
            "chain_work_log2",
            "log2 of the tip's cumulative work",
            metrics.chain_work_log2.clone(),
        );
        r.register(
            "blocks_connected",
            "Blocks connected to the best chain",
            metrics.blocks_connected.clone(),
        );
        r.register(
            "reorgs",
            "Switches of the best chain to another branch",
            metrics.reorgs.clone(),
        );
        r.register(
            "mempool_transfers",
            "Transfers in the mempool",
            metrics.mempool_transfers.clone(),
        );
        r.register(
            "mempool_bytes",
            "Encoded bytes of the transfers in the mempool",
            metrics.mempool_bytes.clone(),
        );
        r.register(
            "mempool_admitted",
            "Transfers admitted to the mempool",
            metrics.mempool_admitted.clone(),
        );
        r.register(
            "mempool_rejected",
            "Transfers refused by the mempool, by reason",
            metrics.mempool_rejected.clone(),
        );
        r.register("peers", "Connected peers", metrics.peers.clone());
        r.register(
            "p2p_received_bytes",
            "Bytes read from peers, framing and encryption included",
            metrics.p2p_received_bytes.clone(),
        );
        r.register(
            "p2p_sent_bytes",
            "Bytes written to peers, framing and encryption included",
            metrics.p2p_sent_bytes.clone(),
        );
        r.register(
            "miner_hashes",
            "Proof-of-work attempts made by this node",
            metrics.miner_hashes.clone(),
        );
        r.register(
            "blocks_mined",
            "Blocks mined here that extended the best chain",
            metrics.blocks_mined.clone(),
        );
        r.register(
            "http_requests",
            "HTTP API requests served",
            metrics.http_requests.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// Counts a refusal with `reason` (an API error code such as `fee_too_low`).
    pub fn rejected(&self, reason: &str) {
        self.mempool_rejected
            .get_or_create(&vec![("reason".to_string(), reason.to_string())])
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_prefixed_names_and_labels() {
        let metrics = Metrics::new();
        metrics.chain_height.set(42);
        metrics.blocks_connected.inc_by(3);
        metrics.rejected("fee_too_low");
        let text = metrics.encode();
        assert!(text.contains("cairn_chain_height 42"), "{text}");
        assert!(text.contains("cairn_blocks_connected_total 3"), "{text}");
        assert!(
            text.contains("cairn_mempool_rejected_total{reason=\"fee_too_low\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
