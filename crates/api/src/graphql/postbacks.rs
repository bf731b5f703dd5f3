//! Outbound affiliate postbacks: endpoints (affiliates manage their own, staff manage all),
//! their delivery log, redelivery and test messages.

use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};
use clickledger_domain::conversion::{ConversionStatus, EventKind};
use clickledger_domain::ids::{AffiliateId, CampaignId, DeliveryId, EndpointId};
use clickledger_notifier::postback::test_delivery;
use clickledger_notifier::signing::Secret;
use clickledger_notifier::template;
use clickledger_persistence::outbound::{self, EndpointPatch, Endpoints, NewEndpoint};
use clickledger_persistence::{Scope, Viewer};

use super::context::{principal, state};
use super::guard::Allow;
use super::pagination;
use crate::Error;
use crate::error::GqlResultExt;

const DEFAULT_CONCURRENCY: u32 = 4;
const MAX_CONCURRENCY: u32 = 32;
const DEFAULT_TIMEOUT_MS: u32 = 5_000;
const TIMEOUT_RANGE_MS: std::ops::RangeInclusive<u32> = 100..=30_000;
const MAX_OVERLAP_HOURS: i32 = 24 * 7;
/// Endpoints one affiliate may have: each one multiplies the deliveries of every conversion.
pub const MAX_ENDPOINTS_PER_AFFILIATE: u64 = 20;

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum PostbackMethod {
    /// The URL template carries everything; signed over the empty body.
    Get,
    /// The same URL, plus a JSON body with every macro's value.
    Post,
}

