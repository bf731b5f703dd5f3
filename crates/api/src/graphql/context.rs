use std::net::IpAddr;

use async_graphql::Context;

use crate::auth::{Authentication, Principal};
use crate::state::SharedState;

/// The caller's address (see `http::client_address`), for per-address throttling; over
/// WebSocket, the address that opened the socket.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

/// The caller's `User-Agent` (HTTP POST only): an affiliate's login records it with its
/// address, for the self-referral rule's device match.
#[derive(Debug, Clone)]
pub struct ClientUserAgent(pub Option<String>);

/// Marks a long-lived connection (WebSocket). Its token was checked at `connection_init`;
/// guards re-check its session before each operation (the connection itself is also closed
/// when the session ends, see `sessions::watch`).
#[derive(Debug, Clone, Copy)]
pub struct LongLivedSession;

pub fn state<'a>(ctx: &Context<'a>) -> &'a SharedState {
    // Always present: `build_schema` is the only constructor of a served schema.
    ctx.data_unchecked::<SharedState>()
}

pub fn principal<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Principal> {
    ctx.data_opt::<Authentication>()
        .unwrap_or(&Authentication::Anonymous)
        .principal()
        .map_err(crate::Error::into_gql)
}

pub fn client_ip(ctx: &Context<'_>) -> Option<IpAddr> {
    ctx.data_opt::<ClientIp>().and_then(|ip| ip.0)
}

pub fn client_user_agent<'a>(ctx: &Context<'a>) -> Option<&'a str> {
    ctx.data_opt::<ClientUserAgent>().and_then(|agent| agent.0.as_deref())
}
