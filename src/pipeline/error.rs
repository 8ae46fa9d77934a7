//! The one error type that crosses from senders back to receivers.

use crate::codec::Code;

/// Why an append failed. `code` keeps the meaning for RPC callers;
/// `http_status` is set when a backend answered with a plain HTTP status
/// that an `/ingest` caller should see unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct AppendError {
    pub code: Code,
    pub http_status: Option<u16>,
    pub message: String,
    /// How long the client should wait before retrying (`Retry-After`),
    /// when the refusal says so.
    pub retry_after: Option<std::time::Duration>,
}

impl AppendError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            http_status: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A backend's non-2xx HTTP answer.
    pub fn from_http_status(status: u16, message: impl Into<String>) -> Self {
        Self {
            code: Code::meaning_of_http_status(status),
            http_status: Some(status),
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error with another RPC code (the HTTP status stays).
    pub fn with_code(mut self, code: Code) -> Self {
        self.code = code;
        self
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Code::Unavailable, message)
    }

    pub fn deadline_exceeded(message: impl Into<String>) -> Self {
        Self::new(Code::DeadlineExceeded, message)
    }

    /// Prefixes the message with context, keeping code and status.
    pub fn context(mut self, context: impl std::fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}
