//! The threads a node starts, named, and logging where the code that launched the node
//! logs. A process has one global `tracing` subscriber; a test or tool that runs several
//! nodes in one process launches each under its own
//! (`tracing::dispatcher::with_default(&dispatch, || launch(config))`), and every thread of
//! that node — driver, miners, journal, async workers — carries that subscriber on.
//!
//! # Invariants
//! - A thread started here logs to the subscriber that was the default where it was started.
use std::cell::RefCell;
use std::thread::JoinHandle;
use tracing::dispatcher::{self, DefaultGuard, Dispatch};

/// Starts a thread named `name` that runs `body` under the caller's default subscriber.
pub fn spawn<T, F>(name: impl Into<String>, body: F) -> std::io::Result<JoinHandle<T>>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let dispatch = dispatcher::get_default(Dispatch::clone);
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || dispatcher::with_default(&dispatch, body))
}

thread_local! {
    /// The subscriber a runtime worker thread carries from its start to its stop.
    static RUNTIME_THREAD_DISPATCH: RefCell<Option<DefaultGuard>> = const { RefCell::new(None) };
}

/// Makes the threads of the runtime `builder` builds log under the caller's default
/// subscriber.
pub fn carry_dispatch(builder: &mut tokio::runtime::Builder) -> &mut tokio::runtime::Builder {
    let dispatch = dispatcher::get_default(Dispatch::clone);
    builder
        .on_thread_start(move || {
            let guard = dispatcher::set_default(&dispatch);
            RUNTIME_THREAD_DISPATCH.with(|slot| *slot.borrow_mut() = Some(guard));
        })
        .on_thread_stop(|| {
            RUNTIME_THREAD_DISPATCH.with(|slot| slot.borrow_mut().take());
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tracing::subscriber::Interest;
    use tracing::{Event, Metadata};

    /// Counts the events it sees.
    struct Counting(Arc<AtomicUsize>);

    impl tracing::Subscriber for Counting {
        fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
            Interest::sometimes()
        }
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, _: &Event<'_>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[test]
    fn threads_and_runtime_workers_log_to_the_launching_subscriber() {
        let seen = Arc::new(AtomicUsize::new(0));
        let dispatch = Dispatch::new(Counting(Arc::clone(&seen)));
        let runtime = dispatcher::with_default(&dispatch, || {
            let thread = spawn("logs", || tracing::info!("from a thread")).expect("a thread");
            thread.join().expect("the thread ends");
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            carry_dispatch(builder.worker_threads(1).enable_all())
                .build()
                .expect("a runtime")
        });
        assert_eq!(seen.load(Ordering::SeqCst), 1, "the spawned thread's event");
        runtime
            .block_on(runtime.spawn(async { tracing::info!("from a worker") }))
            .expect("the task ends");
        assert_eq!(seen.load(Ordering::SeqCst), 2, "the worker's event");
        // Outside both, this thread's events go elsewhere.
        tracing::info!("from the test thread");
        assert_eq!(seen.load(Ordering::SeqCst), 2);
    }
}
