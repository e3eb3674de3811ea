//! Errors of the client: an HTTP status the API answered with, a transport failure, or a body
//! that is not what the endpoint documents.

/// Everything a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The API answered with a non-success status; `body` is its (plain-text) message.
    #[error("unexpected response code {status}: {body}")]
    Status { status: u16, body: String },
    /// The request never got an answer: connection refused, reset, timed out, ...
    #[error("request to {url} failed: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The answer was a success but its body is not the documented JSON.
    #[error("cannot decode the response of {url}: {source}")]
    Decode {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    /// A request body that cannot be encoded.
    #[error("cannot encode the request body: {0}")]
    Encode(#[source] serde_json::Error),
    /// The client was configured with an address that is not an http(s) URL.
    #[error("invalid address {address:?}: {message}")]
    InvalidAddress { address: String, message: String },
}

impl ApiError {
    /// The HTTP status, when the API answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The error text the API answered with, when it answered with an error status.
    pub fn body(&self) -> Option<&str> {
        match self {
            ApiError::Status { body, .. } => Some(body),
            _ => None,
        }
    }

    /// True for a 404 answer.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// True when the request timed out on the client side (see `Client::with_timeout` and
    /// `RawRequest::timeout`).
    pub fn is_timeout(&self) -> bool {
        matches!(self, ApiError::Transport { source, .. } if source.is_timeout())
    }
}
