//! HTTP requests to the control API, from a thread inside a namespace.

use std::net::SocketAddr;

/// Sends one request; returns the status and the body parsed as JSON (or
/// `Null` when the body is not JSON).
pub fn request(addr: SocketAddr, method: &str, path: &str, body: Option<&serde_json::Value>) -> (u16, serde_json::Value) {
    let body = body.map(|b| b.to_string());
    let (status, text) = relay::api::client::request(addr, method, path, body.as_deref())
        .unwrap_or_else(|e| panic!("{method} {path} on {addr}: {e}"));
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}
