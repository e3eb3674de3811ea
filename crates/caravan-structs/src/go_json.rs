//! Request bodies decoded the way Go's `encoding/json` decodes them into Nomad's `api` structs.
//!
//! Every Nomad client is Go or imitates it, and Go writes every unset pointer, slice and map as
//! `null` and every struct field whether set or not. So one decoder, used for every request
//! body, gives each type Go's reading:
//!
//! - `null` is "not set": a struct field that is `null` keeps its default (the Go zero value;
//!   Nomad's canonical defaults are filled in afterwards, as for an absent key), an `Option` is
//!   `None`, and a `null` in any other place (a list element, a map value) is that type's zero.
//! - Object keys match struct fields case-insensitively when no field has the exact name; when
//!   two keys land on one field the later wins, as in Go.
//! - Unknown keys are ignored (every struct here is `#[serde(default)]` without
//!   `deny_unknown_fields`).
//!
//! Errors name the path of the value that did not fit (`TaskGroups[0].Count: invalid type …`).

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};
use serde_json::{Map, Value};

/// Why a body did not decode: the path of the offending value and what was wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{}{message}", path_prefix(path))]
pub struct GoJsonError {
    /// Where the value sits, e.g. `TaskGroups[0].Tasks[1].Resources.CPU`; empty for the root.
    pub path: String,
    pub message: String,
}

fn path_prefix(path: &str) -> String {
    if path.is_empty() || path == "." {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// Decodes JSON text as Go would into `T`.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, GoJsonError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| GoJsonError {
        path: String::new(),
        message: e.to_string(),
    })?;
    from_value(value)
}

/// Decodes a JSON value as Go would into `T`.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, GoJsonError> {
    serde_path_to_error::deserialize(GoValue(value)).map_err(|e| GoJsonError {
        path: e.path().to_string(),
        message: e.into_inner().to_string(),
    })
}

/// A JSON value read with Go's rules; every value nested in it is read the same way.
struct GoValue(Value);

type Error = serde_json::Error;

/// Forwards scalar requests to the inner value, with `null` read as the type's zero.
macro_rules! scalar {
    ($($method:ident => $zero:expr),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                match self.0 {
                    Value::Null => {
                        let zero: fn(V) -> Result<V::Value, Error> = $zero;
                        zero(visitor)
                    }
                    other => other.$method(visitor),
                }
            }
        )*
    };
}

impl<'de> Deserializer<'de> for GoValue {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(items) => visit_array(items, visitor),
            Value::Object(map) => visitor.visit_map(GoMap::new(map, None)),
            other => other.deserialize_any(visitor),
        }
    }

    scalar! {
        deserialize_bool => |v| v.visit_bool(false),
        deserialize_i8 => |v| v.visit_i8(0),
        deserialize_i16 => |v| v.visit_i16(0),
        deserialize_i32 => |v| v.visit_i32(0),
        deserialize_i64 => |v| v.visit_i64(0),
        deserialize_i128 => |v| v.visit_i128(0),
        deserialize_u8 => |v| v.visit_u8(0),
        deserialize_u16 => |v| v.visit_u16(0),
        deserialize_u32 => |v| v.visit_u32(0),
        deserialize_u64 => |v| v.visit_u64(0),
        deserialize_u128 => |v| v.visit_u128(0),
        deserialize_f32 => |v| v.visit_f32(0.0),
        deserialize_f64 => |v| v.visit_f64(0.0),
        deserialize_char => |v| v.visit_char('\0'),
        deserialize_str => |v| v.visit_str(""),
        deserialize_string => |v| v.visit_string(String::new()),
        deserialize_bytes => |v| v.visit_bytes(&[]),
        deserialize_byte_buf => |v| v.visit_byte_buf(Vec::new()),
        deserialize_unit => |v| v.visit_unit(),
        deserialize_identifier => |v| v.visit_str(""),
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(GoValue(other)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visit_array(Vec::new(), visitor),
            Value::Array(items) => visit_array(items, visitor),
            other => other.deserialize_seq(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_map(GoMap::new(Map::new(), None)),
            Value::Object(map) => visitor.visit_map(GoMap::new(map, None)),
            other => other.deserialize_map(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_map(GoMap::new(Map::new(), Some(fields))),
            Value::Object(map) => visitor.visit_map(GoMap::new(map, Some(fields))),
            other => other.deserialize_struct(_name, fields, visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

impl<'de> IntoDeserializer<'de, Error> for GoValue {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

fn visit_array<'de, V: Visitor<'de>>(items: Vec<Value>, visitor: V) -> Result<V::Value, Error> {
    let len = items.len();
    let mut seq = GoSeq(items.into_iter());
    let out = visitor.visit_seq(&mut seq)?;
    if seq.0.len() == 0 {
        Ok(out)
    } else {
        Err(de::Error::invalid_length(len, &"fewer elements in array"))
    }
}

struct GoSeq(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for GoSeq {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.0.next() {
            Some(v) => seed.deserialize(GoValue(v)).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// The entries of an object. For a struct, keys are first renamed to the field they match
/// (exactly, else ignoring case) and `null` entries dropped, so the field keeps its default.
struct GoMap {
    entries: serde_json::map::IntoIter,
    pending: Option<Value>,
}

impl GoMap {
    fn new(map: Map<String, Value>, fields: Option<&'static [&'static str]>) -> GoMap {
        let Some(fields) = fields else {
            return GoMap {
                entries: map.into_iter(),
                pending: None,
            };
        };
        let mut canonical = Map::with_capacity(map.len());
        for (key, value) in map {
            if value.is_null() {
                // Go leaves the field as it was; a later non-null duplicate still counts.
                continue;
            }
            let name = if fields.contains(&key.as_str()) {
                key
            } else {
                fields
                    .iter()
                    .find(|f| f.eq_ignore_ascii_case(&key))
                    .map_or(key, |f| (*f).to_owned())
            };
            // Remove first so the later key also takes the later position.
            canonical.shift_remove(&name);
            canonical.insert(name, value);
        }
        GoMap {
            entries: canonical.into_iter(),
            pending: None,
        }
    }
}

impl<'de> MapAccess<'de> for GoMap {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.entries.next() {
            Some((key, value)) => {
                self.pending = Some(value);
                seed.deserialize(Value::String(key)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.pending.take() {
            Some(value) => seed.deserialize(GoValue(value)),
            None => Err(de::Error::custom("value is missing")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}
