//! The baseline of scenario 1: what poem itself does for a `GET /c/{code}` answered with a
//! fixed 302, with no lookup, no click ID, no metrics middleware and no write-behind.
//!
//! It runs as its own process (`clickledger-bench baseline`), on a default multi-thread tokio
//! runtime exactly like the server's, so that it gets the same treatment from the scheduler
//! as the server, and the load generator never shares a runtime with the thing it measures.
//! The response carries the same headers as a real redirect (fixed values of similar length),
//! so both answers cost the same to send and to parse.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use poem::http::{StatusCode, header};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Response, Route, Server, get, handler};

pub const READY_PREFIX: &str = "Baseline listening on ";

const LOCATION: &str =
    "https://landing.test/welcome?cid=ck_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN";
const COOKIE: &str = "clv=vis_0123456789abcdefghijklmnop; Max-Age=31536000; Path=/; HttpOnly; SameSite=Lax";

#[handler]
fn redirect() -> Response {
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, LOCATION)
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::REFERRER_POLICY, "no-referrer-when-downgrade")
        .header(header::SET_COOKIE, COOKIE)
        .finish()
}

pub fn serve(listen: SocketAddr) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome: std::io::Result<()> = runtime.block_on(async move {
        let acceptor = TcpListener::bind(listen).into_acceptor().await?;
        let local = acceptor
            .local_addr()
            .into_iter()
            .find_map(|addr| addr.as_socket_addr().copied())
            .unwrap_or(listen);
        println!("{READY_PREFIX}http://{local}");
        Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(
                Route::new().at("/c/:code", get(redirect)),
                shutdown_signal(),
                Some(Duration::from_secs(1)),
            )
            .await
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
