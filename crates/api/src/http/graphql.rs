//! GraphQL over HTTP and WebSocket, with the transport-level limits async-graphql leaves to
//! us: body size, batch size, and no mutations over GET (a GET can be triggered cross-site by
//! an `<img>` tag; a mutation must not be).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols};
use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{BatchRequest, Data as GqlData};
use async_graphql_poem::{GraphQLProtocol, GraphQLWebSocket};
use chrono::{DateTime, Utc};
use futures_util::{SinkExt, StreamExt};
use poem::http::StatusCode;
use poem::web::websocket::{Message, WebSocket};
use poem::web::{Data, Json};
use poem::{Body, IntoResponse, Request, Response, handler};
use serde_json::json;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::live_ws::SharedSubscriptions;
use super::{authenticate, client_ip};
use crate::auth::{Authentication, Principal, Verified, retry_after_seconds};
use crate::graphql::{AppSchema, ClientIp, ClientUserAgent, LongLivedSession};
use crate::sessions::{Closed, Ended, Refusal};
use crate::state::{AppState, SharedState};

/// Largest accepted request body. Real queries are a few KiB; this leaves room for long
/// persisted documents while keeping a flood of huge bodies cheap to refuse.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Largest accepted batch. Batching multiplies the work of one request, so it is capped.
pub const MAX_BATCH: usize = 10;
/// A WebSocket that has not sent `connection_init` by then is closed.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the server pings an open WebSocket, so proxies do not cut idle subscriptions and
/// dead peers are noticed.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

fn transport_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })))
        .into_response()
}

fn with_caller(
    request: async_graphql::Request,
    auth: Authentication,
    ip: ClientIp,
) -> async_graphql::Request {
    request.data(auth).data(ip)
}

#[handler]
pub async fn post(
    req: &Request,
    body: Body,
    schema: Data<&AppSchema>,
    state: Data<&SharedState>,
) -> Response {
    let bytes = match super::read_limited(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(super::BodyError::TooLarge) => {
            return transport_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                &format!("request body exceeds {MAX_BODY_BYTES} bytes"),
            );
        }
        Err(_) => {
            return transport_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", "cannot read the request body");
        }
    };
    let batch: BatchRequest = match serde_json::from_slice(&bytes) {
        Ok(batch) => batch,
        Err(err) => {
            return transport_error(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                &format!("malformed GraphQL request: {err}"),
            );
        }
    };
    let operations = match &batch {
        BatchRequest::Single(_) => 1,
        BatchRequest::Batch(requests) => requests.len(),
    };
    if operations > MAX_BATCH {
        return transport_error(
            StatusCode::BAD_REQUEST,
            "BATCH_TOO_LARGE",
            &format!("at most {MAX_BATCH} operations per batch"),
        );
    }
    let auth = authenticate(&state, req).await;
    if let Some(refused) = over_budget(&state, auth, operations) {
        return refused;
    }
    let ip = ClientIp(client_ip(req));
    // Mutations come by POST only, so only here is a login's user agent needed.
    let agent = ClientUserAgent(
        req.headers().get(poem::http::header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned),
    );
    let batch = match batch {
        BatchRequest::Single(request) => BatchRequest::Single(with_caller(request, auth, ip).data(agent)),
        BatchRequest::Batch(requests) => BatchRequest::Batch(
            requests.into_iter().map(|request| with_caller(request, auth, ip).data(agent.clone())).collect(),
        ),
    };
    Json(schema.execute_batch(batch).await).into_response()
}

/// GET serves GraphiQL to a browser, and executes queries (never mutations) given as
/// `?query=…`.
#[handler]
pub async fn get(req: &Request, schema: Data<&AppSchema>, state: Data<&SharedState>) -> Response {
    let query_string = req.uri().query().unwrap_or_default();
    if !query_string.split('&').any(|pair| pair.starts_with("query=")) {
        return super::graphiql::page().into_response();
    }
    let mut request = match async_graphql::http::parse_query_string(query_string) {
        Ok(request) => request,
        Err(err) => return transport_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", &err.to_string()),
    };
    // GraphQL over HTTP names the parameter `operationName`; async-graphql's parser only reads
    // `operation_name`. Without this a GET could not pick one operation of a document.
    if request.operation_name.is_none() {
        request.operation_name = url::form_urlencoded::parse(query_string.as_bytes())
            .find(|(key, _)| key == "operationName")
            .map(|(_, value)| value.into_owned());
    }
    if is_mutation(&request) {
        return transport_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "mutations must be sent with POST",
        );
    }
    let auth = authenticate(&state, req).await;
    if let Some(refused) = over_budget(&state, auth, 1) {
        return refused;
    }
    Json(schema.execute(with_caller(request, auth, ClientIp(client_ip(req)))).await).into_response()
}

