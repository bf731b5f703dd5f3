//! The delivery worker: turns new events into stored deliveries (advancing the per-tenant
//! cursor in the same transaction), then sends what is due, each endpoint under its own
//! concurrency limit and timeout, so a slow endpoint only ever holds up itself.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clickledger_domain::ids::EndpointId;
use clickledger_persistence::Db;
use clickledger_persistence::conversions::{events_after, flagged_created_after};
use clickledger_persistence::fraud_alert_mail;
use clickledger_persistence::mail::work as mail_work;
use clickledger_persistence::mail::{EMAIL_FAILED, EMAIL_PENDING, EMAIL_SENT, Email};
use clickledger_persistence::outbound::work::{self, Outcome};
use clickledger_persistence::outbound::{
    Attempt, DELIVERY_FAILED, DELIVERY_PENDING, DELIVERY_SUCCEEDED, Delivery, Endpoint,
};
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER, USER_AGENT};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

use crate::alert_scan::{self, ScanCursors};
use crate::clock::Clock;
use crate::mail::{self, Mailer, templates};
use crate::schedule;
use crate::signing::{self, Secret};
use crate::ssrf::{AddressPolicy, GuardedResolver, Lookup, system_lookup};

/// Events read per tenant per pass.
const EVENT_BATCH: u64 = 500;
/// The shortest time from one pass's start to the next one's.
const PASS_SPACING: Duration = Duration::from_millis(50);
/// Deliveries considered per pass.
const DUE_BATCH: u64 = 200;
/// Bytes of a response body kept in the delivery log.
const RESPONSE_BYTES_KEPT: usize = 1024;
/// Bytes of a request body kept in the delivery log.
const REQUEST_BYTES_KEPT: usize = 2048;
/// How long past its timeout a claimed attempt stays leased: a worker that died mid-send
/// leaves the delivery due again after this.
const LEASE_SLACK: Duration = Duration::from_secs(60);
/// Each e-mail send's own time limit (the SMTP transport's timeout is set from the config too).
const MAIL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct NotifierConfig {
    pub policy: AddressPolicy,
    /// Deliveries in flight across all endpoints.
    pub max_in_flight: usize,
    /// How often due deliveries are looked for when nothing wakes the worker.
    pub poll_interval: Duration,
    /// Time in-flight sends get on shutdown.
    pub shutdown_grace: Duration,
    /// Name resolution (tests inject one to play DNS rebinding).
    pub lookup: Lookup,
    /// Where queued e-mail goes.
    pub mailer: Arc<Mailer>,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        NotifierConfig {
            policy: AddressPolicy::default(),
            max_in_flight: 256,
            poll_interval: Duration::from_millis(500),
            shutdown_grace: Duration::from_secs(5),
            lookup: system_lookup(),
            mailer: Arc::new(Mailer::temporary_outbox()),
        }
    }
}

pub struct Notifier {
    db: Db,
    clock: Arc<dyn Clock>,
    client: reqwest::Client,
    config: NotifierConfig,
    wake: Arc<Notify>,
    in_flight: Arc<Semaphore>,
    per_endpoint: Mutex<HashMap<EndpointId, (u32, Arc<Semaphore>)>>,
    /// How far the fraud alerts have read past their stored cursors.
    alert_scan: ScanCursors,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Storage(#[from] clickledger_persistence::Error),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

impl Notifier {
    pub fn new(db: Db, config: NotifierConfig, clock: Arc<dyn Clock>) -> Result<Arc<Notifier>, Error> {
        let resolver = GuardedResolver::new(config.policy.clone(), config.lookup.clone());
        let client = reqwest::Client::builder()
            // Only 2xx is success; a redirect is a failure and is never followed.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(resolver))
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Arc::new(Notifier {
            db,
            clock,
            client,
            in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            config,
            wake: Arc::new(Notify::new()),
            per_endpoint: Mutex::new(HashMap::new()),
            alert_scan: ScanCursors::default(),
        }))
    }

    /// Notify this after new events commit (or a delivery is queued) to skip the poll wait.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub fn policy(&self) -> &AddressPolicy {
        &self.config.policy
    }

