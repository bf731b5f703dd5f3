use sea_orm::{DbErr, RuntimeErr, SqlErr};

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
    /// A statement's entries changed status after it was closed: paying its stored balance
    /// would pay the wrong amount.
    #[error("{0}")]
    StaleStatement(Box<StaleBalance>),
    #[error(transparent)]
    Invalid(#[from] clickledger_domain::Error),
    /// A stored value this build cannot read (an unknown model or reason): never defaulted,
    /// since a silent default would credit or explain a conversion wrongly.
    /// An import's rows that the database refused (a code another tenant uses, an e-mail
    /// another affiliate has), each with its file and line; nothing was written.
    #[error(transparent)]
    Import(#[from] clickledger_domain::migration::ImportErrors),
    /// A stored secret does not open with the configured keys.
    #[error(transparent)]
    Sealed(#[from] crate::sealed::SealError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database cannot be reached just now: no connection within the pool's acquire
    /// timeout, a connection lost mid-statement, or a server shutting down or starting up.
    /// The same call may succeed later; callers answer "try again" rather than fail.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {}", describe(.0))]
    Database(#[source] DbErr),
}

/// A closed statement's balance against what its entries come to now.
#[derive(Debug, thiserror::Error)]
#[error(
    "the statement's balance of {balance} is stale: its entries now come to {current} \
     (a difference of {difference}); close the period again, then pay"
)]
pub struct StaleBalance {
    pub balance: clickledger_domain::money::Money,
    pub current: clickledger_domain::money::Money,
    pub difference: clickledger_domain::money::Money,
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

impl Error {
    /// The database answered and refused the statement for its data (a value it cannot
    /// store, a broken constraint), as opposed to being unreachable or busy: retrying the
    /// same rows cannot help, but the same statement without the offending row would pass.
    pub fn is_refused_data(&self) -> bool {
        use sea_orm::RuntimeErr;
        use sqlx::error::ErrorKind;
        let Error::Database(DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime)) = self
        else {
            return false;
        };
        let RuntimeErr::SqlxError(err) = runtime else { return false };
        let sqlx::Error::Database(db_err) = err.as_ref() else { return false };
        match db_err.kind() {
            ErrorKind::UniqueViolation
            | ErrorKind::ForeignKeyViolation
            | ErrorKind::NotNullViolation
            | ErrorKind::CheckViolation => true,
            // PostgreSQL's SQLSTATE class 22 is "data exception" (a NUL in text, a number out
            // of range, bad encoding).
            _ => db_err.code().is_some_and(|code| code.len() == 5 && code.starts_with("22")),
        }
    }
}

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => Error::Conflict { field: "id" },
            _ => match err {
                DbErr::RecordNotFound(_) => Error::NotFound,
                other if is_unavailable(&other) => Error::Unavailable(describe(&other)),
                other => Error::Database(other),
            },
        }
    }
}

/// Whether the error says the database is out of reach rather than that it refused the
/// statement: no pooled connection in time, the connection broken (I/O, TLS) or not set up
/// (a protocol error while connecting), or PostgreSQL's
/// "connection exception" (SQLSTATE class 08) and "operator intervention" codes for a server
/// shutting down, crashed or still starting (57P01, 57P02, 57P03).
fn is_unavailable(err: &DbErr) -> bool {
    let (DbErr::Conn(RuntimeErr::SqlxError(sqlx_err))
    | DbErr::Exec(RuntimeErr::SqlxError(sqlx_err))
    | DbErr::Query(RuntimeErr::SqlxError(sqlx_err))) = err
    else {
        return matches!(err, DbErr::ConnectionAcquire(_));
    };
    match sqlx_err.as_ref() {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // A connection that could not be set up: something answered, but not PostgreSQL.
        sqlx::Error::Protocol(_) => matches!(err, DbErr::Conn(_)),
        sqlx::Error::Database(db_err) => db_err.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// A database error in words a reader can use. sqlx prints PostgreSQL's errors followed by
/// the line of PostgreSQL's own C source that raised them (" at line 948"), which means
/// nothing to an operator; the message and its SQLSTATE say what happened.
fn describe(err: &DbErr) -> String {
    let (DbErr::Conn(RuntimeErr::SqlxError(sqlx_err))
    | DbErr::Exec(RuntimeErr::SqlxError(sqlx_err))
    | DbErr::Query(RuntimeErr::SqlxError(sqlx_err))) = err
    else {
        return err.to_string();
    };
    match sqlx_err.as_database_error() {
        Some(db_err) => match db_err.code() {
            Some(code) => format!("{} (SQLSTATE {code})", db_err.message()),
            None => db_err.message().to_owned(),
        },
        None => sqlx_err.to_string(),
    }
}
