//! The control API: HTTP/JSON on 127.0.0.1:8080 by default, compatible with
//! SpeedData's registration API (its web page and Python client use it), plus
//! per-channel counters and Prometheus metrics.
//!
//! | method | path | answer |
//! | --- | --- | --- |
//! | GET | `/api/v1/health` | `{status: "ok", service, version}` |
//! | GET | `/api/v1/channels[?status=registered\|active]` | `{channels: [channel]}` |
//! | POST | `/api/v1/channels` `{name, port, schema, config}` | 201 `{status: "success", name, port, pid, message, channel}`; 400, 409, 413, 415 |
//! | GET | `/api/v1/channels/{name}` | a channel; 404 |
//! | DELETE | `/api/v1/channels/{name}` | `{status: "success", name, message}`; 404 |
//! | GET | `/api/v1/channels/{name}/schema` | the schema (JSON) |
//! | POST | `/api/v1/channels/{name}/validate-schema` `{schema}` | `{valid: true, message}`; 409 `{valid: false, …}` |
//! | GET | `/api/v1/channels/{name}/stats` | `{name, status, pid, restarts, stats}` |
//! | GET | `/api/v1/ports/available?start=&end=` | `{range, available, count}` (inclusive) |
//! | GET | `/api/v1/ports/{port}/status` | `{port, available, status: "free"\|"in_use", channel?}` |
//! | GET | `/metrics` | Prometheus text |
//!
//! A channel is `{name, port, schema_path, status, pid, created_at, config,
//! source, restarts}`. Errors are `{"error": "...", ...}` with SpeedData's
//! messages where it has them. Every input is checked ([`validate`]) before
//! [`Control`] sees it; a schema path must lead inside
//! [`SchemaDirs::allowed`].

pub mod client;
pub mod control;
pub mod metrics;
pub mod overrides;
mod reply;
mod routes;
pub mod validate;

pub use control::{ChannelStatus, ChannelView, Control, ControlError, NewChannel, SchemaDirs, Source};
pub use overrides::{effective_config, DecimationOverride, Overrides, RotationMode, RotationOverride};
pub use reply::ApiError;
pub use routes::{router, MAX_BODY_BYTES};

use anyhow::Context;
use tokio::net::TcpListener;

/// Where the API listens unless told otherwise (SpeedData's port).
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";

/// Answers on `listener` until the future is dropped. On a loopback address
/// only requests whose `Host` is `localhost` or a loopback address are
/// answered (403 otherwise), so a web page cannot reach the API by re-binding
/// its own domain name to 127.0.0.1.
pub async fn serve<C: Control>(listener: TcpListener, control: C) -> anyhow::Result<()> {
    let local = listener.local_addr().context("reading the control API's address")?;
    let app = router(control, local.ip().is_loopback());
    axum::serve(listener, app)
        .await
        .with_context(|| format!("serving the control API on {local}"))
}