    /// Runs until [`NotifierHandle::stop`].
    pub fn spawn(self: &Arc<Self>) -> NotifierHandle {
        let (stop, mut stopped) = watch::channel(false);
        let notifier = self.clone();
        let join = tokio::spawn(async move {
            let mut sends = JoinSet::new();
            let mut digests_done_for = None;
            loop {
                let pass_started = tokio::time::Instant::now();
                let today = notifier.clock.now().date_naive();
                if digests_done_for != Some(today) {
                    match notifier.queue_daily_digests().await {
                        Ok(_) => digests_done_for = Some(today),
                        Err(err) => tracing::warn!(error = %err, "notifier: queueing daily digests failed"),
                    }
                }
                if let Err(err) = notifier.enqueue_new_events().await {
                    tracing::warn!(error = %err, "notifier: reading the event log failed; will retry");
                }
                if let Err(err) = notifier.queue_fraud_alerts().await {
                    tracing::warn!(error = %err, "notifier: queueing fraud alerts failed; will retry");
                }
                if let Err(err) = notifier.dispatch_due(&mut sends).await {
                    tracing::warn!(error = %err, "notifier: dispatching deliveries failed; will retry");
                }
                if let Err(err) = notifier.dispatch_due_emails(&mut sends).await {
                    tracing::warn!(error = %err, "notifier: dispatching e-mail failed; will retry");
                }
                while sends.try_join_next().is_some() {}
                tokio::select! {
                    () = notifier.wake.notified() => {}
                    () = tokio::time::sleep(notifier.config.poll_interval) => {}
                    _ = stopped.changed() => break,
                }
                // Every committed batch of postbacks wakes the worker, and each pass reads
                // every tenant's cursors: under load, passes at most every PASS_SPACING, each
                // taking all the events committed since.
                tokio::select! {
                    () = tokio::time::sleep_until(pass_started + PASS_SPACING) => {}
                    _ = stopped.changed() => break,
                }
            }
            // Sends under way get a moment to finish; any cut short stays leased and is
            // retried by the next start, so nothing is lost either way.
            let grace = notifier.config.shutdown_grace;
            let _ = tokio::time::timeout(grace, async { while sends.join_next().await.is_some() {} }).await;
            sends.abort_all();
        });
        NotifierHandle { stop, join }
    }

    /// Works until nothing is due at the clock's current time, waiting for every send it
    /// starts: for tests driving a manual clock.
    pub async fn run_once(self: &Arc<Self>) -> Result<(), Error> {
        loop {
            self.enqueue_new_events().await?;
            let mut sends = JoinSet::new();
            let started = self.dispatch_due(&mut sends).await? + self.dispatch_due_emails(&mut sends).await?;
            while sends.join_next().await.is_some() {}
            if started == 0 {
                return Ok(());
            }
        }
    }

    /// Queues yesterday's digest (UTC days) to the owners of every tenant that existed all
    /// day and has not had it, and to each affiliate credited that day its own figures:
    /// once per tenant and day, whatever restarts or replicas do.
    pub async fn queue_daily_digests(&self) -> Result<usize, Error> {
        use clickledger_persistence::mail::digest;
        let day_end = self.clock.now().date_naive().and_time(chrono::NaiveTime::MIN).and_utc();
        let day_start = day_end - chrono::Duration::days(1);
        let day = day_start.date_naive();
        let mut queued = 0;
        for tenant in digest::tenants_due(&self.db, day, day_end).await? {
            let f = digest::figures(&self.db, tenant.id, day_start, day_end).await?;
            let mut figures = vec![
                ("Conversions received", f.conversions.to_string()),
                ("Attributed", f.attributed.to_string()),
                ("Affiliate postbacks delivered", f.postbacks_delivered.to_string()),
                ("Affiliate postbacks dead-lettered", f.postbacks_failed.to_string()),
            ];
            // The fraud alerts not mailed that day (one an hour per rule and affiliate).
            for (rule, affiliate, held) in fraud_alert_mail::held_back(&self.db, tenant.id, day).await? {
                figures.push(("Fraud alerts not mailed", format!("{held} × {rule}, affiliate {affiliate}")));
            }
            let message = templates::daily_digest(&tenant.name, &day.to_string(), &figures);
            // Each affiliate credited that day gets its own figures, never another's.
            let affiliate_messages = digest::affiliate_days(&self.db, tenant.id, day_start, day_end)
                .await?
                .into_iter()
                .map(|a| {
                    let figures = [("Conversions credited to you", a.conversions.to_string())];
                    let title = format!("{} — {}", tenant.name, a.name);
                    (a.email, templates::daily_digest(&title, &day.to_string(), &figures))
                })
                .collect();
            if digest::queue(&self.db, tenant.id, day, message, affiliate_messages).await? {
                queued += 1;
            }
        }
        Ok(queued)
    }

