//! Subscriptions over the WebSocket, served from shared live feeds.
//!
//! async-graphql's WebSocket handler still runs the connection (`connection_init`, ping/pong,
//! queries and mutations sent over the socket), but it would execute GraphQL for every event
//! and every subscriber. So subscription operations are taken out of its input here: each is
//! checked by executing it once (the resolver's guard and argument parsing, exactly as for any
//! operation), then attached to the feed of its (document, variables, viewer), and the feed's
//! payloads are sent wrapped in the connection's protocol (`next` for `graphql-transport-ws`,
//! `data` for the legacy `graphql-ws`), as async-graphql would have.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
use async_graphql::{Name, Pos, Response};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use poem::web::websocket::Message;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::graphql::connection_data;
use crate::auth::Authentication;
use crate::graphql::{AppSchema, LiveEvent, OpeningLive};
use crate::live::{FeedKey, Payload, ResolveFrame, subscriber_frames};
use crate::state::SharedState;

/// The subscriptions of one connection that are served from shared feeds.
pub struct SharedSubscriptions {
    connection: Arc<Connection>,
    running: HashMap<String, JoinHandle<()>>,
}

struct Connection {
    schema: AppSchema,
    state: SharedState,
    legacy: bool,
    outgoing: mpsc::Sender<Message>,
    /// Who the connection is, once `connection_init` was accepted.
    authenticated: Arc<OnceLock<Authentication>>,
}

impl Connection {
    /// False when the connection is gone.
    async fn send(&self, text: String) -> bool {
        self.outgoing.send(Message::Text(text)).await.is_ok()
    }
}

/// The client messages this module may take; anything else goes on to async-graphql.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Incoming {
    #[serde(alias = "start")]
    // Boxed: a request is large next to the other variants.
    Subscribe { id: String, payload: Box<async_graphql::Request> },
    #[serde(alias = "stop")]
    Complete { id: String },
    #[serde(other)]
    Other,
}

impl SharedSubscriptions {
    pub fn new(
        schema: AppSchema,
        state: SharedState,
        legacy: bool,
        outgoing: mpsc::Sender<Message>,
        authenticated: Arc<OnceLock<Authentication>>,
    ) -> Self {
        let connection = Arc::new(Connection { schema, state, legacy, outgoing, authenticated });
        SharedSubscriptions { connection, running: HashMap::new() }
    }

    /// Serves `message` if it starts or stops a subscription of an initialised connection;
    /// otherwise hands it back for async-graphql.
    pub fn intercept(&mut self, message: Message) -> Option<Message> {
        let Message::Text(text) = &message else { return Some(message) };
        let Some(auth) = self.connection.authenticated.get().copied() else { return Some(message) };
        let Ok(incoming) = serde_json::from_str::<Incoming>(text) else { return Some(message) };
        match incoming {
            Incoming::Subscribe { id, payload } => {
                // Every operation sent over the socket spends the user's GraphQL budget.
                if let Authentication::Authenticated(principal) = auth
                    && let Err(wait) = self.connection.state.graphql_limits.check(principal.user, 1)
                {
                    let retry_after = crate::auth::retry_after_seconds(wait);
                    tokio::spawn(refuse(
                        self.connection.clone(),
                        id,
                        crate::Error::Throttled { retry_after },
                    ));
                    return None;
                }
                let Some(since_variable) = subscription_plan(&payload) else { return Some(message) };
                // A reused ID replaces the old subscription, as async-graphql does.
                if let Some(old) = self.running.remove(&id) {
                    old.abort();
                }
                let task = serve(self.connection.clone(), auth, id.clone(), *payload, since_variable);
                self.running.insert(id, tokio::spawn(task));
                None
            }
            Incoming::Complete { id } => {
                let running = self.running.remove(&id)?;
                let finished = running.is_finished();
                running.abort();
                if !finished {
                    let connection = self.connection.clone();
                    tokio::spawn(async move { connection.send(complete_message(&id)).await });
                }
                None
            }
            Incoming::Other => Some(message),
        }
    }
}

impl Drop for SharedSubscriptions {
    fn drop(&mut self) {
        for running in self.running.values() {
            running.abort();
        }
    }
}

/// Answers operation `id` with `error` alone, then completes it.
async fn refuse(connection: Arc<Connection>, id: String, error: crate::Error) {
    let mut error = error.into_gql().into_server_error(Pos::default());
    error.locations.clear();
    let payload = serde_json::to_string(&Response::from_errors(vec![error])).unwrap_or_default();
    if connection.send(frame(&frame_prefix(connection.legacy, &id), &payload)).await {
        connection.send(complete_message(&id)).await;
    }
}