impl PostbackMethod {
    fn as_str(self) -> &'static str {
        match self {
            PostbackMethod::Get => "GET",
            PostbackMethod::Post => "POST",
        }
    }

    fn from_stored(raw: &str) -> Self {
        if raw == "GET" { PostbackMethod::Get } else { PostbackMethod::Post }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum DeliveryState {
    /// Waiting for its next attempt (or under way).
    Pending,
    /// The endpoint answered 2xx.
    Succeeded,
    /// Dead-lettered: every scheduled retry failed, or the endpoint answered 410 Gone.
    Failed,
}

/// An affiliate's outbound postback endpoint. Its signing secret is shown only when it is
/// created or rotated.
#[derive(SimpleObject)]
pub struct PostbackEndpoint {
    pub id: ID,
    pub affiliate_id: ID,
    /// Only this campaign's conversions; all of them when null.
    pub campaign_id: Option<ID>,
    pub url_template: String,
    pub method: PostbackMethod,
    /// Event kinds sent (`registration`, `ftd`, …); empty means all.
    pub events: Vec<String>,
    /// Conversion statuses sent (`pending`, `approved`, `rejected`); empty means all.
    pub statuses: Vec<String>,
    pub max_concurrency: i32,
    pub timeout_ms: i32,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Start of the current run of failed attempts; null while the endpoint is healthy.
    pub failing_since: Option<DateTime<Utc>>,
    /// While set and in the future, the previous secret's signature is sent too.
    pub previous_secret_valid_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<outbound::Endpoint> for PostbackEndpoint {
    fn from(e: outbound::Endpoint) -> Self {
        PostbackEndpoint {
            id: ID(e.id.to_string()),
            affiliate_id: ID(e.affiliate_id.to_string()),
            campaign_id: e.campaign_id.map(|c| ID(c.to_string())),
            url_template: e.url_template,
            method: PostbackMethod::from_stored(&e.method),
            events: e.events,
            statuses: e.statuses,
            max_concurrency: i32::try_from(e.max_concurrency).unwrap_or(i32::MAX),
            timeout_ms: i32::try_from(e.timeout_ms).unwrap_or(i32::MAX),
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            failing_since: e.failing_since,
            previous_secret_valid_until: e.previous_secret_until,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// One try of a delivery.
#[derive(SimpleObject)]
pub struct PostbackAttempt {
    /// 1 for the first try.
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    /// Method, URL, signature headers and (the start of) the body, as sent.
    pub request: String,
    pub response_status: Option<i32>,
    /// The first kilobyte of the response body.
    pub response_body: Option<String>,
    /// Why no response was had (refused, timed out, connection failed).
    pub error: Option<String>,
    pub latency_ms: i32,
}

impl From<outbound::Attempt> for PostbackAttempt {
    fn from(a: outbound::Attempt) -> Self {
        PostbackAttempt {
            attempt: i32::try_from(a.attempt).unwrap_or(i32::MAX),
            started_at: a.started_at,
            request: a.request,
            response_status: a.response_status.map(i32::from),
            response_body: a.response_body,
            error: a.error,
            latency_ms: i32::try_from(a.latency_ms).unwrap_or(i32::MAX),
        }
    }
}

/// One message owed to an endpoint; its ID is the `webhook-id` header, the same on every try.
#[derive(SimpleObject)]
pub struct PostbackDelivery {
    pub id: ID,
    pub endpoint_id: ID,
    /// `conversion.created`, `conversion.status_changed` or `test`.
    pub event: String,
    pub conversion_id: Option<ID>,
    pub state: DeliveryState,
    pub attempt_count: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub method: PostbackMethod,
    pub url: String,
    pub body: String,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// Every try, oldest first.
    pub attempts: Vec<PostbackAttempt>,
}

fn delivery(d: outbound::Delivery, attempts: Vec<PostbackAttempt>) -> PostbackDelivery {
    PostbackDelivery {
        id: ID(d.id.to_string()),
        endpoint_id: ID(d.endpoint_id.to_string()),
        event: d.event,
        conversion_id: d.conversion_id.map(|c| ID(c.to_string())),
        state: match d.state.as_str() {
            outbound::DELIVERY_SUCCEEDED => DeliveryState::Succeeded,
            outbound::DELIVERY_FAILED => DeliveryState::Failed,
            _ => DeliveryState::Pending,
        },
        attempt_count: i32::try_from(d.attempts).unwrap_or(i32::MAX),
        next_attempt_at: if d.state == outbound::DELIVERY_PENDING { d.next_attempt_at } else { None },
        method: PostbackMethod::from_stored(&d.method),
        url: d.url,
        body: d.body,
        last_status: d.last_status.map(i32::from),
        last_error: d.last_error,
        last_attempt_at: d.last_attempt_at,
        created_at: d.created_at,
        attempts,
    }
}

async fn with_attempts(
    repo: &Endpoints<'_>,
    deliveries: Vec<outbound::Delivery>,
) -> async_graphql::Result<Vec<PostbackDelivery>> {
    let ids: Vec<DeliveryId> = deliveries.iter().map(|d| d.id).collect();
    let mut attempts = repo.attempts(&ids).await.gql()?;
    Ok(deliveries
        .into_iter()
        .map(|d| {
            let (mine, rest): (Vec<_>, Vec<_>) = attempts.drain(..).partition(|a| a.delivery_id == d.id);
            attempts = rest;
            delivery(d, mine.into_iter().map(PostbackAttempt::from).collect())
        })
        .collect())
}

#[derive(InputObject)]
pub struct CreatePostbackEndpointInput {
    /// Required for staff; an affiliate may only give its own ID (or omit it).
    pub affiliate_id: Option<ID>,
    pub campaign_id: Option<ID>,
    /// e.g. `https://tracker.example/postback?cid={click_id}&payout={payout}&status={status}`;
    /// macros: {click_id}, {txn_id}, {conversion_id}, {event}, {amount}, {currency},
    /// {payout}, {status}, {sub1}…{sub5}, {affiliate_id}, {campaign_id}, {timestamp},
    /// {event_type}. Values are URL-encoded; macros may not form the host.
    pub url_template: String,
    #[graphql(default_with = "PostbackMethod::Get")]
    pub method: PostbackMethod,
    #[graphql(default)]
    pub events: Vec<String>,
    #[graphql(default)]
    pub statuses: Vec<String>,
    pub max_concurrency: Option<i32>,
    pub timeout_ms: Option<i32>,
}

#[derive(InputObject)]
pub struct UpdatePostbackEndpointInput {
    pub url_template: Option<String>,
    pub method: Option<PostbackMethod>,
    /// `null` makes the endpoint apply to every campaign; omit to leave it.
    pub campaign_id: MaybeUndefined<ID>,
    pub events: Option<Vec<String>>,
    pub statuses: Option<Vec<String>>,
    pub max_concurrency: Option<i32>,
    pub timeout_ms: Option<i32>,
    /// Re-enabling resumes the deliveries that waited while it was disabled.
    pub enabled: Option<bool>,
}

#[derive(SimpleObject)]
pub struct PostbackEndpointWithSecret {
    pub endpoint: PostbackEndpoint,
    /// `whsec_…`: verify the `webhook-signature` header with it. Shown once.
    pub secret: String,
}

/// How long saving an endpoint waits for its host name to resolve.
const SAVE_TIME_LOOKUP: std::time::Duration = std::time::Duration::from_secs(2);

/// Validates a template and refuses, up front, hosts that are internal: IP literals, and names
/// that resolve only to non-public addresses (`localhost`). This is for a clear error when
/// saving; the guard that counts runs again on every connection, so a name that changes its
/// answer later (DNS rebinding) is still refused then. A name that does not resolve yet is
/// accepted: its DNS may not be set up at the time.
async fn url_template(raw: &str, ctx: &Context<'_>) -> async_graphql::Result<String> {
    let trimmed = raw.trim();
    let url = template::validate(trimmed).map_err(|why| Error::bad_input("urlTemplate", why).into_gql())?;
    let policy = &state(ctx).outbound.policy;
    policy
        .check_url(&url)
        .map_err(|refused| Error::bad_input("urlTemplate", refused.to_string()).into_gql())?;
    if let Some(url::Host::Domain(name)) = url.host() {
        let lookup = tokio::net::lookup_host((name, url.port_or_known_default().unwrap_or(443)));
        if let Ok(Ok(addresses)) = tokio::time::timeout(SAVE_TIME_LOOKUP, lookup).await {
            let addresses: Vec<_> = addresses.map(|a| a.ip()).collect();
            if !addresses.is_empty() && !addresses.iter().any(|ip| policy.permits(*ip)) {
                let message = format!("{name} resolves only to non-public addresses");
                return Err(Error::bad_input("urlTemplate", message).into_gql());
            }
        }
    }
    Ok(trimmed.to_owned())
}

fn events(raw: Vec<String>) -> async_graphql::Result<Vec<String>> {
    raw.iter()
        .map(|e| e.parse::<EventKind>().map(|k| k.as_str().to_owned()).map_err(|_| e))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::bad_input("events", format!("unknown event `{e}`")).into_gql())
}

fn statuses(raw: Vec<String>) -> async_graphql::Result<Vec<String>> {
    raw.iter()
        .map(|s| s.parse::<ConversionStatus>().map(|k| k.as_str().to_owned()).map_err(|_| s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|s| Error::bad_input("statuses", format!("unknown status `{s}`")).into_gql())
}

fn concurrency(raw: i32) -> async_graphql::Result<u32> {
    u32::try_from(raw).ok().filter(|n| (1..=MAX_CONCURRENCY).contains(n)).ok_or_else(|| {
        Error::bad_input("maxConcurrency", format!("must be 1 to {MAX_CONCURRENCY}")).into_gql()
    })
}

fn timeout_ms(raw: i32) -> async_graphql::Result<u32> {
    u32::try_from(raw).ok().filter(|n| TIMEOUT_RANGE_MS.contains(n)).ok_or_else(|| {
        Error::bad_input(
            "timeoutMs",
            format!("must be {} to {}", TIMEOUT_RANGE_MS.start(), TIMEOUT_RANGE_MS.end()),
        )
        .into_gql()
    })
}

fn endpoint_id(id: &ID, field: &'static str) -> async_graphql::Result<EndpointId> {
    EndpointId::parse(id, field).gql()
}

fn campaign_id(id: &ID) -> async_graphql::Result<CampaignId> {
    CampaignId::parse(id, "campaignId").gql()
}

#[derive(Default)]
pub struct PostbackQuery;

#[Object]
impl PostbackQuery {
    /// Outbound postback endpoints, oldest first: an affiliate sees its own, staff all.
    #[graphql(
        guard = "Allow::ANYONE_SIGNED_IN",
        complexity = "first.unwrap_or(20).clamp(1, 100) as usize * child_complexity"
    )]
    async fn postback_endpoints(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
    ) -> async_graphql::Result<Connection<String, PostbackEndpoint>> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let request = pagination::request(after, first, EndpointId::parse, EndpointId::uuid).gql()?;
        let page = Endpoints::scoped(&state.db, scope).list(request).await.gql()?;
        Ok(pagination::connection(page, request, |e| (pagination::cursor(e.id), PostbackEndpoint::from(e))))
    }

    #[graphql(guard = "Allow::ANYONE_SIGNED_IN")]
    async fn postback_endpoint(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<PostbackEndpoint> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        Endpoints::scoped(&state.db, scope)
            .get(endpoint_id(&id, "id")?)
            .await
            .gql()
            .map(PostbackEndpoint::from)
    }

    /// An endpoint's delivery log, oldest first, each delivery with its attempts.
    #[graphql(
        guard = "Allow::ANYONE_SIGNED_IN",
        complexity = "first.unwrap_or(20).clamp(1, 100) as usize * child_complexity"
    )]
    async fn postback_deliveries(
        &self,
        ctx: &Context<'_>,
        endpoint_id: ID,
        after: Option<String>,
        first: Option<i32>,
    ) -> async_graphql::Result<Connection<String, PostbackDelivery>> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let endpoint = self::endpoint_id(&endpoint_id, "endpointId")?;
        let request = pagination::request(after, first, DeliveryId::parse, DeliveryId::uuid).gql()?;
        let repo = Endpoints::scoped(&state.db, scope);
        let page = repo.deliveries(endpoint, request).await.gql()?;
        let has_next = page.has_next;
        let items = with_attempts(&repo, page.items).await?;
        let page = clickledger_persistence::Page { items, has_next };
        Ok(pagination::connection(page, request, |d| (d.id.to_string(), d)))
    }
}