/// Spends a signed-in caller's GraphQL budget (`--graphql-requests-per-minute`, one per
/// operation); when it is spent, the answer: `429` with `Retry-After`, and `RATE_LIMITED` with
/// `extensions.retryAfter` (seconds) in the body. Anonymous callers have budgets of their own
/// where it matters (login, password tokens).
pub(super) fn over_budget(state: &AppState, auth: Authentication, operations: usize) -> Option<Response> {
    let Authentication::Authenticated(principal) = auth else { return None };
    let wait = state.graphql_limits.check(principal.user, operations).err()?;
    let retry_after = retry_after_seconds(wait);
    let error = crate::Error::Throttled { retry_after };
    let body = json!({ "errors": [{
        "message": error.to_string(),
        "extensions": { "code": error.code(), "retryAfter": retry_after },
    }] });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    response
        .headers_mut()
        .insert(poem::http::header::RETRY_AFTER, poem::http::HeaderValue::from(retry_after));
    Some(response)
}

fn is_mutation(request: &async_graphql::Request) -> bool {
    let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
        // Unparseable: execution reports the syntax error; it cannot run a mutation either.
        return false;
    };
    match &document.operations {
        DocumentOperations::Single(operation) => operation.node.ty == OperationType::Mutation,
        DocumentOperations::Multiple(operations) => match &request.operation_name {
            Some(name) => operations
                .iter()
                .any(|(op_name, op)| op_name.as_str() == name && op.node.ty == OperationType::Mutation),
            None => operations.values().any(|op| op.node.ty == OperationType::Mutation),
        },
    }
}