    /// Reads every tenant's events past its fraud-alert cursor and, for each flagged new
    /// conversion, queues the alert to the tenant's owners, at most one an hour per (rule,
    /// affiliate); the rest are counted for the daily digest. Returns the alerts mailed.
    ///
    /// A pass reads up to each tenant's last event as it was when the pass began: events
    /// committed meanwhile wait for the next one, which their commit wakes. (Chasing them
    /// kept this loop running for as long as postbacks kept coming, and the deliveries behind
    /// it waiting.)
    pub async fn queue_fraud_alerts(&self) -> Result<usize, Error> {
        let mut mailed = 0;
        'tenants: for behind in fraud_alert_mail::tenants_behind(&self.db).await? {
            let fraud_alert_mail::Behind { tenant, cursor: mut stored, through } = behind;
            let mut cursor = self.alert_scan.resume(tenant.id, stored);
            while cursor < through {
                let (events, last) = flagged_created_after(&self.db, tenant.id, cursor, EVENT_BATCH).await?;
                if last <= cursor {
                    break;
                }
                let alerts = fraud_alert_mail::alerts_of(&self.db, tenant.id, &events).await?;
                if alerts.is_empty() && !alert_scan::worth_saving(stored, last) {
                    cursor = last;
                    continue;
                }
                let message = |alert: &fraud_alert_mail::Alert| {
                    let detail = format!(
                        "Conversion {} (score {}): {}",
                        alert.conversion, alert.score, alert.evidence
                    );
                    templates::fraud_alert(&tenant.name, &alert.affiliate_name, alert.rule.as_str(), &detail)
                };
                let now = self.clock.now();
                match fraud_alert_mail::apply(&self.db, tenant.id, &alerts, (stored, last), now, message)
                    .await?
                {
                    Some((sent, _held)) => mailed += sent,
                    // Another replica got there first: the next pass starts from its cursor.
                    None => {
                        self.alert_scan.forget(tenant.id);
                        continue 'tenants;
                    }
                }
                (stored, cursor) = (last, last);
            }
            self.alert_scan.remember(tenant.id, stored, cursor);
        }
        Ok(mailed)
    }

    /// Reads every tenant's events past its cursor and stores the deliveries they call for:
    /// up to the tenant's last event as the pass began (as for the fraud alerts, the events
    /// committed meanwhile wake the next pass).
    pub async fn enqueue_new_events(&self) -> Result<(), Error> {
        for behind in work::tenants_behind(&self.db).await? {
            self.enqueue_tenant(behind).await?;
        }
        Ok(())
    }

    async fn enqueue_tenant(&self, behind: work::Behind) -> Result<(), Error> {
        let work::Behind { tenant, mut cursor, through } = behind;
        let endpoints = work::endpoints(&self.db, tenant).await?;
        while cursor < through {
            let (events, last) = events_after(&self.db, tenant, cursor, EVENT_BATCH).await?;
            if last <= cursor {
                break;
            }
            let mut deliveries = Vec::new();
            for event in &events {
                for endpoint in endpoints.iter().filter(|e| crate::postback::wants(e, event)) {
                    let own_click = crate::postback::own_click_id(endpoint.affiliate_id, &event.conversion);
                    let subs = match &own_click {
                        Some(click) => work::click_subs(&self.db, tenant, click).await?,
                        None => None,
                    };
                    deliveries.push(crate::postback::delivery_for(endpoint, event, subs));
                }
            }
            let queued = deliveries.len();
            work::enqueue_events(&self.db, tenant, deliveries, last, self.clock.now()).await?;
            if queued > 0 {
                tracing::debug!(%tenant, queued, through = last, "notifier: deliveries queued");
            }
            cursor = last;
        }
        Ok(())
    }

    fn endpoint_semaphore(&self, endpoint: &Endpoint) -> Arc<Semaphore> {
        let mut map = self.per_endpoint.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(endpoint.id).or_insert_with(|| {
            (endpoint.max_concurrency, Arc::new(Semaphore::new(endpoint.max_concurrency as usize)))
        });
        if entry.0 != endpoint.max_concurrency {
            // The limit changed: sends holding the old semaphore finish under the old limit.
            *entry = (endpoint.max_concurrency, Arc::new(Semaphore::new(endpoint.max_concurrency as usize)));
        }
        entry.1.clone()
    }

    /// Claims and starts every due delivery that its endpoint has room for.
    /// Returns how many sends it started.
    pub async fn dispatch_due(self: &Arc<Self>, sends: &mut JoinSet<()>) -> Result<usize, Error> {
        let now = self.clock.now();
        let due = work::due(&self.db, now, DUE_BATCH).await?;
        let mut endpoints: HashMap<EndpointId, Option<Endpoint>> = HashMap::new();
        let mut started = 0;
        for delivery in due {
            if let Entry::Vacant(slot) = endpoints.entry(delivery.endpoint_id) {
                slot.insert(match work::endpoint(&self.db, delivery.tenant_id, delivery.endpoint_id).await {
                    Ok(endpoint) => Some(endpoint),
                    Err(clickledger_persistence::Error::NotFound) => None,
                    Err(err) => return Err(err.into()),
                });
            }
            let Some(Some(endpoint)) = endpoints.get(&delivery.endpoint_id) else { continue };
            let Ok(endpoint_permit) = self.endpoint_semaphore(endpoint).try_acquire_owned() else { continue };
            let Ok(global_permit) = self.in_flight.clone().try_acquire_owned() else { break };
            let timeout = Duration::from_millis(u64::from(endpoint.timeout_ms));
            let lease_until = now + chrono::Duration::from_std(timeout + LEASE_SLACK).unwrap_or_default();
            if !work::claim(&self.db, &delivery, lease_until).await? {
                continue;
            }
            let mut delivery = delivery;
            delivery.attempts += 1;
            let notifier = self.clone();
            let endpoint = endpoint.clone();
            started += 1;
            sends.spawn(async move {
                let permits = (endpoint_permit, global_permit);
                notifier.attempt(delivery, endpoint, permits).await;
            });
        }
        Ok(started)
    }

    /// Claims and starts every due e-mail, as far as the in-flight limit allows.
    pub async fn dispatch_due_emails(self: &Arc<Self>, sends: &mut JoinSet<()>) -> Result<usize, Error> {
        let now = self.clock.now();
        let mut started = 0;
        for email in mail_work::due(&self.db, now, DUE_BATCH).await? {
            let Ok(permit) = self.in_flight.clone().try_acquire_owned() else { break };
            let lease_until =
                now + chrono::Duration::from_std(MAIL_TIMEOUT + LEASE_SLACK).unwrap_or_default();
            if !mail_work::claim(&self.db, &email, lease_until).await? {
                continue;
            }
            let mut email = email;
            email.attempts += 1;
            let notifier = self.clone();
            started += 1;
            sends.spawn(async move {
                let _permit = permit;
                notifier.send_email(email).await;
            });
        }
        Ok(started)
    }

    async fn send_email(self: Arc<Self>, email: Email) {
        let sent = self.config.mailer.send(&email.to, &email.subject, &email.text, &email.html).await;
        let now = self.clock.now();
        let (state, next, error) = match sent {
            Ok(mail::Sent::Smtp) => (EMAIL_SENT, None, None),
            Ok(mail::Sent::Outbox(path)) => {
                (EMAIL_SENT, None, Some(format!("no SMTP server configured: written to {}", path.display())))
            }
            Err(err) if err.permanent => (EMAIL_FAILED, None, Some(err.message)),
            Err(err) => match schedule::next_delay(email.attempts) {
                Some(delay) => {
                    let at = now + chrono::Duration::from_std(schedule::jitter(delay)).unwrap_or_default();
                    (EMAIL_PENDING, Some(at), Some(err.message))
                }
                None => (EMAIL_FAILED, None, Some(err.message)),
            },
        };
        metrics::counter!("emails_total", "outcome" => state).increment(1);
        if state != EMAIL_SENT {
            tracing::warn!(to = %email.to, kind = %email.kind, attempt = email.attempts, error = ?error, "e-mail not sent");
        }
        if let Err(err) = mail_work::record(&self.db, &email, state, next, error, now).await {
            tracing::warn!(error = %err, "notifier: recording an e-mail attempt failed");
        }
    }

    async fn attempt(
        self: Arc<Self>,
        delivery: Delivery,
        endpoint: Endpoint,
        _permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
    ) {
        let started_at = self.clock.now();
        let started = Instant::now();
        let sent = self.send(&delivery, &endpoint, started_at).await;
        let latency_ms = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
        let now = self.clock.now();
        let outcome = decide(&delivery, &endpoint, sent, started_at, latency_ms, now);
        let state = outcome.state;
        metrics::counter!("postback_attempts_total", "outcome" => state).increment(1);
        metrics::histogram!("postback_attempt_duration_seconds").record(f64::from(latency_ms) / 1000.0);
        if let Some(reason) = &outcome.disable_endpoint {
            // The owners' e-mail is queued by `work::record`, with the disabling itself.
            tracing::warn!(endpoint = %endpoint.id, affiliate = %endpoint.affiliate_id, %reason,
                "postback endpoint disabled");
        }
        if let Err(err) = work::record(&self.db, &delivery, outcome, now).await {
            // The lease runs out and the attempt is made again: at-least-once, never lost.
            tracing::warn!(delivery = %delivery.id, error = %err, "notifier: recording an attempt failed");
        }
        tracing::debug!(delivery = %delivery.id, attempt = delivery.attempts, state, "postback attempt");
        self.wake.notify_one();
    }

    async fn send(&self, delivery: &Delivery, endpoint: &Endpoint, at: DateTime<Utc>) -> Sent {
        let url = match url::Url::parse(&delivery.url) {
            Ok(url) => url,
            Err(err) => return Sent::permanent(format!("invalid URL: {err}"), String::new()),
        };
        let body = delivery.body.as_bytes();
        let id = delivery.id.to_string();
        let timestamp = at.timestamp();
        let secrets: Vec<Secret> =
            endpoint.signing_secrets(at).into_iter().filter_map(|s| Secret::parse(s).ok()).collect();
        let signature = signing::signature_header(&secrets, &id, timestamp, body);
        let request_log = format!(
            "{} {}\nwebhook-id: {id}\nwebhook-timestamp: {timestamp}\nwebhook-signature: {signature}\n\n{}",
            delivery.method,
            delivery.url,
            truncate(&delivery.body, REQUEST_BYTES_KEPT)
        );
        if let Err(refused) = self.config.policy.check_url(&url) {
            return Sent::permanent(refused.to_string(), request_log);
        }
        let method = if delivery.method == "GET" { reqwest::Method::GET } else { reqwest::Method::POST };
        let mut request = self
            .client
            .request(method, url)
            .timeout(Duration::from_millis(u64::from(endpoint.timeout_ms)))
            .header(USER_AGENT, concat!("Clickledger-Webhooks/", env!("CARGO_PKG_VERSION")))
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature);
        if delivery.method != "GET" {
            request = request.header(CONTENT_TYPE, "application/json").body(delivery.body.clone());
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(err) => return Sent::failed(describe(&err), request_log),
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers(), at);
        let mut kept = Vec::new();
        while kept.len() < RESPONSE_BYTES_KEPT {
            match response.chunk().await {
                Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
                // A body cut short still has its status: the verdict stands on that.
                Ok(None) | Err(_) => break,
            }
        }
        kept.truncate(RESPONSE_BYTES_KEPT);
        Sent {
            request: request_log,
            status: Some(status),
            body: Some(String::from_utf8_lossy(&kept).into_owned()),
            error: None,
            retry_after,
            permanent: false,
        }
    }
}

