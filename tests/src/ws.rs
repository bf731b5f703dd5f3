//! A small GraphQL-over-WebSocket client for subscriptions, speaking either
//! `graphql-transport-ws` (connection_init → connection_ack, subscribe, next/error/complete,
//! ping/pong) or the legacy `graphql-ws` (connection_init → connection_ack, start,
//! data/error/complete, ka).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::TestApp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsProtocol {
    /// `graphql-transport-ws` (the graphql-ws library's protocol).
    TransportWs,
    /// The legacy `graphql-ws` (subscriptions-transport-ws) protocol.
    Legacy,
}

impl WsProtocol {
    pub fn name(self) -> &'static str {
        match self {
            WsProtocol::TransportWs => "graphql-transport-ws",
            WsProtocol::Legacy => "graphql-ws",
        }
    }

    fn subscribe_type(self) -> &'static str {
        match self {
            WsProtocol::TransportWs => "subscribe",
            WsProtocol::Legacy => "start",
        }
    }

    fn data_type(self) -> &'static str {
        match self {
            WsProtocol::TransportWs => "next",
            WsProtocol::Legacy => "data",
        }
    }
}

/// One WebSocket connection to `/graphql/ws`, initialised and acknowledged.
pub struct GqlWs {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub protocol: WsProtocol,
    next_id: u64,
}

/// How long the handshake and `connection_ack` may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl GqlWs {
    /// Connects, sends `connection_init` with `{"token": …}` and waits for `connection_ack`.
    pub async fn connect(app: &TestApp, token: Option<&str>, protocol: WsProtocol) -> GqlWs {
        let mut ws = GqlWs::open(app, protocol).await;
        let payload = match token {
            Some(token) => json!({ "token": token }),
            None => json!({}),
        };
        ws.send(json!({ "type": "connection_init", "payload": payload })).await;
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        loop {
            let message = ws.recv_until(deadline).await.expect("no connection_ack within 10 s");
            match message["type"].as_str() {
                Some("connection_ack") => return ws,
                Some("ka") | Some("ping") | Some("pong") => continue,
                _ => panic!("expected connection_ack, got {message}"),
            }
        }
    }

    /// Opens the socket with the sub-protocol negotiated, without `connection_init`.
    pub async fn open(app: &TestApp, protocol: WsProtocol) -> GqlWs {
        let url = format!("{}/graphql/ws", app.base.replacen("http://", "ws://", 1));
        let mut request = url.into_client_request().expect("WebSocket request");
        request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(protocol.name()));
        let (socket, response) =
            tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(request))
                .await
                .expect("WebSocket handshake timed out")
                .expect("WebSocket handshake");
        let negotiated = response.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok());
        assert_eq!(
            negotiated,
            Some(protocol.name()),
            "server must accept the {} sub-protocol",
            protocol.name()
        );
        GqlWs { socket, protocol, next_id: 0 }
    }

    /// Starts an operation; returns its ID.
    pub async fn subscribe(&mut self, query: &str, variables: Value) -> String {
        self.next_id += 1;
        let id = self.next_id.to_string();
        self.send(json!({
            "id": id,
            "type": self.protocol.subscribe_type(),
            "payload": { "query": query, "variables": variables },
        }))
        .await;
        id
    }

    /// The next message for operation `id` before `timeout`: `Ok(data)` for a result,
    /// `Err(message)` for an error or completion; `None` on timeout.
    pub async fn next_for(&mut self, id: &str, timeout: Duration) -> Option<Result<Value, Value>> {
        let deadline = Instant::now() + timeout;
        loop {
            let message = self.recv_until(deadline).await?;
            if message["id"].as_str() != Some(id) {
                continue;
            }
            let kind = message["type"].as_str().unwrap_or_default();
            if kind == self.protocol.data_type() {
                let payload = &message["payload"];
                if payload.get("errors").is_some_and(|e| !e.is_null()) {
                    return Some(Err(message));
                }
                return Some(Ok(payload["data"].clone()));
            }
            return Some(Err(message));
        }
    }

    /// The next result of operation `id`; panics on timeout, error or completion.
    pub async fn expect_data(&mut self, id: &str, timeout: Duration) -> Value {
        match self.next_for(id, timeout).await {
            Some(Ok(data)) => data,
            Some(Err(message)) => panic!("expected data for operation {id}, got {message}"),
            None => panic!("no data for operation {id} within {timeout:?}"),
        }
    }

    /// Sends a protocol message.
    pub async fn send(&mut self, message: Value) {
        self.socket.send(Message::text(message.to_string())).await.expect("WebSocket send");
    }

    /// The next protocol message before `deadline`, answering pings on the way; `None` on
    /// timeout. Panics if the server closes the connection.
    pub async fn recv_until(&mut self, deadline: Instant) -> Option<Value> {
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return None,
                Ok(None) => panic!("WebSocket closed by the server"),
                Ok(Some(frame)) => frame.expect("WebSocket receive"),
            };
            let text = match frame {
                Message::Text(text) => text,
                Message::Close(frame) => panic!("WebSocket closed by the server: {frame:?}"),
                _ => continue,
            };
            let message: Value = serde_json::from_str(text.as_str()).expect("server sends JSON");
            if message["type"] == "ping" && self.protocol == WsProtocol::TransportWs {
                self.send(json!({ "type": "pong" })).await;
                continue;
            }
            if message["type"] == "ka" {
                continue;
            }
            return Some(message);
        }
    }

    /// Waits for the server to refuse the connection (after a bad `connection_init`): a
    /// `connection_error` message or a close frame. Panics on `connection_ack` or timeout.
    pub async fn expect_refused(&mut self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => panic!("the server did not refuse the connection within {timeout:?}"),
                Ok(None) | Ok(Some(Err(_))) => return "connection ended".to_owned(),
                Ok(Some(Ok(Message::Close(frame)))) => return format!("closed: {frame:?}"),
                Ok(Some(Ok(Message::Text(text)))) => {
                    let message: Value = serde_json::from_str(text.as_str()).expect("server sends JSON");
                    match message["type"].as_str() {
                        Some("connection_error") => return message.to_string(),
                        Some("connection_ack") => panic!("connection accepted: {message}"),
                        _ => continue,
                    }
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Waits for the server to close the connection; returns the close frame's code and
    /// reason. Messages before it (pings answered) are skipped. Panics on timeout.
    pub async fn expect_close(&mut self, timeout: Duration) -> (u16, String) {
        let deadline = Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => panic!("the server did not close the connection within {timeout:?}"),
                Ok(None) | Ok(Some(Err(_))) => panic!("the connection ended without a close frame"),
                Ok(Some(Ok(Message::Close(Some(frame))))) => {
                    return (frame.code.into(), frame.reason.to_string());
                }
                Ok(Some(Ok(Message::Close(None)))) => panic!("a close frame without a code"),
                Ok(Some(Ok(Message::Text(text)))) => {
                    let message: Value = serde_json::from_str(text.as_str()).expect("server sends JSON");
                    if message["type"] == "ping" && self.protocol == WsProtocol::TransportWs {
                        self.send(json!({ "type": "pong" })).await;
                    }
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Closes the connection (the server ends its subscriptions).
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