/// `Some` when the request's operation is a subscription: then the name of the variable that
/// only sets `since`, if any. Such a variable is left out of the feed key, so that clients
/// resuming from different cursors still share a feed once they are live.
fn subscription_plan(request: &async_graphql::Request) -> Option<Option<String>> {
    let document = async_graphql::parser::parse_query(&request.query).ok()?;
    let operation = match (&document.operations, &request.operation_name) {
        (DocumentOperations::Single(operation), _) => operation,
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name.as_str())?,
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next()?
        }
        (DocumentOperations::Multiple(_), None) => return None,
    };
    if operation.node.ty != OperationType::Subscription {
        return None;
    }
    // `statsLive` is not a feed of events: each subscriber's stream re-reads its own report
    // when woken, so async-graphql serves it like any subscription.
    let served_by_async_graphql = operation.node.selection_set.node.items.iter().any(
        |selection| matches!(&selection.node, Selection::Field(field) if field.node.name.node == "statsLive"),
    );
    if served_by_async_graphql {
        return None;
    }
    let since_variable = operation.node.selection_set.node.items.iter().find_map(|selection| {
        let Selection::Field(field) = &selection.node else { return None };
        let (_, value) = field.node.arguments.iter().find(|(name, _)| name.node == "since")?;
        // A variable displays as `$name`; a literal never starts with `$`.
        value.node.to_string().strip_prefix('$').map(str::to_owned)
    });
    // Its declaration and the `since` argument, nothing else (a use elsewhere could change
    // the frames).
    Some(since_variable.filter(|variable| mentions(&request.query, variable) == 2))
}