/// Why a sign-in on a WebSocket was refused: the close code and reason to send.
type RefusedInit = Arc<Mutex<Option<(u16, &'static str)>>>;

/// Close codes of `graphql-transport-ws` (the legacy `graphql-ws` borrows them: it has none
/// of its own beyond its `connection_error` message), and of WebSocket itself.
mod close {
    pub const GOING_AWAY: u16 = 1001;
    pub const INTERNAL_ERROR: u16 = 1011;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;
    pub const INIT_TIMEOUT: u16 = 4408;
}

/// The close frame for a session that does not (or no longer) stand.
fn refused(refusal: Refusal) -> (u16, &'static str) {
    match refusal {
        Refusal::Invalid => (close::UNAUTHORIZED, "unauthorized: invalid or expired token"),
        // A new password, or a suspension since lifted.
        Refusal::Revoked => (close::UNAUTHORIZED, "unauthorized: session ended; sign in again"),
        Refusal::Suspended => (close::FORBIDDEN, "forbidden: this account may not sign in"),
        Refusal::Unavailable => (close::INTERNAL_ERROR, "internal error: try again"),
    }
}

fn closed(why: Closed) -> (u16, &'static str) {
    match why {
        Closed::Expired => (close::UNAUTHORIZED, "unauthorized: token expired"),
        Closed::Refused(refusal) => refused(refusal),
    }
}

/// An accepted `connection_init`'s session, for its watcher.
struct OpenSession {
    principal: Principal,
    expires_at: DateTime<Utc>,
    ended: broadcast::Receiver<Ended>,
}

/// Subscriptions. The token travels in the `connection_init` payload, as `{"token": …}` or
/// `{"Authorization": "Bearer …"}`. A refused sign-in closes with 4401 (bad, expired or
/// ended token) or 4403 (the account is not active) and a reason, no `connection_init` within
/// [`INIT_TIMEOUT`] with 4408, and shutdown with 1001 "going away", so clients know whether
/// to fix their token or reconnect (elsewhere) at once. An accepted connection closes the
/// same way when its session ends: 4401 when its token expires or a new password ends it,
/// 4403 when the account is suspended.
#[handler]
pub async fn websocket(
    req: &Request,
    schema: Data<&AppSchema>,
    state: Data<&SharedState>,
    protocol: GraphQLProtocol,
    ws: WebSocket,
) -> impl IntoResponse {
    let schema = schema.clone();
    let state = state.clone();
    // Operations on the socket (a `login` sent over it, say) spend this address's budgets.
    let client = ClientIp(client_ip(req));
    ws.protocols(ALL_WEBSOCKET_PROTOCOLS).on_upgrade(move |socket| async move {
        let (socket_sink, socket_stream) = socket.split();
        // Everything we send goes through one queue, so keep-alives and our own close frames
        // join the GraphQL messages without a second writer on the socket.
        let (outgoing, mut queued) = mpsc::channel::<Message>(256);
        let writer = tokio::spawn(async move {
            let mut socket_sink = socket_sink;
            while let Some(message) = queued.recv().await {
                let closing = matches!(message, Message::Close(_));
                if socket_sink.send(message).await.is_err() || closing {
                    break;
                }
            }
        });
        // Why the sign-in was refused, if it was: the close frame we send says so, in place of
        // async-graphql's generic one.
        let refusal: RefusedInit = Arc::default();
        let graphql_sink = futures_util::sink::unfold(
            (outgoing.clone(), refusal.clone()),
            |(tx, refusal): (mpsc::Sender<Message>, RefusedInit), message| async move {
                let refused = refusal.lock().map(|r| r.is_some()).unwrap_or(false);
                if !(refused && matches!(message, Message::Close(_))) {
                    tx.send(message)
                        .await
                        .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
                }
                Ok::<_, std::io::Error>((tx, refusal))
            },
        );

        let (initialised, init_seen) = tokio::sync::watch::channel(false);
        let legacy = protocol.0 == WebSocketProtocols::SubscriptionsTransportWS;
        // Subscriptions are served from shared feeds (see `live_ws`); everything else of the
        // protocol stays with async-graphql.
        let authenticated = Arc::new(OnceLock::new());
        let mut shared = SharedSubscriptions::new(
            schema.clone(),
            state.clone(),
            legacy,
            outgoing.clone(),
            authenticated.clone(),
        );
        let socket_stream = socket_stream.filter_map(move |item| {
            std::future::ready(match item {
                Ok(message) => shared.intercept(message).map(Ok),
                Err(err) => Some(Err(err)),
            })
        });
        let init_state = state.clone();
        let init_refusal = refusal.clone();
        let (session_opened, session) = oneshot::channel::<OpenSession>();
        let serve = GraphQLWebSocket::new_with_pair(Box::pin(graphql_sink), socket_stream, schema, protocol)
            .on_connection_init(move |payload| async move {
                let _ = initialised.send(true);
                // Listening before the check: a session ended right after it is still heard.
                let ended = init_state.sessions.subscribe();
                let auth = match token_from_init(&payload) {
                    None => Authentication::Anonymous,
                    Some(token) => match super::verify_session(&init_state, &token).await {
                        Ok(verified) => {
                            let Verified { principal, expires_at } = verified;
                            let _ = session_opened.send(OpenSession { principal, expires_at, ended });
                            Authentication::Authenticated(principal)
                        }
                        Err(refusal) => {
                            let frame = refused(refusal);
                            if let Ok(mut slot) = init_refusal.lock() {
                                *slot = Some(frame);
                            }
                            return Err(crate::Error::Unauthenticated.extend_message(frame.1));
                        }
                    },
                };
                let _ = authenticated.set(auth);
                let mut data = connection_data(auth, true);
                data.insert(client);
                Ok(data)
            })
            .serve();

        // A signed-in connection lives as long as its session.
        let watch_state = state.clone();
        let session_over = async move {
            match session.await {
                Ok(OpenSession { principal, expires_at, ended }) => {
                    crate::sessions::watch(watch_state.db.clone(), principal, expires_at, ended).await
                }
                // Anonymous, refused or never initialised: nothing to watch.
                Err(_) => std::future::pending().await,
            }
        };

        let mut init_watch = init_seen.clone();
        let watchdog = async move {
            let initialised =
                tokio::time::timeout(INIT_TIMEOUT, async { init_watch.wait_for(|seen| *seen).await.is_ok() })
                    .await;
            if initialised == Ok(true) {
                std::future::pending::<()>().await;
            }
        };
        let mut shutdown = state.shutdown.subscribe();
        let going_away = async move {
            let _ = shutdown.wait_for(|down| *down).await;
        };
        let keep_alive_queue = outgoing.clone();
        let keep_alive = async move {
            let mut every = tokio::time::interval(KEEP_ALIVE);
            every.tick().await;
            loop {
                every.tick().await;
                let initialised = *init_seen.borrow();
                let ping = if legacy && initialised {
                    Message::text(r#"{"type":"ka"}"#)
                } else {
                    Message::Ping(Vec::new())
                };
                if keep_alive_queue.send(ping).await.is_err() {
                    break;
                }
            }
        };
        let last_word = tokio::select! {
            () = serve => refusal.lock().ok().and_then(|r| *r),
            () = watchdog => {
                tracing::debug!("websocket closed: no connection_init within {INIT_TIMEOUT:?}");
                Some((close::INIT_TIMEOUT, "connection initialisation timeout"))
            }
            () = going_away => Some((close::GOING_AWAY, "going away")),
            why = session_over => {
                tracing::debug!(?why, "websocket closed: its session ended");
                Some(closed(why))
            }
            () = keep_alive => None,
        };
        if let Some((code, reason)) = last_word {
            let _ = outgoing.send(Message::close_with(code, reason)).await;
        }
        // Let the writer flush what is queued (the close frame above, a refusal's
        // connection_error), then stop it.
        drop(outgoing);
        let mut writer = writer;
        if tokio::time::timeout(Duration::from_secs(2), &mut writer).await.is_err() {
            writer.abort();
        }
    })
}

/// What every operation of a WebSocket connection sees. `long_lived` marks the session so
/// that guards re-check the user before each operation; a shared feed resolving one more
/// event of an operation already checked leaves it out.
pub(super) fn connection_data(auth: Authentication, long_lived: bool) -> GqlData {
    let mut data = GqlData::default();
    data.insert(auth);
    data.insert(ClientIp(None));
    if long_lived {
        data.insert(LongLivedSession);
    }
    data
}

fn token_from_init(payload: &serde_json::Value) -> Option<String> {
    if let Some(token) = payload.get("token").and_then(|v| v.as_str()) {
        return Some(token.to_owned());
    }
    ["Authorization", "authorization"]
        .iter()
        .find_map(|key| payload.get(*key).and_then(|v| v.as_str()))
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(|token| token.trim().to_owned())
}
