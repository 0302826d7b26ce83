//! The HTTP control API: one hyper server on the control thread.
//!
//! Every request is read whole (up to `api.max_body_bytes`) into an
//! [`ApiRequest`], then routed: health and metrics by path; the F5
//! matching-flows face by path; the two AWS faces, which both `POST /`,
//! by their headers (`X-Amz-Target` for the JSON 1.0 protocol) and body
//! (`Action=` for the EC2 query protocol). This module owns the listener,
//! the per-connection tasks and the state handlers share.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::HeaderMap;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::appliance::PortView;
use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::ops::{Limits, OperationStore};

pub mod ec2;
pub mod f5;
pub mod metrics;
pub mod nfw;

/// State every handler can read.
#[derive(Debug)]
pub struct ApiState {
    /// Ports started and workers launched.
    pub ready: AtomicBool,
    /// The configuration flowgate runs with.
    pub config: Arc<Config>,
    /// The worker rings, once the data plane runs.
    pub dispatcher: OnceLock<Dispatcher>,
    /// The ports, once they are up.
    pub ports: OnceLock<Vec<PortView>>,
    /// True while ports are open: once closing starts, counters are
    /// answered `None` at once (the ports' readers also refuse a closed
    /// port, which is what makes reading sound).
    ports_open: AtomicBool,
    /// Requests answered, by face, operation and status.
    pub requests: metrics::RequestCounters,
    /// Flow operations (captures and flushes) and their results.
    pub ops: Mutex<OperationStore<nfw::model::FlowOperationSpec>>,
    /// Who may drive the API.
    pub auth: crate::auth::Authenticator,
    /// Traffic mirror targets, filters and sessions (the EC2 face).
    pub mirror: Mutex<crate::mirror_store::MirrorStore>,
    /// The newest mirror store generation every worker runs (0 before the
    /// data plane is up): an EC2 change is answered once stored, and
    /// reaches the workers later, so this is how one knows it has.
    installed_mirror: AtomicU32,
}

impl ApiState {
    /// State for a configuration, before the data plane runs, with
    /// authentication off (tests of the faces' logic).
    pub fn new(config: Arc<Config>) -> ApiState {
        ApiState::with_auth(config, crate::auth::Authenticator::disabled())
    }

    /// State for a configuration and an authenticator.
    pub fn with_auth(config: Arc<Config>, auth: crate::auth::Authenticator) -> ApiState {
        ApiState {
            auth,
            ready: AtomicBool::new(false),
            dispatcher: OnceLock::new(),
            ports: OnceLock::new(),
            ports_open: AtomicBool::new(false),
            requests: metrics::RequestCounters::default(),
            ops: Mutex::new(OperationStore::new(Limits::from_config(&config.operations))),
            mirror: Mutex::new(crate::mirror_store::MirrorStore::in_memory()),
            installed_mirror: AtomicU32::new(0),
            config,
        }
    }

    /// The operation store. Handlers and job tasks share one thread and
    /// hold it only briefly, so it is never contended.
    pub fn ops(&self) -> MutexGuard<'_, OperationStore<nfw::model::FlowOperationSpec>> {
        // A panic aborts the process (release profile), so poisoning only
        // happens in tests; the store is consistent after every call anyway.
        self.ops.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The mirror store; held briefly by handlers on the control thread.
    pub fn mirror(&self) -> MutexGuard<'_, crate::mirror_store::MirrorStore> {
        self.mirror.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that every worker runs mirror generation `generation`.
    /// Never lowers it: installs run side by side, and one of an older
    /// generation may be confirmed after a newer one.
    pub fn mirror_installed(&self, generation: u32) {
        self.installed_mirror
            .fetch_max(generation, Ordering::AcqRel);
    }

    /// The newest mirror generation every worker has confirmed (see
    /// [`ApiState::mirror_installed`]).
    pub fn installed_mirror_generation(&self) -> u32 {
        self.installed_mirror.load(Ordering::Acquire)
    }

    /// Uses `store` (read from the state file) for the EC2 face.
    pub fn with_mirror_store(self, store: crate::mirror_store::MirrorStore) -> ApiState {
        *self.mirror.lock().unwrap_or_else(|e| e.into_inner()) = store;
        self
    }