/// How often `$variable` occurs in `query` as a whole name.
fn mentions(query: &str, variable: &str) -> usize {
    let token = format!("${variable}");
    query
        .match_indices(&token)
        .filter(|(at, _)| {
            let next = query[at + token.len()..].chars().next();
            !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .count()
}

async fn serve(
    connection: Arc<Connection>,
    auth: Authentication,
    id: String,
    request: async_graphql::Request,
    since_variable: Option<String>,
) {
    let prefix = frame_prefix(connection.legacy, &id);
    let document = request.query.clone();
    let operation_name = request.operation_name.clone();
    let variables = request.variables.clone();

    // Opening: executed once like any operation, so the guard (with the long-lived session's
    // re-check that the user is still active) and the argument checks answer as usual.
    let opening = OpeningLive::default();
    let session = Arc::new(connection_data(auth, true));
    let mut opened =
        connection.schema.execute_stream_with_session_data(request.data(opening.clone()), session);
    if let Some(refused) = opened.next().await {
        let payload = serde_json::to_string(&refused).unwrap_or_default();
        if connection.send(frame(&prefix, &payload)).await {
            connection.send(complete_message(&id)).await;
        }
        return;
    }
    drop(opened);
    let Some(live) = opening.take() else {
        connection.send(complete_message(&id)).await;
        return;
    };

    let mut key_variables = variables.clone();
    if let Some(since) = &since_variable {
        key_variables.remove(&Name::new(since));
    }
    let key = FeedKey {
        document: document.clone(),
        operation_name: operation_name.clone(),
        variables: serde_json::to_string(&key_variables).unwrap_or_default(),
        scope: live.scope,
        role: live.role,
        topic: live.topic,
    };
    let state = &connection.state;
    let feed = state.feeds.join(key, || {
        Arc::new(LiveDocument {
            schema: connection.schema.clone(),
            document,
            operation_name,
            variables,
            // Without the long-lived marker: the viewer was checked when opening, and a
            // frame must not cost a database read.
            session: Arc::new(connection_data(auth, false)),
        })
    });
    let frames = subscriber_frames(feed, state.db.clone(), live.since);
    futures_util::pin_mut!(frames);
    let delivered = metrics::counter!("live_frames_total");
    while let Some(payload) = frames.next().await {
        let payload = match payload {
            Ok(payload) => payload,
            Err(err) => {
                let mut error = crate::Error::from(err).into_gql().into_server_error(Pos::default());
                error.locations.clear();
                let payload = serde_json::to_string(&Response::from_errors(vec![error])).unwrap_or_default();
                if !connection.send(frame(&prefix, &payload)).await {
                    return;
                }
                break;
            }
        };
        delivered.increment(1);
        if !connection.send(frame(&prefix, &payload)).await {
            return;
        }
    }
    connection.send(complete_message(&id)).await;
}

/// `{"type":"next","id":<id>,"payload":` (or `data` for the legacy protocol): what goes
/// before every payload of one subscription.
fn frame_prefix(legacy: bool, id: &str) -> String {
    let kind = if legacy { "data" } else { "next" };
    let id = serde_json::to_string(id).unwrap_or_default();
    format!(r#"{{"type":"{kind}","id":{id},"payload":"#)
}

fn frame(prefix: &str, payload: &str) -> String {
    let mut text = String::with_capacity(prefix.len() + payload.len() + 1);
    text.push_str(prefix);
    text.push_str(payload);
    text.push('}');
    text
}

fn complete_message(id: &str) -> String {
    let id = serde_json::to_string(id).unwrap_or_default();
    format!(r#"{{"type":"complete","id":{id}}}"#)
}

/// A feed's resolver: the subscription document, executed for one event at a time.
struct LiveDocument {
    schema: AppSchema,
    document: String,
    operation_name: Option<String>,
    variables: async_graphql::Variables,
    session: Arc<async_graphql::Data>,
}

impl ResolveFrame for LiveDocument {
    fn resolve(
        &self,
        event: clickledger_persistence::conversions::ConversionEvent,
    ) -> BoxFuture<'static, Payload> {
        let mut request = async_graphql::Request::new(self.document.clone())
            .variables(self.variables.clone())
            .data(LiveEvent::new(event));
        request.operation_name = self.operation_name.clone();
        let mut responses = self.schema.execute_stream_with_session_data(request, self.session.clone());
        Box::pin(async move {
            let response = responses.next().await.unwrap_or_else(|| {
                Response::from_errors(vec![async_graphql::ServerError::new(
                    "the event resolved to nothing",
                    None,
                )])
            });
            Payload::from(serde_json::to_string(&response).unwrap_or_default())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(query: &str, operation: Option<&str>) -> Option<Option<String>> {
        let mut request = async_graphql::Request::new(query);
        request.operation_name = operation.map(str::to_owned);
        subscription_plan(&request)
    }

    #[test]
    fn only_subscriptions_are_taken() {
        assert_eq!(plan("subscription { conversions { id } }", None), Some(None));
        assert_eq!(plan("{ conversions { edges { node { id } } } }", None), None);
        assert_eq!(plan("mutation { logout }", None), None);
        assert_eq!(plan("subscription {", None), None, "a syntax error is async-graphql's to report");
        let two = "query A { me { id } } subscription B { conversions { id } }";
        assert_eq!(plan(two, Some("B")), Some(None));
        assert_eq!(plan(two, Some("A")), None);
        assert_eq!(plan(two, None), None);
        let stats = "subscription { live: statsLive(input: {from: \"x\", to: \"y\"}) { rows { clicks } } }";
        assert_eq!(plan(stats, None), None, "statsLive is async-graphql's");
    }

    #[test]
    fn the_since_variable_is_left_out_of_the_key_only_when_it_does_nothing_else() {
        let q = "subscription($since: String) { conversions(since: $since) { id } }";
        assert_eq!(plan(q, None), Some(Some("since".to_owned())));
        let q = "subscription($s: String, $sx: String) { conversions(since: $s) { id } }";
        assert_eq!(plan(q, None), Some(Some("s".to_owned())), "$sx is another name");
        let q = "subscription($s: String) { conversions(since: $s) { id a: id @include(if: $s) } }";
        assert_eq!(plan(q, None), Some(None));
        assert_eq!(plan("subscription { conversions(since: \"c1\") { id } }", None), Some(None));
    }

    #[test]
    fn frames_are_wrapped_per_protocol() {
        let payload = r#"{"data":{"conversions":{"id":"cnv_1"}}}"#;
        let next = frame(&frame_prefix(false, "7"), payload);
        let data = frame(&frame_prefix(true, "a\"b"), payload);
        let next: serde_json::Value = serde_json::from_str(&next).unwrap();
        let data: serde_json::Value = serde_json::from_str(&data).unwrap();
        assert_eq!(
            next,
            serde_json::json!({ "type": "next", "id": "7", "payload": { "data": { "conversions": { "id": "cnv_1" } } } })
        );
        assert_eq!(data["type"], "data");
        assert_eq!(data["id"], "a\"b");
        assert_eq!(data["payload"], next["payload"]);
        let complete: serde_json::Value = serde_json::from_str(&complete_message("7")).unwrap();
        assert_eq!(complete, serde_json::json!({ "type": "complete", "id": "7" }));
    }
}
