//! GraphQL over WebSocket at `/graphql/ws`: both sub-protocols, authentication in
//! `connection_init`, and the init timeout.

use std::time::{Duration, Instant};

use clickledger_e2e::{TestApp, spawn_app};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const TRANSPORT_WS: &str = "graphql-transport-ws";
const LEGACY_WS: &str = "graphql-ws";

async fn connect(app: &TestApp, protocol: &str) -> Ws {
    let url = format!("{}/graphql/ws", app.base.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_str(protocol).unwrap());
    let (ws, response) = connect_async(request).await.expect("WebSocket upgrade");
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol, "the server speaks {protocol}");
    ws
}

async fn send(ws: &mut Ws, message: Value) {
    ws.send(Message::Text(message.to_string().into())).await.unwrap();
}

/// What the server did next.
#[derive(Debug)]
enum Next {
    Json(Value),
    /// A close frame (with its code), the stream ending, or the connection dropping.
    Closed(Option<CloseCode>),
}

async fn next(ws: &mut Ws, within: Duration) -> Next {
    loop {
        let message = tokio::time::timeout(within, ws.next()).await.expect("the server answers in time");
        return match message {
            Some(Ok(Message::Text(text))) => Next::Json(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(frame))) => Next::Closed(frame.map(|f| f.code)),
            Some(Ok(other)) => panic!("unexpected frame {other:?}"),
            None
            | Some(Err(
                WsError::ConnectionClosed | WsError::AlreadyClosed | WsError::Protocol(_) | WsError::Io(_),
            )) => Next::Closed(None),
            Some(Err(err)) => panic!("WebSocket error {err}"),
        };
    }
}

async fn expect_json(ws: &mut Ws) -> Value {
    match next(ws, Duration::from_secs(5)).await {
        Next::Json(value) => value,
        closed => panic!("expected a message, got {closed:?}"),
    }
}

/// Runs one query over an acknowledged `graphql-transport-ws` connection.
async fn query(ws: &mut Ws, id: &str, query: &str) -> Value {
    send(ws, json!({ "id": id, "type": "subscribe", "payload": { "query": query } })).await;
    let answer = expect_json(ws).await;
    assert_eq!(answer["id"], id, "{answer}");
    if answer["type"] == "next" {
        let complete = expect_json(ws).await;
        assert_eq!(complete, json!({ "id": id, "type": "complete" }));
    }
    answer
}

#[tokio::test]
async fn graphql_transport_ws_acks_a_valid_token_and_runs_as_its_owner() {
    let app = spawn_app!().await;
    let (token, _) = app.sign_up("acme").await;
    let mut ws = connect(&app, TRANSPORT_WS).await;
    send(&mut ws, json!({ "type": "connection_init", "payload": { "token": token } })).await;
    assert_eq!(expect_json(&mut ws).await["type"], "connection_ack");
    let answer = query(&mut ws, "1", "{ me { role tenant { slug } } }").await;
    assert_eq!(answer["type"], "next", "{answer}");
    assert_eq!(answer["payload"]["data"]["me"], json!({ "role": "OWNER", "tenant": { "slug": "acme" } }));

    // `Authorization: Bearer …` in the payload works too.
    let mut ws = connect(&app, TRANSPORT_WS).await;
    send(
        &mut ws,
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }),
    )
    .await;
    assert_eq!(expect_json(&mut ws).await["type"], "connection_ack");
    let answer = query(&mut ws, "a", "{ me { role } }").await;
    assert_eq!(answer["payload"]["data"]["me"]["role"], "OWNER", "{answer}");
}

#[tokio::test]
async fn an_anonymous_connection_is_acked_but_gets_nothing() {
    let app = spawn_app!().await;
    app.sign_up("acme").await;
    let mut ws = connect(&app, TRANSPORT_WS).await;
    send(&mut ws, json!({ "type": "connection_init" })).await;
    assert_eq!(expect_json(&mut ws).await["type"], "connection_ack");
    let answer = query(&mut ws, "1", "{ me { role } }").await;
    let text = answer.to_string();
    assert!(text.contains("UNAUTHENTICATED"), "{answer}");
    assert!(!text.contains("OWNER"), "{answer}");
}

#[tokio::test]
async fn an_invalid_token_closes_the_connection() {
    let app = spawn_app!().await;
    let (token, _) = app.sign_up("acme").await;
    let mut tampered = token.clone();
    tampered.insert(tampered.len() - 3, 'x');
    for bad in [tampered, "not-a-token".to_owned()] {
        let mut ws = connect(&app, TRANSPORT_WS).await;
        send(&mut ws, json!({ "type": "connection_init", "payload": { "token": bad } })).await;
        match next(&mut ws, Duration::from_secs(5)).await {
            Next::Closed(code) => {
                assert_ne!(code, Some(CloseCode::Normal), "an error close, not a normal one")
            }
            Next::Json(message) => panic!("expected the connection closed, got {message}"),
        }
        // Nothing can be run on it any more.
        let _ = send_quietly(
            &mut ws,
            json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ me { role } }" } }),
        )
        .await;
        assert!(matches!(next(&mut ws, Duration::from_secs(5)).await, Next::Closed(_)));
    }
}