    /// Records that the ports are up (their counters can be read).
    pub fn ports_opened(&self, ports: Vec<PortView>) {
        let _ = self.ports.set(ports);
        self.ports_open.store(true, Ordering::Release);
    }

    /// Marks the ports closed and the appliance not ready, then runs
    /// `close` (which stops the workers and closes the ports). Scrapes
    /// and stats ticks meanwhile are answered at once, without counters,
    /// rather than waiting on the close, which joins the workers.
    pub fn close_ports<R>(&self, close: impl FnOnce() -> R) -> R {
        self.ports_open.store(false, Ordering::Release);
        self.ready.store(false, Ordering::Release);
        close()
    }

    /// A port's DPDK counters, or `None` once the ports are closing.
    pub fn port_stats(&self, port: &PortView) -> Option<flowgate_sys::PortStats> {
        if !self.ports_open.load(Ordering::Acquire) {
            return None;
        }
        port.reader.stats()
    }

    /// Whether a port's link is up (false once the ports are closing).
    pub fn port_up(&self, port: &PortView) -> bool {
        self.ports_open.load(Ordering::Acquire) && port.reader.link().is_some_and(|l| l.up)
    }
}

/// A request, read whole.
#[derive(Debug)]
pub struct ApiRequest {
    /// Method.
    pub method: Method,
    /// Path, without the query.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
    /// The client's address.
    // Not read yet: kept for access logs and per-client limits.
    #[allow(dead_code)]
    pub peer: SocketAddr,
}

impl ApiRequest {
    /// A header's value as text, if present and valid.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The response type of every handler.
pub type HttpResponse = Response<Full<Bytes>>;

/// A response with a body and content type.
pub fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> HttpResponse {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .expect("static headers are valid")
}

/// A plain-text response.
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> HttpResponse {
    respond(status, "text/plain; charset=utf-8", body)
}

async fn dispatch(req: &ApiRequest, state: &Arc<ApiState>) -> HttpResponse {
    if let Some((ns, site)) = f5::parse_path(&req.path) {
        return f5::matching_flows(req, state, ns, site).await;
    }
    // HEAD is GET without the body, which hyper leaves out by itself.
    let get = req.method == Method::GET || req.method == Method::HEAD;
    match (&req.method, req.path.as_str()) {
        (_, "/healthz" | "/readyz" | "/metrics") if !get => {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            r.headers_mut().insert(
                hyper::header::ALLOW,
                hyper::header::HeaderValue::from_static("GET, HEAD"),
            );
            r
        }
        (_, "/healthz") => {
            if state.ready.load(Ordering::Acquire) {
                text(StatusCode::OK, "ok\n")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "starting: ports are not up yet\n",
                )
            }
        }
        (_, "/readyz") => metrics::readyz(state).await,
        (&Method::POST, "/debug/stall-worker") if state.config.api.debug_endpoints => {
            stall_worker(req, state).await
        }
        (&Method::POST, "/debug/release-workers") if state.config.api.debug_endpoints => {
            release_workers(state).await
        }
        (_, "/metrics") => metrics::metrics(req, state).await,
        // The Network Firewall face (AWS JSON 1.0) names its operation here.
        (&Method::POST, "/") if req.headers.contains_key("x-amz-target") => {
            nfw::handle(req, state).await
        }
        // The EC2 face (query protocol) names it in the form body.
        (&Method::POST, "/") if ec2::is_ec2(req) => ec2::handle(req, state),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Fault injection (only with `[api] debug_endpoints = true`): body
/// `{"worker": W, "ms": N}` makes worker W stop for N ms (at most a
/// minute; `/debug/release-workers` ends it sooner), as a wedged worker
/// would, so tests can watch readiness and operations notice.
async fn stall_worker(req: &ApiRequest, state: &ApiState) -> HttpResponse {
    let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
    let (Some(worker), Some(ms)) = (v["worker"].as_u64(), v["ms"].as_u64()) else {
        return text(
            StatusCode::BAD_REQUEST,
            "body: {\"worker\": W, \"ms\": N}\n",
        );
    };
    let Some(d) = state.dispatcher.get() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "data plane not up\n");
    };
    if d.stall_worker(worker as usize, ms.min(60_000) as u32).await {
        text(StatusCode::OK, "stalling\n")
    } else {
        text(
            StatusCode::NOT_FOUND,
            "no such worker, or its ring is full\n",
        )
    }
}

