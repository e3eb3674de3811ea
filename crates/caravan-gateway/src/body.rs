//! Request bodies as Nomad reads them: JSON decoded as Go's encoding/json decodes it (`null` is
//! "not set", field names matched case-insensitively, unknown fields ignored; see
//! `caravan_structs::go_json`), an empty body reported as such, the size bounded.
//!
//! [`GoJson`] decodes a body into a typed request struct; [`JsonObject`] keeps it as an object
//! for handlers that read a few fields or forward a document.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, OptionalFromRequest, Request};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// A JSON object body.
#[derive(Debug, Clone)]
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.is_empty() {
            return Err(ApiError::bad_request("Request body is empty"));
        }
        parse_object(&bytes)
    }
}

/// An optional body: empty means `None` (endpoints whose body Nomad reads only when sent).
impl<S: Send + Sync> OptionalFromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        // Go decodes `null` into a nil pointer: the same as no body.
        if bytes.is_empty() || is_null(&bytes) {
            return Ok(None);
        }
        parse_object(&bytes).map(Some)
    }
}

/// A typed request body decoded as Go decodes it; a body that does not fit is a 400 naming the
/// field (`Request decode failed: TaskGroups[0].Count: invalid type ...`).
#[derive(Debug, Clone)]
pub struct GoJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for GoJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonObject(map) = <JsonObject as FromRequest<S>>::from_request(req, state).await?;
        decode(Value::Object(map)).map(GoJson)
    }
}

/// Decodes a JSON value (a body or a part of one) as Go would into `T`.
pub fn decode<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    caravan_structs::go_json::from_value(value)
        .map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))
}

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_)
            if e.status() == http::StatusCode::PAYLOAD_TOO_LARGE =>
        {
            ApiError::new(
                caravan_proto::ErrorCode::PayloadTooLarge,
                "Request body is larger than the configured limit",
            )
        }
        other => ApiError::new(
            if other.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
                caravan_proto::ErrorCode::PayloadTooLarge
            } else {
                caravan_proto::ErrorCode::BadRequest
            },
            other.body_text(),
        ),
    })
}

fn is_null(bytes: &[u8]) -> bool {
    bytes.trim_ascii() == b"null"
}

fn parse_object(bytes: &[u8]) -> Result<JsonObject, ApiError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(JsonObject(map)),
        // Go decodes `null` into the zero value: every field unset.
        Ok(Value::Null) => Ok(JsonObject(Map::new())),
        Ok(other) => Err(ApiError::bad_request(format!(
            "Request body must be a JSON object, not {}",
            json_kind(&other)
        ))),
        Err(e) => Err(ApiError::bad_request(format!(
            "Request body is not valid JSON: {e}"
        ))),
    }
}

impl JsonObject {
    /// The value of `field`, matching its name case-insensitively as Go does.
    pub fn get(&self, field: &str) -> Option<&Value> {
        get_ci(&self.0, field)
    }

    /// A string field; `null` or absent is None; any other type is a 400 naming the field.
    pub fn string(&self, field: &str) -> Result<Option<String>, ApiError> {
        match self.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(wrong_type(field, "string", other)),
        }
    }

    pub fn bool(&self, field: &str) -> Result<Option<bool>, ApiError> {
        match self.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong_type(field, "bool", other)),
        }
    }
}

pub fn get_ci<'a>(map: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    map.get(field).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(field))
            .map(|(_, v)| v)
    })
}

/// An integer field (Go int64); JSON numbers with a fraction or out of range are rejected.
pub fn int_field(map: &Map<String, Value>, field: &str) -> Result<Option<i64>, ApiError> {
    match get_ci(map, field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| wrong_type(field, "int64", &Value::Number(n.clone()))),
        Some(other) => Err(wrong_type(field, "int64", other)),
    }
}

pub fn bool_field(map: &Map<String, Value>, field: &str) -> Result<Option<bool>, ApiError> {
    match get_ci(map, field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(wrong_type(field, "bool", other)),
    }
}

pub fn wrong_type(field: &str, want: &str, got: &Value) -> ApiError {
    ApiError::bad_request(format!(
        "Request decode failed: json: cannot unmarshal {} into field {field} of type {want}",
        json_kind(got)
    ))
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    #[serde(default, rename_all = "PascalCase")]
    struct Promote {
        all: bool,
        groups: Option<Vec<String>>,
        count: i64,
    }

    async fn extract(body: &'static str) -> Result<Promote, ApiError> {
        let req = Request::builder()
            .body(axum::body::Body::from(body))
            .unwrap();
        GoJson::<Promote>::from_request(req, &()).await.map(|b| b.0)
    }

    #[tokio::test]
    async fn go_bodies_decode_with_nulls_and_any_case() {
        let got = extract(r#"{"All": null, "Groups": null, "Count": null, "x": 1}"#).await;
        assert_eq!(got.unwrap(), Promote::default());
        // A `null` body is Go's zero value, and an optional one is "not sent".
        assert_eq!(extract(" null ").await.unwrap(), Promote::default());
        let req = Request::builder()
            .body(axum::body::Body::from("null"))
            .unwrap();
        let optional = <JsonObject as OptionalFromRequest<()>>::from_request(req, &())
            .await
            .unwrap();
        assert!(optional.is_none());
        let got = extract(r#"{"all": true, "GROUPS": ["a"], "count": 2}"#).await;
        assert_eq!(
            got.unwrap(),
            Promote {
                all: true,
                groups: Some(vec!["a".to_owned()]),
                count: 2
            }
        );
    }

    #[tokio::test]
    async fn bad_bodies_name_the_field() {
        let err = extract(r#"{"Count": "two"}"#).await.unwrap_err();
        assert!(
            err.message
                .starts_with("Request decode failed: Count: invalid type"),
            "{}",
            err.message
        );
        let err = extract("").await.unwrap_err();
        assert_eq!(err.message, "Request body is empty");
        let err = extract("[1]").await.unwrap_err();
        assert!(
            err.message.contains("must be a JSON object"),
            "{}",
            err.message
        );
    }
}
