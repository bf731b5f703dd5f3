use sea_orm::{DbErr, SqlErr};

/// Errors of the storage layer, classified once here so nothing above matches on messages.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Absent, or owned by another tenant, or not visible to this viewer: callers cannot tell
    /// which, by design.
    #[error("not found")]
    NotFound,
    /// The viewer may not do this at all (an affiliate trying a staff-only write).
    #[error("forbidden")]
    Forbidden,
    /// A uniqueness rule was broken; `field` is the input field that caused it.
    #[error("{field} is already taken")]
    Conflict { field: &'static str },
    /// A repeat of a known transaction whose payload differs in these fields.
    #[error("transaction already received with different {fields:?}")]
    Mismatch { fields: Vec<String> },
    /// A repeat that would move a conversion's status backwards.
    #[error("status cannot move from {from} to {to}")]
    StatusBackward { from: &'static str, to: &'static str },
    #[error(transparent)]
    Invalid(#[from] clickledger_domain::Error),
    #[error("database error: {0}")]
    Database(#[source] DbErr),
}

impl Error {
    /// Turns a unique-constraint violation into a conflict on `field`; anything else stays a
    /// database error.
    pub(crate) fn conflict_on(field: &'static str) -> impl FnOnce(Error) -> Error {
        move |err| match err {
            Error::Conflict { .. } => Error::Conflict { field },
            other => other,
        }
    }
}

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => Error::Conflict { field: "id" },
            _ => match err {
                DbErr::RecordNotFound(_) => Error::NotFound,
                other => Error::Database(other),
            },
        }
    }
}
