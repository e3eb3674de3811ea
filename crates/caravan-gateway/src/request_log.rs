//! One debug line per request, as Nomad's HTTP server logs it (`request complete` with method,
//! path and duration): what `/v1/agent/monitor?log_level=debug` shows of the API's traffic.
//! While nobody asks for debug lines, the request passes straight through.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

pub async fn log_request(req: Request, next: Next) -> Response {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return next.run(req).await;
    }
    let method = req.method().clone();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let start = std::time::Instant::now();
    let resp = next.run(req).await;
    tracing::debug!(
        method = %method,
        path = %path,
        code = resp.status().as_u16(),
        duration = ?start.elapsed(),
        "request complete"
    );
    resp
}
