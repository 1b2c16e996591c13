//! What the node tells live listeners (the API's server-sent event stream, the explorer):
//! new tips and newly admitted transfers, as JSON-ready views on a broadcast channel.
//!
//! The driver sends; every subscriber gets its own receiver. A subscriber that falls more
//! than [`EVENT_BUFFER`] events behind skips the oldest ones (it is told how many), so a slow
//! client never slows the node.
use crate::core::views::{MempoolTransferView, NewBlockView};
use tokio::sync::broadcast;

/// Events held for a slow subscriber before it starts to miss some.
pub const EVENT_BUFFER: usize = 1024;

/// One event for live listeners.
#[derive(Clone, Debug)]
pub enum NodeEvent {
    /// The best chain has a new tip.
    Block(NewBlockView),
    /// The mempool admitted a transfer.
    Transfer(MempoolTransferView),
}

impl NodeEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            NodeEvent::Block(_) => "block",
            NodeEvent::Transfer(_) => "transfer",
        }
    }

    /// The event's data as JSON.
    pub fn to_json(&self) -> String {
        let json = match self {
            NodeEvent::Block(view) => serde_json::to_string(view),
            NodeEvent::Transfer(view) => serde_json::to_string(view),
        };
        json.expect("views serialize to JSON")
    }
}

/// The sending side, cloned by whoever publishes.
#[derive(Clone, Debug)]
pub struct EventBus {
    sender: broadcast::Sender<NodeEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            sender: broadcast::channel(EVENT_BUFFER).0,
        }
    }
}

impl EventBus {
    /// Sends `event` to every current subscriber (none is fine).
    pub fn publish(&self, event: NodeEvent) {
        let _ = self.sender.send(event);
    }

    /// A new subscriber, seeing events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.sender.subscribe()
    }
}