/// Fault injection (only with `[api] debug_endpoints = true`): ends every
/// stall `/debug/stall-worker` started, so a test stalls for long and
/// releases once its checks are done, instead of racing a guessed window.
async fn release_workers(state: &ApiState) -> HttpResponse {
    let Some(d) = state.dispatcher.get() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "data plane not up\n");
    };
    let n = d.release_stalls().await;
    text(StatusCode::OK, format!("released {n} stall(s)\n"))
}

/// Reads a request's body, at most `limit` bytes within `timeout`. hyper
/// bounds only the time the headers take: without a bound here, a client
/// that announced a body and never sent it held its connection (and a
/// place under `max_connections`) for good. On failure, the answer and the
/// request without its body (to count the answer under its face).
async fn read(
    req: Request<Incoming>,
    peer: SocketAddr,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<ApiRequest, Box<(ApiRequest, HttpResponse)>> {
    let (parts, body) = req.into_parts();
    let request = |parts: hyper::http::request::Parts, body| ApiRequest {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
        peer,
    };
    let unread = |parts, resp| Err(Box::new((request(parts, Bytes::new()), resp)));
    let Ok(collected) = tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await
    else {
        let mut resp = text(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "request body not received within {} ms\n",
                timeout.as_millis()
            ),
        );
        resp.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
        return unread(parts, resp);
    };
    let body = match collected {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let too_large = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            return unread(
                parts,
                if too_large {
                    text(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("request body over {limit} bytes\n"),
                    )
                } else {
                    text(StatusCode::BAD_REQUEST, "could not read the request body\n")
                },
            );
        }
    };
    Ok(request(parts, body))
}

/// Requests in progress per client address (the control thread is single
/// threaded, so plain `Rc<RefCell>` state is enough).
#[derive(Default)]
struct Inflight(std::cell::RefCell<std::collections::HashMap<std::net::IpAddr, usize>>);

/// One request's place in its client's count. It is given back when
/// dropped: when the request is answered, and also when hyper drops the
/// request because the client hung up, which would otherwise leave the
/// count one too high for good.
struct Slot {
    inflight: std::rc::Rc<Inflight>,
    ip: std::net::IpAddr,
}

