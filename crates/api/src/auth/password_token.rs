//! Spending an invitation or password-reset token, shared by the `setPassword` mutation and
//! the `/set-password` form. The order is the point: throttle (cheap), look the token up
//! (one indexed read), and only for a live token hash the new password (Argon2 costs ~19 MiB
//! and tens of milliseconds), so a flood of forged tokens costs the server next to nothing.

use std::net::IpAddr;

use clickledger_domain::password::Password;
use clickledger_persistence::mail;
use clickledger_persistence::records::User;

use crate::Error;
use crate::sessions::Ended;
use crate::state::AppState;

/// Sets the password of the token's user, spends the token, ends the user's sessions and
/// returns the user. Unknown, used and expired
/// tokens are `NotFound`; over the per-token or per-address budget, `RateLimited`.
pub async fn redeem(
    state: &AppState,
    token: &str,
    password: &str,
    client: Option<IpAddr>,
) -> Result<User, Error> {
    let token_hash = mail::hash_token(token.trim());
    if !state.login_limiter.check(&format!("set-password/{token_hash}"), client) {
        return Err(Error::RateLimited);
    }
    let password = Password::parse(password)?;
    if !mail::token_is_live(&state.db, &token_hash).await? {
        return Err(Error::NotFound);
    }
    let password_hash = tokio::task::spawn_blocking(move || password.hash())
        .await
        .map_err(|err| Error::Internal(err.to_string()))?;
    let user = mail::redeem_token(&state.db, &token_hash, password_hash).await?;
    // The new password ended the user's sessions; its open connections close now.
    state.sessions.ended(Ended::User(user.id));
    Ok(user)
}
