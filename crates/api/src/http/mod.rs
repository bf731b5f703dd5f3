//! Plain HTTP routes: GraphQL transport (POST, GET, WebSocket), health and metrics.

pub mod api_key;
pub mod client_address;
pub mod dashboard;
pub mod exports;
pub mod graphiql;
pub mod graphql;
mod live_ws;
pub mod ops;
pub mod postback;
pub mod reconcile;
pub mod reports;
pub mod set_password;

use poem::Request;

pub use client_address::client_ip;

use crate::auth::{Authentication, Verified};
use crate::sessions::Refusal;
use crate::state::AppState;

/// Where people sign in, named in invitations and on the set-password page: the dashboard.
pub fn sign_in_url(public_url: &str) -> String {
    format!("{public_url}/dashboard")
}

/// Reads `Authorization: Bearer <jwt>`. A present but bad token is `Invalid`, not anonymous,
/// so the caller learns that its token is the problem.
pub async fn authenticate(state: &AppState, req: &Request) -> Authentication {
    let Some(header) = req.headers().get(poem::http::header::AUTHORIZATION) else {
        return Authentication::Anonymous;
    };
    let token = header.to_str().ok().and_then(|value| value.strip_prefix("Bearer ")).map(str::trim);
    match token {
        Some(token) => authenticate_token(state, token).await,
        None => Authentication::Invalid,
    }
}

/// Verifies a token and that its session still stands (see `sessions`): a suspended user's
/// or a replaced password's tokens stop working at once, not at expiry.
pub async fn authenticate_token(state: &AppState, token: &str) -> Authentication {
    match verify_session(state, token).await {
        Ok(verified) => Authentication::Authenticated(verified.principal),
        Err(_) => Authentication::Invalid,
    }
}

/// The token's principal and expiry, or why its session does not stand.
pub async fn verify_session(state: &AppState, token: &str) -> Result<Verified, Refusal> {
    let verified = state.jwt.verify(token).ok_or(Refusal::Invalid)?;
    crate::sessions::check(&state.db, &verified.principal).await?;
    Ok(verified)
}

/// Why a request body was not read.
pub enum BodyError {
    TooLarge,
    Unreadable,
}

/// Reads at most `limit` bytes of body. A larger body is drained (up to a few times the
/// limit) before the caller answers `413`, so a client still writing its body reads our
/// answer instead of a broken pipe; beyond that the connection is simply cut.
pub async fn read_limited(body: poem::Body, limit: usize) -> Result<bytes::Bytes, BodyError> {
    use futures_util::StreamExt;
    let drain_cap = limit.saturating_mul(4);
    let mut stream = std::pin::pin!(body.into_bytes_stream());
    let mut buffer = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| BodyError::Unreadable)?;
        seen = seen.saturating_add(chunk.len());
        if seen <= limit {
            buffer.extend_from_slice(&chunk);
        } else if seen > drain_cap {
            return Err(BodyError::TooLarge);
        }
    }
    if seen > limit { Err(BodyError::TooLarge) } else { Ok(buffer.freeze()) }
}