impl Inflight {
    /// A slot for a request from `ip`, unless it already has `max`.
    fn enter(self: &std::rc::Rc<Self>, ip: std::net::IpAddr, max: usize) -> Option<Slot> {
        let mut m = self.0.borrow_mut();
        let n = m.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            inflight: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self.inflight.0.borrow_mut();
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// A connection whose writes may stall `limit` at most: hyper bounds the
/// time a request's headers take but not an answer's, so a client that
/// stops reading (after pipelining requests, say) held its connection,
/// and a place under `max_connections`, for good.
struct WriteDeadline<S> {
    inner: S,
    limit: std::time::Duration,
    /// Runs from the first write that could not go on.
    stalled: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteDeadline<S> {
    fn new(inner: S, limit: std::time::Duration) -> Self {
        WriteDeadline {
            inner,
            limit,
            stalled: None,
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::future::Future;
        use std::task::Poll;
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                this.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let limit = this.limit;
                let stalled = this
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                if stalled.as_mut().poll(cx).is_ready() {
                    this.stalled = None;
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client stopped reading",
                    )));
                }
                Poll::Pending
            }
        }
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Most of a body read on a connection past `max_connections`: enough for
/// an EC2 form's `Action=` to name the face whose throttling error it gets.
const OVER_LIMIT_BODY_BYTES: usize = 16 * 1024;

/// The throttling error of the face a request is for.
fn throttled(req: &ApiRequest) -> HttpResponse {
    let (face, _) = metrics::classify(req);
    match face {
        "network_firewall" => nfw::error::NfwError::Throttling("Rate exceeded".into()).into_response(),
        "ec2" => ec2::throttled(),
        "f5" => respond(
            StatusCode::TOO_MANY_REQUESTS,
            "application/json",
            serde_json::json!({"code": 8, "message": "too many requests in progress", "details": []}).to_string(),
        ),
        _ => text(StatusCode::TOO_MANY_REQUESTS, "too many requests in progress\n"),
    }
}

/// Serves the API on `listener` until the runtime stops. Bounds: request
/// bodies (`max_body_bytes`), the time to send headers, open connections,
/// and requests in progress per client address; past the last two a
/// request gets its protocol's throttling error, never unbounded memory.
pub async fn serve(listener: std::net::TcpListener, state: Arc<ApiState>) {
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    let open = std::rc::Rc::new(std::cell::Cell::new(0usize));
    let inflight = std::rc::Rc::new(Inflight::default());
    // Connections open per client address, counted as requests in
    // progress are: one address cannot take every connection.
    let connections = std::rc::Rc::new(Inflight::default());
    let api = state.config.api.clone();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                say_err!("flowgate: api: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        open.set(open.get() + 1);
        let place = connections.enter(peer.ip(), api.max_connections_per_client);
        let over = open.get() > api.max_connections || place.is_none();
        let (state, open, inflight) = (state.clone(), open.clone(), inflight.clone());
        let max_inflight = api.max_inflight_per_client;
        let write_timeout = std::time::Duration::from_millis(api.write_timeout_ms);
        tokio::task::spawn_local(async move {
            let svc = hyper::service::service_fn(move |req| {
                let (state, inflight) = (state.clone(), inflight.clone());
                async move {
                    let api = &state.config.api;
                    let timeout = std::time::Duration::from_millis(api.body_read_timeout_ms);
                    // A connection past the limit is only told to come
                    // back: it reads no more of a body than naming the
                    // request's face takes, so such connections, however
                    // many, cost little memory.
                    let limit = if over {
                        api.max_body_bytes.min(OVER_LIMIT_BODY_BYTES)
                    } else {
                        api.max_body_bytes
                    };
                    let request = read(req, peer, limit, timeout).await;
                    let slot = match &request {
                        Ok(_) if !over => inflight.enter(peer.ip(), max_inflight),
                        _ => None,
                    };
                    let throttle = |r: &ApiRequest| {
                        let mut resp = throttled(r);
                        if over {
                            resp.headers_mut().insert(
                                hyper::header::CONNECTION,
                                hyper::header::HeaderValue::from_static("close"),
                            );
                        }
                        resp
                    };
                    let (r, resp) = match request {
                        // Liveness is answered however many connections
                        // are open: a probe throttled away would have the
                        // appliance restarted. (Within one client's limit
                        // it is counted like any request.)
                        Ok(r) if slot.is_some() || (over && r.path == "/healthz") => {
                            let resp = dispatch(&r, &state).await;
                            (r, resp)
                        }
                        Ok(r) => {
                            let resp = throttle(&r);
                            (r, resp)
                        }
                        Err(failed) if over => {
                            let resp = throttle(&failed.0);
                            (failed.0, resp)
                        }
                        Err(failed) => *failed,
                    };
                    // Every answer is counted once, here, under its face.
                    let (face, op) = metrics::classify(&r);
                    state.requests.record(face, &op, resp.status().as_u16());
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_millis(api.header_read_timeout_ms))
                .keep_alive(!over)
                .serve_connection(TokioIo::new(WriteDeadline::new(stream, write_timeout)), svc)
                .await;
            open.set(open.get() - 1);
            drop(place);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_counts_until_dropped_and_clients_are_counted_apart() {
        let inflight = std::rc::Rc::new(Inflight::default());
        let (a, b): (std::net::IpAddr, std::net::IpAddr) =
            ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        let first = inflight.enter(a, 2).expect("first");
        let second = inflight.enter(a, 2).expect("second");
        assert!(inflight.enter(a, 2).is_none(), "a third is over the limit");
        let other = inflight
            .enter(b, 2)
            .expect("another client has its own count");
        drop(first);
        let third = inflight.enter(a, 2).expect("a dropped slot is given back");
        drop((second, third, other));
        assert!(inflight.0.borrow().is_empty(), "no client is left counted");
    }
}