#[derive(Default)]
pub struct PostbackMutation;

#[Object]
impl PostbackMutation {
    /// Creates an endpoint with a fresh signing secret (returned once). An affiliate has at
    /// most 20 endpoints (`BAD_USER_INPUT` on `affiliateId` beyond).
    #[graphql(guard = "Allow::ANYONE_SIGNED_IN")]
    async fn create_postback_endpoint(
        &self,
        ctx: &Context<'_>,
        input: CreatePostbackEndpointInput,
    ) -> async_graphql::Result<PostbackEndpointWithSecret> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let affiliate_id = match (scope.viewer(), &input.affiliate_id) {
            (_, Some(id)) => AffiliateId::parse(id, "affiliateId").gql()?,
            (Viewer::Affiliate(me), None) => me,
            (Viewer::Staff, None) => return Err(Error::bad_input("affiliateId", "required").into_gql()),
        };
        let secret = Secret::generate();
        let new = NewEndpoint {
            affiliate_id,
            campaign_id: input.campaign_id.as_ref().map(campaign_id).transpose()?,
            url_template: url_template(&input.url_template, ctx).await?,
            method: input.method.as_str().to_owned(),
            events: events(input.events)?,
            statuses: statuses(input.statuses)?,
            secret: secret.clone(),
            max_concurrency: input
                .max_concurrency
                .map(concurrency)
                .transpose()?
                .unwrap_or(DEFAULT_CONCURRENCY),
            timeout_ms: input.timeout_ms.map(timeout_ms).transpose()?.unwrap_or(DEFAULT_TIMEOUT_MS),
        };
        let actor = principal(ctx)?.actor();
        let endpoint = Endpoints::scoped(&state.db, scope)
            .create(new, MAX_ENDPOINTS_PER_AFFILIATE, actor)
            .await
            .gql()?;
        Ok(PostbackEndpointWithSecret { endpoint: endpoint.into(), secret })
    }

    #[graphql(guard = "Allow::ANYONE_SIGNED_IN")]
    async fn update_postback_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdatePostbackEndpointInput,
    ) -> async_graphql::Result<PostbackEndpoint> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let patch = EndpointPatch {
            url_template: match input.url_template.as_deref() {
                Some(template) => Some(url_template(template, ctx).await?),
                None => None,
            },
            method: input.method.map(|m| m.as_str().to_owned()),
            events: input.events.map(events).transpose()?,
            statuses: input.statuses.map(statuses).transpose()?,
            campaign_id: match &input.campaign_id {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(id) => Some(Some(campaign_id(id)?)),
            },
            max_concurrency: input.max_concurrency.map(concurrency).transpose()?,
            timeout_ms: input.timeout_ms.map(timeout_ms).transpose()?,
            enabled: input.enabled,
        };
        let actor = principal(ctx)?.actor();
        let updated =
            Endpoints::scoped(&state.db, scope).update(endpoint_id(&id, "id")?, patch, actor).await.gql()?;
        state.outbound.wake.notify_one();
        Ok(updated.into())
    }

    /// Replaces the signing secret; for `overlapHours` (default 24) messages carry signatures
    /// under both the old and the new secret, so the receiver can switch without a gap.
    #[graphql(guard = "Allow::ANYONE_SIGNED_IN")]
    async fn rotate_postback_secret(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default = 24)] overlap_hours: i32,
    ) -> async_graphql::Result<PostbackEndpointWithSecret> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        if !(0..=MAX_OVERLAP_HOURS).contains(&overlap_hours) {
            return Err(
                Error::bad_input("overlapHours", format!("must be 0 to {MAX_OVERLAP_HOURS}")).into_gql()
            );
        }
        let secret = Secret::generate();
        let until = Utc::now() + chrono::Duration::hours(i64::from(overlap_hours));
        let endpoint = Endpoints::scoped(&state.db, scope)
            .rotate_secret(endpoint_id(&id, "id")?, secret.clone(), until, principal(ctx)?.actor())
            .await
            .gql()?;
        Ok(PostbackEndpointWithSecret { endpoint: endpoint.into(), secret })
    }

    /// Tries a delivery once more now, whatever its state, with the same `webhook-id`.
    #[graphql(guard = "Allow::ANYONE_SIGNED_IN")]
    async fn redeliver(&self, ctx: &Context<'_>, delivery_id: ID) -> async_graphql::Result<PostbackDelivery> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let repo = Endpoints::scoped(&state.db, scope);
        let id = DeliveryId::parse(&delivery_id, "deliveryId").gql()?;
        let redelivered = repo.redeliver(id).await.gql()?;
        state.outbound.wake.notify_one();
        Ok(with_attempts(&repo, vec![redelivered]).await?.remove(0))
    }

    /// Queues a signed test message (event `test`, sample values) to the endpoint. At most 10
    /// in a burst per affiliate, then one a minute (`RATE_LIMITED`).
    #[graphql(guard = "Allow::ANYONE_SIGNED_IN")]
    async fn send_test_postback(
        &self,
        ctx: &Context<'_>,
        endpoint_id: ID,
    ) -> async_graphql::Result<PostbackDelivery> {
        let (state, scope): (_, Scope) = (state(ctx), principal(ctx)?.scope());
        let repo = Endpoints::scoped(&state.db, scope);
        let endpoint = repo.get(self::endpoint_id(&endpoint_id, "endpointId")?).await.gql()?;
        if !state.test_sends.allow(endpoint.affiliate_id) {
            return Err(Error::RateLimited.into_gql());
        }
        let queued = repo.enqueue(test_delivery(&endpoint, Utc::now())).await.gql()?;
        state.outbound.wake.notify_one();
        Ok(delivery(queued, Vec::new()))
    }
}
