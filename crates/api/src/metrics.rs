//! Prometheus metrics: a recorder installed once per process, a middleware that counts and
//! times every request, and the `/metrics` handler.

use std::sync::LazyLock;
use std::time::Instant;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use poem::http::Method;
use poem::{Endpoint, IntoResponse, Request, Response};

const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

pub fn install() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        .map_err(|err| err.to_string())?
        .install_recorder()
        .map_err(|err| err.to_string())
}

/// Route label for a request path. Dynamic segments are collapsed so that the label set stays
/// small whatever the traffic (a click code in a label would be unbounded cardinality).
fn route_label(path: &str) -> &'static str {
    match path {
        "/graphql" => "/graphql",
        "/graphql/ws" => "/graphql/ws",
        "/postback" => "/postback",
        "/set-password" => "/set-password",
        "/dashboard" => "/dashboard",
        "/reports/stats.csv" => "/reports/stats.csv",
        "/reports/conversions.csv" => "/reports/conversions.csv",
        "/reports/commissions.csv" => "/reports/commissions.csv",
        "/reports/reconcile.csv" => "/reports/reconcile.csv",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        p if p.starts_with("/c/") => "/c/{code}",
        p if p.starts_with("/graphql/assets/") => "/graphql/assets",
        p if p.starts_with("/dashboard/assets/") => "/dashboard/assets",
        _ => "other",
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}

/// "100" to "999", made once: labels borrowed for the process's life cost no allocation per
/// request (at redirect rates the per-request label strings showed in the profile).
static STATUS_LABELS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| (0..1000u16).map(|code| &*Box::leak(code.to_string().into_boxed_str())).collect());

pub async fn track<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = route_label(req.uri().path());
    let result = next.call(req).await.map(IntoResponse::into_response);
    let status = match &result {
        Ok(response) => response.status(),
        Err(err) => err.status(),
    };
    let status = STATUS_LABELS.get(usize::from(status.as_u16())).copied().unwrap_or("other");
    metrics::counter!("http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route, "status" => status)
        .record(started.elapsed().as_secs_f64());
    result
}
