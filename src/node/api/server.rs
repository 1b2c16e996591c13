//! The HTTP server under the API and the explorer: accepts TCP connections within a budget,
//! serves HTTP/1.1 on each with time limits, reads request bodies within a deadline, and
//! serves only requests whose `Host` names this node. Owns the listening sockets and the
//! connections; what a request means is the routers' business.
//!
//! ```text
//!   TcpListener ─accept─► connection task: ConnectionBudget::admit ──► hyper http1
//!                          (at the cap: evict the oldest    (header read timeout, also
//!                           connection that is waiting       between keep-alive requests)
//!                           for a request, wait for its            │
//!                           slot in this task)                     ▼
//!                              check_host ─► read_body_in_time ─► the router
//! ```
//!
//! Why: without these a client that opens connections and never finishes a request holds a
//! file descriptor each, forever, and under the common 1,024 open-file limit starves the
//! API and the libp2p listener alike. [`HttpLimits::for_open_files`] keeps the API's share
//! well below the process's limit, which [`raise_open_file_limit`] first raises to the hard
//! limit.
//!
//! # Invariants
//! - At most `max_connections` connections are open across every listener of one
//!   [`HttpServer`] (one semaphore permit each, returned when its task ends), plus those
//!   just accepted while older ones are evicted for them (one each: a new connection that
//!   finds nothing to evict is closed at once).
//! - Only a connection waiting for a request head is evicted: never one whose request is
//!   being answered, nor an event stream (`text/event-stream`), which is long-lived by design
//!   and exempt from the header timeout because hyper runs it only while reading a head.
use super::{ApiError, MAX_BODY_BYTES};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::StreamExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};

/// Most API connections at once, whatever the open-file limit.
pub const MAX_CONNECTIONS: usize = 512;
/// The longest a client may take to send a request head, and the longest a keep-alive
/// connection may sit between two requests.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a client may take to send a request body (at most [`MAX_BODY_BYTES`]).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections get to finish at shutdown before they are dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// How long a new connection waits for the slot of the connection evicted for it.
const EVICTION_WAIT: Duration = Duration::from_secs(1);
/// A body declared over [`MAX_BODY_BYTES`] but at most this long is read and dropped
/// (within [`BODY_TIMEOUT`]) before the `413` answer, so that the client, still writing, gets
/// the answer rather than a reset connection; a longer one is refused at once.
const DRAIN_BODY_BYTES: u64 = 1024 * 1024;
/// Pause after a failed `accept` (e.g. out of file descriptors) before the next.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(250);

/// The time limits and the connection cap of the HTTP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Most open connections across the server's listeners.
    pub max_connections: usize,
    /// See [`HEADER_TIMEOUT`].
    pub header_timeout: Duration,
    /// See [`BODY_TIMEOUT`].
    pub body_timeout: Duration,
}

impl HttpLimits {
    /// The limits for a process allowed `open_files` file descriptors: at most a quarter of
    /// them (and [`MAX_CONNECTIONS`]) for API connections, so that the libp2p listener, the
    /// store and the peers keep the rest.
    pub fn for_open_files(open_files: u64) -> HttpLimits {
        let quarter = usize::try_from(open_files / 4).unwrap_or(usize::MAX);
        HttpLimits {
            max_connections: quarter.clamp(8, MAX_CONNECTIONS),
            header_timeout: HEADER_TIMEOUT,
            body_timeout: BODY_TIMEOUT,
        }
    }
}

/// The open-file limit before and after [`raise_open_file_limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFileLimit {
    /// The soft limit the process started with.
    pub before: u64,
    /// The soft limit now.
    pub now: u64,
    /// The hard limit (the most `now` can be).
    pub hard: u64,
}

/// Raises this process's soft limit on open files (`RLIMIT_NOFILE`) to its hard limit: the
/// common soft default of 1,024 is too few for a node with peers and API clients.
#[cfg(unix)]
pub fn raise_open_file_limit() -> std::io::Result<OpenFileLimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = limit.rlim_cur;
    // An unlimited hard limit is not a valid soft limit for open files (Linux caps it at
    // fs.nr_open, macOS at OPEN_MAX); 2^20 is within both defaults.
    let wanted = if limit.rlim_max == libc::RLIM_INFINITY {
        1 << 20
    } else {
        limit.rlim_max
    };
    if wanted > before {
        limit.rlim_cur = wanted;
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    // rlim_t is u64 on Linux and macOS but i64 on some BSDs.
    #[allow(clippy::useless_conversion)]
    let as_u64 = |value: libc::rlim_t| u64::try_from(value).unwrap_or(u64::MAX);
    Ok(OpenFileLimit {
        before: as_u64(before),
        now: as_u64(limit.rlim_cur.max(before)),
        hard: as_u64(limit.rlim_max),
    })
}