async fn send_quietly(ws: &mut Ws, message: Value) -> Result<(), WsError> {
    ws.send(Message::Text(message.to_string().into())).await
}

#[tokio::test]
async fn a_query_before_connection_init_is_refused() {
    let app = spawn_app!().await;
    app.sign_up("acme").await;
    let mut ws = connect(&app, TRANSPORT_WS).await;
    send(&mut ws, json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ me { role } }" } })).await;
    assert!(matches!(next(&mut ws, Duration::from_secs(5)).await, Next::Closed(_)));
}

#[tokio::test]
async fn a_suspended_affiliates_open_connection_stops_serving() {
    let app = spawn_app!().await;
    let (owner, _) = app.sign_up("acme").await;
    let ann = app.create_affiliate(&owner, "Ann", "ann@partners.test", Some("ann password 1"), None).await;
    let token = app.login_token("acme", "ann@partners.test", "ann password 1").await;
    let mut ws = connect(&app, TRANSPORT_WS).await;
    send(&mut ws, json!({ "type": "connection_init", "payload": { "token": token } })).await;
    assert_eq!(expect_json(&mut ws).await["type"], "connection_ack");
    let answer = query(&mut ws, "1", "{ me { affiliate { id } } }").await;
    assert_eq!(answer["payload"]["data"]["me"]["affiliate"]["id"], ann["id"], "{answer}");

    app.ok(
        Some(&owner),
        "mutation($id: ID!) { suspendAffiliate(id: $id) { id } }",
        json!({ "id": ann["id"] }),
    )
    .await;
    // The next operation on the already-open connection is refused (or the connection is gone).
    let _ = send_quietly(&mut ws, json!({ "id": "2", "type": "subscribe", "payload": { "query": "{ me { affiliate { id } } trackingLinks { nodes { id } } }" } })).await;
    match next(&mut ws, Duration::from_secs(5)).await {
        Next::Closed(_) => {}
        Next::Json(answer) => {
            assert!(
                answer.to_string().contains("UNAUTHENTICATED"),
                "a suspended affiliate is still served: {answer}"
            );
            assert!(!answer.to_string().contains(ann["id"].as_str().unwrap()), "{answer}");
        }
    }
}

#[tokio::test]
async fn legacy_graphql_ws_acks_and_runs_queries() {
    let app = spawn_app!().await;
    let (token, _) = app.sign_up("acme").await;
    let mut ws = connect(&app, LEGACY_WS).await;
    send(&mut ws, json!({ "type": "connection_init", "payload": { "token": token } })).await;
    assert_eq!(expect_json(&mut ws).await["type"], "connection_ack");
    send(&mut ws, json!({ "id": "1", "type": "start", "payload": { "query": "{ me { role } }" } })).await;
    let data = expect_json(&mut ws).await;
    assert_eq!(data["type"], "data", "{data}");
    assert_eq!(data["payload"]["data"]["me"]["role"], "OWNER", "{data}");
    assert_eq!(expect_json(&mut ws).await, json!({ "id": "1", "type": "complete" }));

    // An invalid token: a connection_error, and nothing acked.
    let mut ws = connect(&app, LEGACY_WS).await;
    send(&mut ws, json!({ "type": "connection_init", "payload": { "token": "not-a-token" } })).await;
    match next(&mut ws, Duration::from_secs(5)).await {
        Next::Json(message) => assert_eq!(message["type"], "connection_error", "{message}"),
        Next::Closed(_) => {}
    }
    send_quietly(&mut ws, json!({ "id": "1", "type": "start", "payload": { "query": "{ me { role } }" } }))
        .await
        .ok();
    loop {
        match next(&mut ws, Duration::from_secs(5)).await {
            Next::Closed(_) => break,
            Next::Json(message) => assert!(!message.to_string().contains("OWNER"), "{message}"),
        }
    }
}

#[tokio::test]
async fn a_connection_without_init_is_closed_after_10_seconds() {
    let app = spawn_app!().await;
    let started = Instant::now();
    let mut ws = connect(&app, TRANSPORT_WS).await;
    // A ping is not an init: it answers, but does not keep the connection open.
    send(&mut ws, json!({ "type": "ping" })).await;
    assert_eq!(expect_json(&mut ws).await["type"], "pong");
    match next(&mut ws, Duration::from_secs(15)).await {
        Next::Closed(_) => {}
        Next::Json(message) => panic!("expected the connection closed, got {message}"),
    }
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(9), "closed too early: {waited:?}");
    assert!(waited <= Duration::from_secs(14), "closed too late: {waited:?}");
}
