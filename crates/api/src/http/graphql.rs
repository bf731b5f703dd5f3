//! GraphQL over HTTP and WebSocket, with the transport-level limits async-graphql leaves to
//! us: body size, batch size, and no mutations over GET (a GET can be triggered cross-site by
//! an `<img>` tag; a mutation must not be).

use std::time::Duration;

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource, WebSocketProtocols};
use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{BatchRequest, Data as GqlData};
use async_graphql_poem::{GraphQLProtocol, GraphQLWebSocket};
use futures_util::{SinkExt, StreamExt};
use poem::http::StatusCode;
use poem::web::websocket::{Message, WebSocket};
use poem::web::{Data, Html, Json};
use poem::{Body, IntoResponse, Request, Response, handler};
use serde_json::json;
use tokio::sync::mpsc;

use super::{authenticate, authenticate_token, client_ip};
use crate::auth::Authentication;
use crate::graphql::{AppSchema, ClientIp, LongLivedSession};
use crate::state::SharedState;

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
    let auth = authenticate(&state, req).await;
    let ip = ClientIp(client_ip(req));
    let batch = match batch {
        BatchRequest::Single(request) => BatchRequest::Single(with_caller(request, auth, ip)),
        BatchRequest::Batch(requests) if requests.len() > MAX_BATCH => {
            return transport_error(
                StatusCode::BAD_REQUEST,
                "BATCH_TOO_LARGE",
                &format!("at most {MAX_BATCH} operations per batch"),
            );
        }
        BatchRequest::Batch(requests) => {
            BatchRequest::Batch(requests.into_iter().map(|request| with_caller(request, auth, ip)).collect())
        }
    };
    Json(schema.execute_batch(batch).await).into_response()
}

/// GET serves GraphiQL to a browser, and executes queries (never mutations) given as
/// `?query=…`.
#[handler]
pub async fn get(req: &Request, schema: Data<&AppSchema>, state: Data<&SharedState>) -> Response {
    let query_string = req.uri().query().unwrap_or_default();
    if !query_string.split('&').any(|pair| pair.starts_with("query=")) {
        return Html(
            GraphiQLSource::build().endpoint("/graphql").subscription_endpoint("/graphql/ws").finish(),
        )
        .into_response();
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
    Json(schema.execute(with_caller(request, auth, ClientIp(client_ip(req)))).await).into_response()
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

/// Subscriptions. The token travels in the `connection_init` payload, as `{"token": …}` or
/// `{"Authorization": "Bearer …"}`.
#[handler]
pub async fn websocket(
    schema: Data<&AppSchema>,
    state: Data<&SharedState>,
    protocol: GraphQLProtocol,
    ws: WebSocket,
) -> impl IntoResponse {
    let schema = schema.clone();
    let state = state.clone();
    ws.protocols(ALL_WEBSOCKET_PROTOCOLS).on_upgrade(move |socket| async move {
        let (socket_sink, socket_stream) = socket.split();
        // Everything we send goes through one queue, so keep-alives can join the GraphQL
        // messages without a second writer on the socket.
        let (outgoing, mut queued) = mpsc::channel::<Message>(256);
        let writer = tokio::spawn(async move {
            let mut socket_sink = socket_sink;
            while let Some(message) = queued.recv().await {
                if socket_sink.send(message).await.is_err() {
                    break;
                }
            }
        });
        let graphql_sink =
            futures_util::sink::unfold(outgoing.clone(), |tx: mpsc::Sender<Message>, message| async move {
                tx.send(message).await.map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
                Ok::<_, std::io::Error>(tx)
            });

        let (initialised, init_seen) = tokio::sync::watch::channel(false);
        let serve = GraphQLWebSocket::new_with_pair(Box::pin(graphql_sink), socket_stream, schema, protocol)
            .on_connection_init(move |payload| async move {
                let _ = initialised.send(true);
                let auth = match token_from_init(&payload) {
                    Some(token) => authenticate_token(&state, &token).await,
                    None => Authentication::Anonymous,
                };
                if auth == Authentication::Invalid {
                    return Err(crate::Error::Unauthenticated.into_gql());
                }
                let mut data = GqlData::default();
                data.insert(auth);
                data.insert(ClientIp(None));
                data.insert(LongLivedSession);
                Ok(data)
            })
            .serve();

        let mut init_watch = init_seen.clone();
        let watchdog = async move {
            let initialised =
                tokio::time::timeout(INIT_TIMEOUT, async { init_watch.wait_for(|seen| *seen).await.is_ok() })
                    .await;
            if initialised == Ok(true) {
                std::future::pending::<()>().await;
            }
        };
        let legacy = protocol.0 == WebSocketProtocols::SubscriptionsTransportWS;
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
                if outgoing.send(ping).await.is_err() {
                    break;
                }
            }
        };
        tokio::select! {
            () = serve => {}
            () = watchdog => tracing::debug!("websocket closed: no connection_init within {INIT_TIMEOUT:?}"),
            () = keep_alive => {}
        }
        writer.abort();
    })
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