/// The `Host` names the server answers to; a request naming another gets
/// `403 host_not_allowed`. Without it, a web page whose DNS name an attacker points at
/// 127.0.0.1 (DNS rebinding) could read the API and submit transfers from a browser on this
/// machine. Ports are not compared; names are compared without case or a trailing dot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostAllowlist {
    /// Normalised names: lowercase, IPv6 addresses in brackets.
    names: BTreeSet<String>,
}

/// The loopback names every node answers to.
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

impl HostAllowlist {
    /// The loopback names, the addresses the server is bound to (`--http`,
    /// `--explorer-addr`) and `extra` (`--allow-host`: a name or an address, with or without
    /// a port).
    pub fn new(
        bound: impl IntoIterator<Item = IpAddr>,
        extra: &[String],
    ) -> Result<HostAllowlist, String> {
        let mut names: BTreeSet<String> = LOOPBACK_HOSTS.iter().map(|s| s.to_string()).collect();
        names.extend(bound.into_iter().map(ip_host));
        for text in extra {
            let name = text
                .trim()
                .parse::<IpAddr>()
                .map(ip_host)
                .ok()
                .or_else(|| host_name(text.trim()))
                .filter(|name| !name.contains(['/', '@', ' ', '*']))
                .ok_or_else(|| {
                    format!("--allow-host {text:?} is not a host name or an IP address")
                })?;
            names.insert(name);
        }
        Ok(HostAllowlist { names })
    }

    /// Whether a request with this `Host` header value is served.
    pub fn allows(&self, host: &str) -> bool {
        host_name(host).is_some_and(|name| self.names.contains(&name))
    }

    /// The names, for the log.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }
}

