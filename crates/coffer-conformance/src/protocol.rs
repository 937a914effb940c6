//! The driver protocol: one JSON object per line, UTF-8, over the driver's stdin and stdout.
//!
//! Request: `{"id": n, "op": "<GroupType>", "params": {..}, "input": {..}}`.
//! Response: `{"id": n, "ok": {..}}`, `{"id": n, "error": "<failure class>"}` (an optional
//! `"message"` is shown to the user) or `{"id": n, "unsupported": true}`.

use serde_json::{json, Map, Value};

/// One request to a driver.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Sequence number, echoed by the response.
    pub id: u64,
    /// The operation: a vector group type.
    pub op: String,
    /// The group parameters.
    pub params: Map<String, Value>,
    /// The test's inputs.
    pub input: Map<String, Value>,
}

/// What an implementation answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// The operation succeeded with these outputs.
    Ok(Map<String, Value>),
    /// The operation failed with a failure class.
    Error {
        /// The failure class (spec §0 registry, e.g. `decryption-failed`).
        class: String,
        /// Optional human-readable detail.
        message: Option<String>,
    },
    /// The implementation does not implement this operation.
    Unsupported,
}

/// The failure class a driver uses when it cannot process a request at all (a field it needs is
/// missing, injected randomness is not consumed exactly, ...). It is never an expected class.
pub const DRIVER_ERROR: &str = "driver-error";

impl Request {
    /// The request as one line of JSON (without the newline).
    pub fn to_line(&self) -> String {
        json!({ "id": self.id, "op": self.op, "params": self.params, "input": self.input })
            .to_string()
    }

    /// Parses one request line.
    pub fn parse(line: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        let id = v
            .get("id")
            .and_then(Value::as_u64)
            .ok_or("missing integer id")?;
        let op = v
            .get("op")
            .and_then(Value::as_str)
            .ok_or("missing string op")?
            .to_owned();
        let obj = |k: &str| match v.get(k) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(_) => Err(format!("{k} is not an object")),
        };
        Ok(Request {
            id,
            op,
            params: obj("params")?,
            input: obj("input")?,
        })
    }
}

impl Response {
    /// The response to request `id` as one line of JSON (without the newline).
    pub fn to_line(&self, id: u64) -> String {
        match self {
            Response::Ok(m) => json!({ "id": id, "ok": m }),
            Response::Error {
                class,
                message: Some(msg),
            } => json!({ "id": id, "error": class, "message": msg }),
            Response::Error {
                class,
                message: None,
            } => json!({ "id": id, "error": class }),
            Response::Unsupported => json!({ "id": id, "unsupported": true }),
        }
        .to_string()
    }

    /// Parses one response line into its id and response; exactly one of `ok`, `error`,
    /// `unsupported: true` must be present.
    pub fn parse(line: &str) -> Result<(u64, Self), String> {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        let o = v.as_object().ok_or("not a JSON object")?;
        let id = o
            .get("id")
            .and_then(Value::as_u64)
            .ok_or("missing integer id")?;
        let ok = o.get("ok");
        let err = o.get("error");
        let unsup = o.get("unsupported");
        match (ok, err, unsup) {
            (Some(Value::Object(m)), None, None) => Ok((id, Response::Ok(m.clone()))),
            (None, Some(Value::String(c)), None) => Ok((
                id,
                Response::Error {
                    class: c.clone(),
                    message: o.get("message").and_then(Value::as_str).map(str::to_owned),
                },
            )),
            (None, None, Some(Value::Bool(true))) => Ok((id, Response::Unsupported)),
            _ => Err(
                "a response needs exactly one of \"ok\" (object), \"error\" (string), \"unsupported\": true"
                    .into(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let r = Request {
            id: 7,
            op: "SealOpen".into(),
            params: Map::new(),
            input: json!({"key": "00"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        };
        assert_eq!(Request::parse(&r.to_line()), Ok(r));
        for resp in [
            Response::Ok(Map::new()),
            Response::Error {
                class: "malformed".into(),
                message: None,
            },
            Response::Error {
                class: "malformed".into(),
                message: Some("x".into()),
            },
            Response::Unsupported,
        ] {
            assert_eq!(Response::parse(&resp.to_line(3)), Ok((3, resp)));
        }
    }

    #[test]
    fn rejects_ambiguous_responses() {
        for bad in [
            "",
            "[]",
            "{\"id\":1}",
            "{\"id\":1,\"ok\":{},\"error\":\"x\"}",
            "{\"id\":1,\"ok\":[]}",
            "{\"id\":1,\"unsupported\":false}",
            "{\"ok\":{}}",
            "{\"id\":-1,\"ok\":{}}",
        ] {
            assert!(Response::parse(bad).is_err(), "{bad}");
        }
    }
}
