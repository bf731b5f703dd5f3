/// Errors of the domain layer. Each names the offending field so that the edge can report it
/// (`BAD_USER_INPUT` with `field`, or an HTTP 400 body) without string matching.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// As `Invalid`, for a field whose name is made at run time (`customDialect.parameters[1].to`).
    #[error("{field}: {reason}")]
    InvalidAt { field: String, reason: String },
}

impl Error {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid { field, reason: reason.into() }
    }

    pub fn field(&self) -> &str {
        match self {
            Error::Invalid { field, .. } => field,
            Error::InvalidAt { field, .. } => field,
        }
    }
}
