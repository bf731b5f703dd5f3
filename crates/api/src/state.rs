use std::sync::Arc;

use clickledger_persistence::Db;

use crate::auth::{JwtKeys, LoginLimiter};

/// Everything a request handler may need, shared by every request.
pub struct AppState {
    pub db: Db,
    pub jwt: JwtKeys,
    pub login_limiter: LoginLimiter,
    /// Base URL of the tracking domain, without a trailing slash.
    pub public_url: String,
    pub signup_enabled: bool,
}

pub type SharedState = Arc<AppState>;
