//! The HTTP control API: one hyper server on the control thread.
//!
//! Routing is by path and, for the AWS faces, by headers and body (they
//! all `POST /`). This module owns the listener, the per-connection tasks
//! and the shared state handlers read.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// State every handler can read.
#[derive(Debug, Default)]
pub struct ApiState {
    /// Ports started and workers launched.
    pub ready: AtomicBool,
}

/// The response type of every handler.
pub type HttpResponse = Response<Full<Bytes>>;

/// A plain-text response.
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> HttpResponse {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(body.into()))
        .expect("static headers are valid")
}

async fn route(req: Request<Incoming>, state: Arc<ApiState>) -> Result<HttpResponse, Infallible> {
    let resp = match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => {
            if state.ready.load(Ordering::Acquire) {
                text(StatusCode::OK, "ok\n")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "starting: ports are not up yet\n",
                )
            }
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    };
    Ok(resp)
}

/// Serves the API on `listener` until the runtime stops.
pub async fn serve(listener: std::net::TcpListener, state: Arc<ApiState>) {
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("flowgate: api: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = state.clone();
        tokio::task::spawn_local(async move {
            let svc = hyper::service::service_fn(move |req| route(req, state.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
