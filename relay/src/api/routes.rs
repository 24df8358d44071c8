//! The HTTP surface: thin handlers that read the request, call the
//! validation functions and [`Control`], and shape SpeedData's answers.

use std::collections::{BTreeSet, HashMap};

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use super::control::{ChannelStatus, ChannelView, Control, ControlError};
use super::metrics::{self, Sample};
use super::reply::{ok, with_status, ApiError, Reply};
use super::validate::{self, Invalid};

/// Largest request body (a registration with an inline schema, or a schema
/// to validate): a little over the largest schema accepted.
pub const MAX_BODY_BYTES: usize = validate::SCHEMA_MAX_BYTES + 4096;
/// SpeedData's defaults for `GET /ports/available`.
pub const PORT_RANGE_DEFAULT: (u16, u16) = (26000, 27000);
/// The service name and API version SpeedData's health check reports.
const SERVICE: &str = "speeddata-registration-api";
const API_VERSION: &str = "0.5.0";

#[derive(Clone)]
struct Api<C> {
    control: C,
    /// The listener is on a loopback address: only requests naming a
    /// loopback host are answered (a web page whose domain was re-bound to
    /// 127.0.0.1 must not drive the API).
    loopback_only: bool,
}

/// The API's routes over `control`. `loopback_only`: see [`super::serve`].
pub fn router<C: Control>(control: C, loopback_only: bool) -> Router {
    let api = Api { control, loopback_only };
    Router::new()
        .route("/api/v1/health", get(health::<C>))
        .route("/api/v1/channels", get(list::<C>).post(register::<C>))
        .route("/api/v1/channels/{name}", get(show::<C>).delete(deregister::<C>))
        .route("/api/v1/channels/{name}/schema", get(schema::<C>))
        .route("/api/v1/channels/{name}/validate-schema", post(validate_schema::<C>))
        .route("/api/v1/channels/{name}/stats", get(stats::<C>))
        .route("/api/v1/ports/available", get(available_ports::<C>))
        .route("/api/v1/ports/{port}/status", get(port_status::<C>))
        .route("/metrics", get(prometheus::<C>))
        .fallback(not_found)
        .layer(middleware::map_response(json_405))
        .layer(middleware::from_fn_with_state(api.clone(), check_host::<C>))
        .with_state(api)
}

async fn health<C: Control>(State(api): State<Api<C>>) -> Reply {
    ok(json!({
        "status": "ok",
        "service": SERVICE,
        "version": API_VERSION,
        "implementation": concat!("speeddata-xdp ", env!("CARGO_PKG_VERSION")),
        "channels": api.control.channels().len(),
    }))
}

async fn list<C: Control>(
    State(api): State<Api<C>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Reply {
    let Query(q) = query.map_err(bad_query)?;
    let filter = match q.get("status").map(String::as_str) {
        None | Some("") => None,
        Some(s) => Some(ChannelStatus::parse(s).ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, "Invalid status filter")
                .with("status", s)
                .with("allowed", json!(["registered", "active"]))
        })?),
    };
    let mut channels: Vec<ChannelView> =
        api.control.channels().into_iter().filter(|c| filter.is_none_or(|f| c.status == f)).collect();
    channels.sort_by(|a, b| a.name.cmp(&b.name));
    ok(json!({ "channels": channels }))
}

async fn show<C: Control>(State(api): State<Api<C>>, name: Result<Path<String>, PathRejection>) -> Reply {
    ok(find(&api.control, name)?)
}

