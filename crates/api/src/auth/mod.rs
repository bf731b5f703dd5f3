//! Who is calling: session tokens (JWT), the principal they carry, and login throttling.

mod hs256;
mod jwt;
pub mod password_token;
mod principal;
mod rate_limit;

pub use jwt::{Claims, JwtKeys, Verified};
pub use principal::{Authentication, Principal};
pub use rate_limit::{LoginLimiter, PostbackLimiter, RequestLimiter, TestSendLimiter, retry_after_seconds};
