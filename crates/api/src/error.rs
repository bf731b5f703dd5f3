//! The API's error type, mapped once to a GraphQL `extensions.code` and an HTTP status.

use async_graphql::ErrorExtensions;
use clickledger_domain::postback::FieldError;
use poem::http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("authentication required")]
    Unauthenticated,
    #[error("not allowed for this role")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("{field}: {message}")]
    BadInput { field: String, message: String },
    #[error("{field} is already taken")]
    Conflict { field: String },
    /// A conflict that needs explaining (what differs, what to do).
    #[error("{message}")]
    ConflictExplained { field: String, message: String },
    #[error("too many attempts; try again later")]
    RateLimited,
    /// Over a request budget (postbacks per API key, GraphQL requests per user); answered
    /// `429` with `Retry-After`.
    #[error("rate limit exceeded; retry after {retry_after} s")]
    Throttled { retry_after: u64 },
    /// A plain-HTTP request (a postback) with bad fields, every one of them named.
    #[error("{message}")]
    BadRequest { message: String, fields: Vec<FieldError> },
    #[error("{0}")]
    PayloadTooLarge(&'static str),
    /// A missing, unknown or revoked API key.
    #[error("{0}")]
    BadApiKey(&'static str),
    #[error("{0}")]
    BadSignature(&'static str),
    /// A repeat of a known transaction whose payload differs in these fields.
    #[error("txn_id was already received with a different {}", .differing_fields.join(", "))]
    TransactionMismatch { differing_fields: Vec<String> },
    #[error("status cannot move back from {from} to {to}")]
    StatusBackward { from: &'static str, to: &'static str },
    /// The database is out of reach for now: `503` with `Retry-After`, never a `500`.
    #[error("the database is unavailable; try again in a few seconds")]
    Unavailable,
    #[error("internal error")]
    Internal(String),
}

/// Seconds a client is asked to wait before retrying when the database is unavailable.
pub const RETRY_AFTER_SECONDS: u32 = 5;

impl Error {
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::BadInput { field: field.into(), message: message.into() }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Error::Unauthenticated | Error::BadApiKey(_) => "UNAUTHENTICATED",
            Error::BadRequest { .. } => "BAD_REQUEST",
            Error::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Error::BadSignature(_) => "BAD_SIGNATURE",
            Error::TransactionMismatch { .. } | Error::StatusBackward { .. } => "CONFLICT",
            Error::Forbidden => "FORBIDDEN",
            Error::NotFound => "NOT_FOUND",
            Error::BadInput { .. } => "BAD_USER_INPUT",
            Error::Conflict { .. } | Error::ConflictExplained { .. } => "CONFLICT",
            Error::RateLimited | Error::Throttled { .. } => "RATE_LIMITED",
            Error::Unavailable => "UNAVAILABLE",
            Error::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::Unauthenticated | Error::BadApiKey(_) | Error::BadSignature(_) => StatusCode::UNAUTHORIZED,
            Error::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::TransactionMismatch { .. } | Error::StatusBackward { .. } => StatusCode::CONFLICT,
            Error::Forbidden => StatusCode::FORBIDDEN,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::BadInput { .. } => StatusCode::BAD_REQUEST,
            Error::Conflict { .. } | Error::ConflictExplained { .. } => StatusCode::CONFLICT,
            Error::RateLimited | Error::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Error::BadInput { field, .. }
            | Error::Conflict { field }
            | Error::ConflictExplained { field, .. } => Some(field),
            Error::StatusBackward { .. } => Some("status"),
            _ => None,
        }
    }

    /// The answer to a plain HTTP request that failed this way.
    pub fn as_http(&self) -> poem::Response {
        poem::error::ResponseError::as_response(self)
    }

    /// The JSON body of a non-GraphQL error answer.
    pub fn to_json(&self) -> serde_json::Value {
        let mut error = serde_json::json!({ "code": self.code(), "message": self.to_string() });
        if let Some(field) = self.field() {
            error["field"] = field.into();
        }
        match self {
            Error::BadRequest { fields, .. } if !fields.is_empty() => {
                error["fields"] = fields
                    .iter()
                    .map(|f| serde_json::json!({ "field": f.field, "message": f.message }))
                    .collect();
            }
            Error::TransactionMismatch { differing_fields } => {
                error["differing_fields"] = differing_fields.clone().into();
            }
            Error::Throttled { retry_after } => error["retry_after"] = (*retry_after).into(),
            _ => {}
        }
        serde_json::json!({ "error": error })
    }
}