/// An address as a `Host` header names it.
fn ip_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// The name of a `Host` value without its port, lowercase and without a trailing dot.
fn host_name(host: &str) -> Option<String> {
    let name = if host.starts_with('[') {
        &host[..=host.find(']')?]
    } else {
        host.split_once(':').map_or(host, |(name, _)| name)
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

/// What a connection is doing, for eviction.
const WAITING: u8 = 0;
const ANSWERING: u8 = 1;
const STREAMING: u8 = 2;
const EVICTED: u8 = 3;

/// One open connection as the budget sees it.
struct Slot {
    /// [`WAITING`], [`ANSWERING`], [`STREAMING`] or [`EVICTED`].
    phase: AtomicU8,
    /// When it last started waiting for a request, in ms since the budget's epoch.
    waiting_since_ms: AtomicU64,
    /// Woken to close the connection.
    evict: Notify,
}

/// The connection slots of one [`HttpServer`], shared by its listeners.
struct ConnectionBudget {
    permits: Arc<Semaphore>,
    slots: Mutex<HashMap<u64, Arc<Slot>>>,
    next_id: AtomicU64,
    epoch: Instant,
}

/// A connection's place in the budget: its permit, and its slot until it is dropped.
struct Admission {
    server: Arc<HttpServer>,
    id: u64,
    slot: Arc<Slot>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.server
            .budget
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

impl ConnectionBudget {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Tells the connection that has waited longest for a request to close; false if every
    /// connection is busy answering or streaming.
    fn evict_oldest_waiting(&self) -> bool {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let oldest = slots
            .values()
            .filter(|slot| slot.phase.load(Ordering::Acquire) == WAITING)
            .min_by_key(|slot| slot.waiting_since_ms.load(Ordering::Relaxed));
        let Some(slot) = oldest else {
            return false;
        };
        slot.phase.store(EVICTED, Ordering::Release);
        slot.evict.notify_one();
        true
    }
}

/// The server shared by the API's listeners: limits, the connection budget, the allowed
/// hosts.
pub struct HttpServer {
    limits: HttpLimits,
    hosts: HostAllowlist,
    budget: ConnectionBudget,
}

impl HttpServer {
    /// A server with these limits and hosts.
    pub fn new(limits: HttpLimits, hosts: HostAllowlist) -> Arc<HttpServer> {
        Arc::new(HttpServer {
            limits,
            hosts,
            budget: ConnectionBudget {
                permits: Arc::new(Semaphore::new(limits.max_connections)),
                slots: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(0),
                epoch: Instant::now(),
            },
        })
    }

    /// Its limits.
    pub fn limits(&self) -> HttpLimits {
        self.limits
    }

    /// Its allowed hosts.
    pub fn hosts(&self) -> &HostAllowlist {
        &self.hosts
    }

    /// A slot for a connection just accepted: a free one, or the one of the connection that
    /// has waited longest for a request, evicted; `None` if every connection is busy.
    async fn admit(self: &Arc<Self>) -> Option<Admission> {
        let budget = &self.budget;
        let permit = match Arc::clone(&budget.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if !budget.evict_oldest_waiting() {
                    return None;
                }
                let freed = Arc::clone(&budget.permits).acquire_owned();
                tokio::time::timeout(EVICTION_WAIT, freed)
                    .await
                    .ok()?
                    .ok()?
            }
        };
        let id = budget.next_id.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot {
            phase: AtomicU8::new(WAITING),
            waiting_since_ms: AtomicU64::new(budget.now_ms()),
            evict: Notify::new(),
        });
        budget
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Arc::clone(&slot));
        Some(Admission {
            server: Arc::clone(self),
            id,
            slot,
            _permit: permit,
        })
    }

    /// Serves `app` on `listener` until `shutdown` turns true, then gives open connections
    /// [`SHUTDOWN_GRACE`] to finish.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        app: Router,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let app = app
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&self),
                read_body_in_time,
            ))
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&self),
                check_host,
            ));
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout)
            .keep_alive(true);
        let mut connections = tokio::task::JoinSet::new();
        loop {
            while connections.try_join_next().is_some() {}
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        if !is_connection_error(&e) {
                            tracing::warn!("the HTTP server cannot accept a connection: {e}");
                            tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                        }
                        continue;
                    }
                },
                _ = stopped(&mut shutdown) => break,
            };
            // Admission may wait for the slot of a connection evicted for this one: it waits
            // in the connection's own task, so the accept loop goes on taking connections
            // (a flood of slow clients at the cap must not queue new ones behind each
            // eviction). Waiting tasks are bounded: each evicted a connection first.
            let server = Arc::clone(&self);
            let app = app.clone();
            let http = http.clone();
            let mut stop = shutdown.clone();
            connections.spawn(async move {
                let Some(admission) = server.admit().await else {
                    tracing::debug!("every HTTP connection is busy: closing a new one");
                    return;
                };
                let service = ConnectionService {
                    app: TowerToHyperService::new(app),
                    slot: Arc::clone(&admission.slot),
                    epoch: server.budget.epoch,
                };
                let connection = http.serve_connection(TokioIo::new(stream), service);
                tokio::pin!(connection);
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!("HTTP connection ended: {e}");
                        }
                    }
                    // Dropping the connection closes it.
                    _ = admission.slot.evict.notified() => {
                        tracing::debug!("HTTP connection evicted for a new one");
                    }
                    _ = stopped(&mut stop) => {
                        connection.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(SHUTDOWN_GRACE, connection).await;
                    }
                }
            });
        }
        while connections.join_next().await.is_some() {}
    }
}

/// Resolves once `shutdown` is true.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // Also when the sender is gone: nobody can stop the server any more.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Whether an `accept` error concerns only that connection (retry at once).
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// The router for one connection, marking its slot busy while a request is answered.
#[derive(Clone)]
struct ConnectionService {
    app: TowerToHyperService<Router>,
    slot: Arc<Slot>,
    epoch: Instant,
}

