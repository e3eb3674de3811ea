//! A bare HTTP/1.1 keep-alive connection (hyper's client `conn` API).
//!
//! No pool on purpose: each benchmark decides exactly how many sockets exist and which request
//! goes on which, so "10,000 waiters" means 10,000 sockets and "64 connections" means 64.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One open connection to the API.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
    /// Sent as `X-Nomad-Token` on every request when set.
    token: Option<String>,
}

/// A response with its body read to the end.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    /// `X-Nomad-Index`, when present and numeric.
    pub index: Option<u64>,
    pub body: Bytes,
}

impl Reply {
    /// Fails unless the status is 2xx, quoting the start of the body.
    pub fn ok(self) -> anyhow::Result<Reply> {
        if !self.status.is_success() {
            let text = String::from_utf8_lossy(&self.body);
            bail!(
                "HTTP {}: {}",
                self.status,
                text.chars().take(300).collect::<String>()
            );
        }
        Ok(self)
    }

    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).context("decoding the JSON response")
    }
}

impl Conn {
    /// Connects to `addr` and completes the HTTP/1.1 handshake (nothing is sent yet).
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        // Small request/response pairs: do not let Nagle hold them back.
        stream.set_nodelay(true).context("setting TCP_NODELAY")?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        // The connection task ends when the server closes the socket or `sender` is dropped;
        // its error then surfaces on the next request, so it is not kept here.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn {
            sender,
            host: addr.to_string(),
            token: None,
        })
    }

    /// Sends `token` as `X-Nomad-Token` from now on.
    pub fn with_token(mut self, token: &str) -> Conn {
        self.token = Some(token.to_owned());
        self
    }

    /// Sends one request and reads the whole response.
    pub async fn request(
        &mut self,
        method: Method,
        path_and_query: &str,
        body: Option<Bytes>,
        gzip: bool,
    ) -> anyhow::Result<Reply> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(header::HOST, &self.host);
        if gzip {
            // What Go's HTTP client (and so the nomad CLI) sends by default.
            builder = builder.header(header::ACCEPT_ENCODING, "gzip");
        }
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(token) = &self.token {
            builder = builder.header("x-nomad-token", token);
        }
        let request = builder
            .body(Full::new(body.unwrap_or_default()))
            .context("building the request")?;
        self.sender
            .ready()
            .await
            .context("the connection is closed")?;
        let response = self
            .sender
            .send_request(request)
            .await
            .context("sending the request")?;
        let status = response.status();
        let index = response
            .headers()
            .get("x-nomad-index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body = response
            .into_body()
            .collect()
            .await
            .context("reading the response body")?
            .to_bytes();
        Ok(Reply {
            status,
            index,
            body,
        })
    }

    pub async fn get(&mut self, path_and_query: &str) -> anyhow::Result<Reply> {
        self.request(Method::GET, path_and_query, None, false).await
    }

    pub async fn delete(&mut self, path: &str) -> anyhow::Result<Reply> {
        self.request(Method::DELETE, path, None, false).await
    }

    pub async fn post(&mut self, path: &str, body: &serde_json::Value) -> anyhow::Result<Reply> {
        let bytes = Bytes::from(serde_json::to_vec(body).context("encoding the request body")?);
        self.request(Method::POST, path, Some(bytes), false).await
    }
}

/// `connections` keep-alive connections each reading `path` in a closed loop for `duration`
/// (with `token` when given): the latencies of the requests that finished in time, and the
/// connections that failed.
pub async fn closed_loop(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<(Vec<Duration>, u64)> {
    let end = tokio::time::Instant::now() + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let path = path.to_owned();
            let token = token.map(str::to_owned);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut conn = match Conn::connect(addr).await {
                    Ok(c) => c,
                    Err(_) => return (latencies, 1),
                };
                if let Some(t) = &token {
                    conn = conn.with_token(t);
                }
                while tokio::time::Instant::now() < end {
                    let started = tokio::time::Instant::now();
                    if conn.get(&path).await.and_then(Reply::ok).is_err() {
                        return (latencies, 1);
                    }
                    let done = tokio::time::Instant::now();
                    if done <= end {
                        latencies.push(done - started);
                    }
                }
                (latencies, 0)
            })
        })
        .collect();
    let mut samples = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await.context("a client task panicked")?;
        samples.extend(l);
        errors += e;
    }
    Ok((samples, errors))
}