async fn register<C: Control>(State(api): State<Api<C>>, headers: HeaderMap, body: Body) -> Reply {
    let body = json_body(&headers, body).await?;
    let dirs = api.control.schema_dirs();
    // Reads the schema file: off the runtime's thread.
    let req = tokio::task::spawn_blocking(move || validate::registration(&body, &dirs))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Validation failed").with("details", e.to_string()))??;
    let known = api.control.channels();
    if let Some(c) = known.iter().find(|c| c.port == req.port) {
        return Err(ApiError::port_in_use(req.port, &c.name));
    }
    if known.iter().any(|c| c.name == req.name) {
        return Err(ApiError::name_in_use(&req.name));
    }
    let name = req.name.clone();
    match api.control.add(req).await {
        Ok(view) => with_status(
            StatusCode::CREATED,
            json!({
                "status": "success",
                "name": view.name,
                "port": view.port,
                "pid": view.pid,
                "message": format!("Channel '{}' registered and relay started", view.name),
                "channel": view,
            }),
        ),
        Err(ControlError::Failed(why)) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Failed to start relay process")
            .with("name", name)
            .with("details", why)),
        Err(e) => Err(e.into()),
    }
}

async fn deregister<C: Control>(State(api): State<Api<C>>, name: Result<Path<String>, PathRejection>) -> Reply {
    let view = find(&api.control, name)?;
    match api.control.remove(&view.name).await {
        Ok(()) => ok(json!({
            "status": "success",
            "name": view.name,
            "message": format!("Channel '{}' de-registered and relay stopped", view.name),
        })),
        Err(ControlError::Failed(why)) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Failed to stop relay process")
            .with("name", view.name)
            .with("details", why)),
        Err(e) => Err(e.into()),
    }
}

async fn schema<C: Control>(State(api): State<Api<C>>, name: Result<Path<String>, PathRejection>) -> Reply {
    let view = find(&api.control, name)?;
    ok(registered_schema(&view)?)
}

async fn validate_schema<C: Control>(
    State(api): State<Api<C>>,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Reply {
    let view = find(&api.control, name)?;
    let body = json_body(&headers, body).await?;
    let Some(provided) = validate::provided_schema(&body) else {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "Request body must contain 'schema' field"));
    };
    let registered = registered_schema(&view)?;
    if validate::same_schema(&registered, &provided) {
        ok(json!({"valid": true, "message": "Schema matches registered schema"}))
    } else {
        with_status(
            StatusCode::CONFLICT,
            json!({
                "valid": false,
                "message": "Schema does not match",
                "registered_schema": registered,
                "provided_schema": provided,
            }),
        )
    }
}

async fn stats<C: Control>(State(api): State<Api<C>>, name: Result<Path<String>, PathRejection>) -> Reply {
    let view = find(&api.control, name)?;
    ok(json!({
        "name": view.name,
        "status": view.status,
        "pid": view.pid,
        "restarts": view.restarts,
        "stats": api.control.stats(&view.name),
    }))
}

async fn available_ports<C: Control>(
    State(api): State<Api<C>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Reply {
    let Query(q) = query.map_err(bad_query)?;
    let bound = |key: &str, default: u16| match q.get(key) {
        None => Ok(default),
        Some(v) => validate::port_text(v, key),
    };
    let start = bound("start", PORT_RANGE_DEFAULT.0)?;
    let end = bound("end", PORT_RANGE_DEFAULT.1)?;
    if start >= end {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "Invalid range: start must be < end")
            .with("start", start)
            .with("end", end));
    }
    let used: BTreeSet<u16> = api.control.channels().iter().map(|c| c.port).collect();
    let available: Vec<u16> = (start..=end).filter(|p| !used.contains(p)).collect();
    ok(json!({
        "range": {"start": start, "end": end},
        "count": available.len(),
        "available": available,
    }))
}

async fn port_status<C: Control>(State(api): State<Api<C>>, port: Result<Path<String>, PathRejection>) -> Reply {
    let Path(text) = port.map_err(bad_path)?;
    let port = validate::port_text(&text, "port")?;
    match api.control.channels().into_iter().find(|c| c.port == port) {
        None => ok(json!({"port": port, "available": true, "status": "free"})),
        Some(c) => ok(json!({"port": port, "available": false, "status": "in_use", "channel": c.name})),
    }
}

