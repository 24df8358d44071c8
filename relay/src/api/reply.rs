//! Answers: JSON bodies, and errors in SpeedData's shape
//! `{"error": "...", "field"?: ..., "details"?: ..., ...}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{Map, Value};

use super::control::ControlError;
use super::validate::Invalid;

/// An error answer: a status and a JSON object with at least `error`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Map<String, Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> ApiError {
        let mut body = Map::new();
        body.insert("error".into(), Value::String(error.into()));
        ApiError { status, body }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> ApiError {
        self.body.insert(key.into(), value.into());
        self
    }

    /// SpeedData's 404 for a channel name.
    pub fn channel_not_found(name: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "Channel not found").with("name", name)
    }

    pub fn port_in_use(port: u16, used_by: &str) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "Port already in use")
            .with("port", port)
            .with("used_by", used_by)
    }

    pub fn name_in_use(name: &str) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "Channel name already registered").with("name", name)
    }
}

impl From<Invalid> for ApiError {
    fn from(i: Invalid) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, body: i.0 }
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> ApiError {
        match e {
            ControlError::NotFound(name) => ApiError::channel_not_found(&name),
            ControlError::NameInUse(name) => ApiError::name_in_use(&name),
            ControlError::PortInUse { port, used_by } => ApiError::port_in_use(port, &used_by),
            ControlError::Invalid(why) => {
                ApiError::new(StatusCode::BAD_REQUEST, "Invalid channel").with("details", why)
            }
            ControlError::Conflict(why) => ApiError::new(StatusCode::CONFLICT, why),
            ControlError::Failed(why) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Operation failed").with("details", why)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(Value::Object(self.body))).into_response()
    }
}

pub type Reply = Result<Response, ApiError>;

/// 200 with `v` as JSON.
pub fn ok(v: impl serde::Serialize) -> Reply {
    Ok(Json(v).into_response())
}

/// `status` with `v` as JSON.
pub fn with_status(status: StatusCode, v: impl serde::Serialize) -> Reply {
    Ok((status, Json(v)).into_response())
}