impl From<clickledger_domain::Error> for Error {
    fn from(err: clickledger_domain::Error) -> Self {
        match err {
            clickledger_domain::Error::Invalid { field, reason } => {
                Error::BadInput { field: field.to_owned(), message: reason }
            }
            clickledger_domain::Error::InvalidAt { field, reason } => {
                Error::BadInput { field, message: reason }
            }
        }
    }
}

impl From<clickledger_persistence::Error> for Error {
    fn from(err: clickledger_persistence::Error) -> Self {
        use clickledger_persistence::Error as Db;
        match err {
            Db::NotFound => Error::NotFound,
            Db::Forbidden => Error::Forbidden,
            Db::Conflict { field } => Error::Conflict { field: field.to_owned() },
            Db::Invalid(err) => err.into(),
            Db::Import(errors) => Error::BadInput { field: "import".to_owned(), message: errors.to_string() },
            Db::Mismatch { fields } => Error::TransactionMismatch { differing_fields: fields },
            Db::StatusBackward { from, to } => Error::StatusBackward { from, to },
            stale @ Db::StaleStatement(_) => {
                Error::ConflictExplained { field: "balance".to_owned(), message: stale.to_string() }
            }
            Db::Unavailable(detail) => {
                tracing::warn!(error = %detail, "database unavailable");
                Error::Unavailable
            }
            Db::Database(err) => {
                // The detail goes to the log, never to the client.
                tracing::error!(error = %err, "database error");
                Error::Internal(err.to_string())
            }
            Db::Sealed(err) => {
                tracing::error!(error = %err, "a stored secret does not open");
                Error::Internal(err.to_string())
            }
            Db::Corrupt(what) => {
                tracing::error!(what = %what, "corrupt stored data");
                Error::Internal(what)
            }
        }
    }
}

impl Error {
    pub fn into_gql(self) -> async_graphql::Error {
        self.extend()
    }

    /// The same error code with a more specific message.
    pub fn extend_message(self, message: &str) -> async_graphql::Error {
        let mut error = self.extend();
        error.message = message.to_owned();
        error
    }
}

impl ErrorExtensions for Error {
    fn extend(&self) -> async_graphql::Error {
        async_graphql::Error::new(self.to_string()).extend_with(|_, extensions| {
            extensions.set("code", self.code());
            if let Some(field) = self.field() {
                extensions.set("field", field);
            }
            if let Error::Throttled { retry_after } = self {
                extensions.set("retryAfter", *retry_after);
            }
        })
    }
}

/// `async_graphql::Error` converts from anything `Display`, which would drop our code, so
/// resolvers convert explicitly: `repo.get(id).await.gql()?`.
pub trait GqlResultExt<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T, E: Into<Error>> GqlResultExt<T> for Result<T, E> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|err| err.into().extend())
    }
}

impl poem::error::ResponseError for Error {
    fn status(&self) -> StatusCode {
        Error::status(self)
    }

    fn as_response(&self) -> poem::Response {
        let mut response =
            poem::Response::builder().status(Error::status(self)).content_type("application/json");
        match self {
            Error::Throttled { retry_after } => {
                response = response.header(poem::http::header::RETRY_AFTER, *retry_after);
            }
            Error::Unavailable => {
                response = response.header(poem::http::header::RETRY_AFTER, RETRY_AFTER_SECONDS);
            }
            _ => {}
        }
        response.body(self.to_json().to_string())
    }
}