async fn prometheus<C: Control>(State(api): State<Api<C>>) -> Reply {
    let views = api.control.channels();
    let dirs: Vec<_> = views.iter().map(|v| v.storage_dir.clone()).collect();
    // Walks the archive directories: off the runtime's thread.
    let disk = tokio::task::spawn_blocking(move || {
        dirs.iter().map(|d| d.as_deref().and_then(metrics::disk_bytes)).collect::<Vec<_>>()
    })
    .await
    .unwrap_or_else(|_| vec![None; views.len()]);
    let samples: Vec<Sample<'_>> = views
        .iter()
        .zip(disk)
        .map(|(view, disk_bytes)| Sample { view, stats: api.control.stats(&view.name), disk_bytes })
        .collect();
    Ok(([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], metrics::render(&samples)).into_response())
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "Not found").with("path", uri.path())
}

/// The router's own 405 (empty body) in our JSON shape; the router adds the
/// `Allow` header afterwards.
async fn json_405(response: Response) -> Response {
    if response.status() != StatusCode::METHOD_NOT_ALLOWED {
        return response;
    }
    let mut r = ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed").into_response();
    if let Some(a) = response.headers().get(header::ALLOW) {
        r.headers_mut().insert(header::ALLOW, a.clone());
    }
    r
}

async fn check_host<C: Control>(State(api): State<Api<C>>, req: Request, next: Next) -> Response {
    if api.loopback_only {
        if let Some(host) = req.headers().get(header::HOST) {
            if !is_loopback_host(host) {
                return ApiError::new(StatusCode::FORBIDDEN, "Forbidden host")
                    .with(
                        "details",
                        "the API listens on a loopback address and answers only requests for localhost or a loopback address",
                    )
                    .into_response();
            }
        }
    }
    next.run(req).await
}

/// `localhost`, `127.0.0.1`, `[::1]`… with or without a port.
fn is_loopback_host(host: &HeaderValue) -> bool {
    let Ok(host) = host.to_str() else { return false };
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(h, port)| if port.bytes().all(|b| b.is_ascii_digit()) { h } else { host })
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The channel named in the path, or 400 (not a valid name) / 404.
fn find<C: Control>(control: &C, name: Result<Path<String>, PathRejection>) -> Result<ChannelView, ApiError> {
    let Path(name) = name.map_err(bad_path)?;
    validate::channel_name(&name)?;
    control.channels().into_iter().find(|c| c.name == name).ok_or_else(|| ApiError::channel_not_found(&name))
}

fn registered_schema(view: &ChannelView) -> Result<Value, ApiError> {
    serde_json::from_str(&view.schema_json).map_err(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Failed to read schema").with("details", e.to_string())
    })
}

/// The body as JSON: `Content-Type: application/json` (as Flask's
/// `get_json` wants; it also keeps other sites' pages from posting here
/// without a CORS preflight), at most [`MAX_BODY_BYTES`]. Empty is `null`.
async fn json_body(headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    let too_large = || {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large").with("limit_bytes", MAX_BODY_BYTES)
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type must be application/json"));
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| too_large())?;
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        Invalid::new("Request body is not valid JSON").with("details", e.to_string()).into()
    })
}

fn bad_path(e: PathRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "Invalid path").with("details", e.body_text())
}

fn bad_query(e: QueryRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "Invalid query").with("details", e.body_text())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for ok in ["localhost", "LOCALHOST:8080", "127.0.0.1", "127.0.0.1:8080", "127.3.2.1:1", "[::1]", "[::1]:8080"] {
            assert!(is_loopback_host(&HeaderValue::from_static(ok)), "{ok}");
        }
        for bad in ["evil.example", "evil.example:8080", "192.168.1.5:8080", "localhost.evil.example", "[::2]:80", ""] {
            assert!(!is_loopback_host(&HeaderValue::from_static(bad)), "{bad}");
        }
    }
}