impl hyper::service::Service<axum::http::Request<Incoming>> for ConnectionService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, request: axum::http::Request<Incoming>) -> Self::Future {
        let slot = Arc::clone(&self.slot);
        let epoch = self.epoch;
        // An evicted connection stays evicted.
        let _ =
            slot.phase
                .compare_exchange(WAITING, ANSWERING, Ordering::AcqRel, Ordering::Acquire);
        let answer = hyper::service::Service::call(&self.app, request.map(Body::new));
        Box::pin(async move {
            let response = answer.await?;
            let streaming = response
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
            if streaming {
                let _ = slot.phase.compare_exchange(
                    ANSWERING,
                    STREAMING,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
            } else {
                let now = u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
                slot.waiting_since_ms.store(now, Ordering::Relaxed);
                let _ = slot.phase.compare_exchange(
                    ANSWERING,
                    WAITING,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
            }
            Ok(response)
        })
    }
}

/// Refuses a request whose `Host` is not allowed (`403 host_not_allowed`). A request
/// without one (not from a browser) is served.
async fn check_host(
    State(server): State<Arc<HttpServer>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request.headers().get(header::HOST).map(HeaderValue::to_str);
    match host {
        None => next.run(request).await,
        Some(Ok(host)) if server.hosts.allows(host) => next.run(request).await,
        Some(host) => {
            let host = host.unwrap_or("(not text)");
            closing(ApiError::host_not_allowed(host).into_response())
        }
    }
}

/// Reads the request body, at most [`MAX_BODY_BYTES`] within the body timeout, before the
/// router sees the request: `408 request_timeout` if it is too slow, `413 payload_too_large`
/// if it is too long.
async fn read_body_in_time(
    State(server): State<Arc<HttpServer>>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let chunked = request.headers().contains_key(header::TRANSFER_ENCODING);
    if declared.unwrap_or(0) == 0 && !chunked {
        return next.run(request).await;
    }
    let deadline = server.limits.body_timeout;
    if let Some(length) = declared.filter(|&length| length > MAX_BODY_BYTES as u64) {
        if length <= DRAIN_BODY_BYTES {
            let drain = read_body(request.into_body(), DRAIN_BODY_BYTES as usize);
            let _ = tokio::time::timeout(deadline, drain).await;
        }
        return closing(ApiError::payload_too_large().into_response());
    }
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(deadline, read_body(body, MAX_BODY_BYTES)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(BodyError::TooLong)) => closing(ApiError::payload_too_large().into_response()),
        Ok(Err(BodyError::Failed(e))) => closing(
            ApiError::malformed(format!("cannot read the request body: {e}")).into_response(),
        ),
        Err(_) => closing(ApiError::request_timeout(deadline).into_response()),
    }
}

/// Why a body could not be read.
enum BodyError {
    /// It is longer than the limit.
    TooLong,
    /// The connection failed.
    Failed(axum::Error),
}

/// All of `body`, if it is at most `limit` bytes.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(BodyError::Failed)?;
        if bytes.len() + chunk.len() > limit {
            return Err(BodyError::TooLong);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(bytes))
}

/// `response`, closing the connection after it (the request's body may be unread).
fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_compared_by_name_without_port_or_case() {
        let bound: IpAddr = "10.1.2.3".parse().expect("an address");
        let hosts = HostAllowlist::new(
            [bound],
            &["Node.Example".to_string(), "fe80::1".to_string()],
        )
        .expect("valid names");
        for host in [
            "localhost",
            "localhost:7371",
            "LOCALHOST.:1",
            "127.0.0.1:9",
            "[::1]",
            "[::1]:7371",
            "10.1.2.3:7371",
            "node.example",
            "node.example:80",
            "[fe80::1]:7371",
        ] {
            assert!(hosts.allows(host), "{host} is allowed");
        }
        for host in [
            "",
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "10.1.2.4",
            "[::2]:7371",
            "node.example.evil",
        ] {
            assert!(!hosts.allows(host), "{host:?} is refused");
        }
    }

    #[test]
    fn allow_host_takes_names_and_addresses_with_or_without_port() {
        let hosts = HostAllowlist::new([], &["a.example:8080".to_string(), "[::2]:1".to_string()])
            .expect("valid names");
        assert!(hosts.allows("a.example"));
        assert!(hosts.allows("[::2]"));
        for bad in ["", "a/b", "user@host", "*"] {
            assert!(
                HostAllowlist::new([], &[bad.to_string()]).is_err(),
                "{bad:?} is refused"
            );
        }
    }

    #[test]
    fn the_api_gets_a_quarter_of_the_open_files_at_most_512() {
        assert_eq!(HttpLimits::for_open_files(1024).max_connections, 256);
        assert_eq!(HttpLimits::for_open_files(1 << 20).max_connections, 512);
        assert_eq!(HttpLimits::for_open_files(16).max_connections, 8);
    }

    #[tokio::test]
    async fn at_the_cap_the_oldest_waiting_connection_is_evicted() {
        let limits = HttpLimits {
            max_connections: 2,
            ..HttpLimits::for_open_files(1 << 20)
        };
        let server = HttpServer::new(limits, HostAllowlist::new([], &[]).expect("valid"));
        let first = server.admit().await.expect("a free slot");
        let busy = server.admit().await.expect("a free slot");
        busy.slot.phase.store(ANSWERING, Ordering::Release);
        let evicted = Arc::clone(&first.slot);
        let waiter = tokio::spawn(async move {
            evicted.evict.notified().await;
            drop(first);
        });
        let third = server.admit().await.expect("the waiting one's slot");
        waiter
            .await
            .expect("the first connection was told to close");
        third.slot.phase.store(STREAMING, Ordering::Release);
        assert!(
            server.admit().await.is_none(),
            "no slot while every connection is busy"
        );
    }
}