pub struct NotifierHandle {
    stop: watch::Sender<bool>,
    join: tokio::task::JoinHandle<()>,
}

impl NotifierHandle {
    /// Stops taking new work and waits (up to the grace period) for sends under way.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.join.await;
    }
}

/// What one try produced.
struct Sent {
    request: String,
    status: Option<u16>,
    body: Option<String>,
    error: Option<String>,
    retry_after: Option<Duration>,
    /// No retry can help (a refused or malformed URL).
    permanent: bool,
}

impl Sent {
    fn failed(error: String, request: String) -> Sent {
        Sent { request, status: None, body: None, error: Some(error), retry_after: None, permanent: false }
    }

    fn permanent(error: String, request: String) -> Sent {
        Sent { permanent: true, ..Sent::failed(error, request) }
    }
}

fn decide(
    delivery: &Delivery,
    endpoint: &Endpoint,
    sent: Sent,
    started_at: DateTime<Utc>,
    latency_ms: u32,
    now: DateTime<Utc>,
) -> Outcome {
    let attempt = Attempt {
        delivery_id: delivery.id,
        attempt: delivery.attempts,
        started_at,
        request: sent.request,
        response_status: sent.status,
        response_body: sent.body,
        error: sent.error,
        latency_ms,
    };
    let notice = |reason: &Option<String>| {
        reason.as_ref().map(|reason| {
            templates::endpoint_disabled(&endpoint.url_template, &endpoint.affiliate_id.to_string(), reason)
        })
    };
    let done = |state, disable_endpoint: Option<String>| Outcome {
        owner_notice: notice(&disable_endpoint),
        attempt: attempt.clone(),
        state,
        next_attempt_at: None,
        disable_endpoint,
    };
    match sent.status {
        Some(status) if (200..300).contains(&status) => return done(DELIVERY_SUCCEEDED, None),
        Some(410) => return done(DELIVERY_FAILED, Some("the endpoint answered 410 Gone".to_owned())),
        _ => {}
    }
    let failing_for_too_long = endpoint.failing_since.is_some_and(|since| {
        (now - since).to_std().is_ok_and(|failing| failing >= schedule::DISABLE_AFTER_FAILING_FOR)
    });
    let disable = failing_for_too_long.then(|| "failing for five days without a success".to_owned());
    if sent.permanent {
        return done(DELIVERY_FAILED, disable);
    }
    match schedule::next_delay(delivery.attempts) {
        None => done(DELIVERY_FAILED, disable),
        Some(delay) => {
            let mut wait = schedule::jitter(delay);
            if matches!(sent.status, Some(429 | 503))
                && let Some(asked) = sent.retry_after
            {
                wait = wait.max(asked.min(schedule::MAX_RETRY_AFTER));
            }
            Outcome {
                next_attempt_at: Some(now + chrono::Duration::from_std(wait).unwrap_or_default()),
                state: DELIVERY_PENDING,
                attempt,
                owner_notice: notice(&disable),
                disable_endpoint: disable,
            }
        }
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = raw.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(raw).ok()?.with_timezone(&Utc);
    (at - now).to_std().ok()
}

fn describe(err: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut message = if err.is_timeout() { "timed out".to_owned() } else { err.to_string() };
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z").unwrap().with_timezone(&Utc);
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(120)));
        headers.insert(RETRY_AFTER, "Wed, 21 Oct 2015 07:38:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(600)));
        headers.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers, now), None);
    }
}
