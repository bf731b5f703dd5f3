//! A tenant to benchmark, set up the way an operator would: through GraphQL.

use serde_json::{Value, json};

use crate::Result;

pub const CLICK_ID_PARAM: &str = "cid";
const LANDING_URL: &str = "https://landing.test/welcome?cid={click_id}&aff={affiliate_id}";

pub struct Tenant {
    /// The owner's session token (subscriptions).
    pub token: String,
    /// The postback API key.
    pub api_key: String,
    /// Tracking link codes.
    pub codes: Vec<String>,
}

/// A client that never follows redirects: a 302 is the answer being measured.
pub fn client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .timeout(std::time::Duration::from_secs(30))
        .build()?)
}

pub async fn graphql(
    client: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Result<Value> {
    let mut request =
        client.post(format!("{base}/graphql")).json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let answer: Value = request.send().await?.json().await?;
    if answer.get("errors").is_some_and(|errors| !errors.is_null()) || answer["data"].is_null() {
        return Err(format!("GraphQL error: {answer}").into());
    }
    Ok(answer["data"].clone())
}

fn text(value: &Value, what: &str) -> Result<String> {
    value.as_str().map(str::to_owned).ok_or_else(|| format!("GraphQL answer lacks {what}: {value}").into())
}

/// The tenant of the `stats` scenario: its slug (to find it in the database) and owner token.
pub struct StatsTenant {
    pub slug: String,
    pub token: String,
}

/// signUp, then `affiliates` affiliates with `links_per_affiliate` tracking links each,
/// spread over `campaigns` campaigns (link `n` of the tenant on campaign `n % campaigns`).
pub async fn stats_tenant(
    client: &reqwest::Client,
    base: &str,
    affiliates: usize,
    campaigns: usize,
    links_per_affiliate: usize,
) -> Result<StatsTenant> {
    let slug = format!("stats-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let data = graphql(
        client,
        base,
        None,
        "mutation($input: SignUpInput!) { signUp(input: $input) { token } }",
        json!({ "input": {
            "tenantName": "Stats operator",
            "tenantSlug": slug,
            "email": format!("owner@{slug}.test"),
            "password": "correct horse battery staple",
        }}),
    )
    .await?;
    let token = text(&data["signUp"]["token"], "signUp.token")?;
    let auth = Some(token.as_str());
    let mut campaign_ids = Vec::with_capacity(campaigns);
    for n in 0..campaigns {
        let data = graphql(
            client,
            base,
            auth,
            "mutation($input: CreateCampaignInput!) { createCampaign(input: $input) { id } }",
            json!({ "input": { "name": format!("Campaign {n}"), "landingUrl": LANDING_URL } }),
        )
        .await?;
        campaign_ids.push(text(&data["createCampaign"]["id"], "createCampaign.id")?);
    }
    let mut link = 0;
    for n in 0..affiliates {
        let data = graphql(
            client,
            base,
            auth,
            "mutation($input: CreateAffiliateInput!) { createAffiliate(input: $input) { id } }",
            json!({ "input": { "name": format!("Affiliate {n}"), "email": format!("affiliate{n}@{slug}.test") } }),
        )
        .await?;
        let affiliate_id = text(&data["createAffiliate"]["id"], "createAffiliate.id")?;
        for _ in 0..links_per_affiliate {
            graphql(
                client,
                base,
                auth,
                "mutation($input: CreateTrackingLinkInput!) { createTrackingLink(input: $input) { code } }",
                json!({ "input": { "affiliateId": affiliate_id, "campaignId": campaign_ids[link % campaigns] } }),
            )
            .await?;
            link += 1;
        }
    }
    Ok(StatsTenant { slug, token })
}

/// signUp, createAffiliate, createCampaign, createTrackingLink × `links`, createApiKey.
pub async fn create(client: &reqwest::Client, base: &str, links: usize) -> Result<Tenant> {
    let slug = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let data = graphql(
        client,
        base,
        None,
        "mutation($input: SignUpInput!) { signUp(input: $input) { token } }",
        json!({ "input": {
            "tenantName": "Benchmark operator",
            "tenantSlug": slug,
            "email": format!("owner@{slug}.test"),
            "password": "correct horse battery staple",
        }}),
    )
    .await?;
    let token = text(&data["signUp"]["token"], "signUp.token")?;
    let auth = Some(token.as_str());

    let data = graphql(
        client,
        base,
        auth,
        "mutation($input: CreateAffiliateInput!) { createAffiliate(input: $input) { id } }",
        json!({ "input": { "name": "Bench affiliate", "email": format!("affiliate@{slug}.test") } }),
    )
    .await?;
    let affiliate_id = text(&data["createAffiliate"]["id"], "createAffiliate.id")?;

    let data = graphql(
        client,
        base,
        auth,
        "mutation($input: CreateCampaignInput!) { createCampaign(input: $input) { id } }",
        json!({ "input": { "name": "Bench campaign", "landingUrl": LANDING_URL } }),
    )
    .await?;
    let campaign_id = text(&data["createCampaign"]["id"], "createCampaign.id")?;

    let mut codes = Vec::with_capacity(links);
    for _ in 0..links {
        let data = graphql(
            client,
            base,
            auth,
            "mutation($input: CreateTrackingLinkInput!) { createTrackingLink(input: $input) { code } }",
            json!({ "input": { "affiliateId": affiliate_id, "campaignId": campaign_id } }),
        )
        .await?;
        codes.push(text(&data["createTrackingLink"]["code"], "createTrackingLink.code")?);
    }

    let data = graphql(
        client,
        base,
        auth,
        "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key } }",
        json!({ "input": { "name": "bench" } }),
    )
    .await?;
    let api_key = text(&data["createApiKey"]["key"], "createApiKey.key")?;
    Ok(Tenant { token, api_key, codes })
}

/// One real click per link; the click IDs come from the redirects' Location headers.
pub async fn click_ids(client: &reqwest::Client, base: &str, codes: &[String]) -> Result<Vec<String>> {
    let mut ids = Vec::with_capacity(codes.len());
    for code in codes {
        let response = client.get(format!("{base}/c/{code}")).send().await?;
        if response.status() != reqwest::StatusCode::FOUND {
            return Err(format!("GET /c/{code} answered {}, not 302", response.status()).into());
        }
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .ok_or("a redirect without a Location")?;
        let url = reqwest::Url::parse(location)?;
        let click_id = url
            .query_pairs()
            .find(|(name, _)| name == CLICK_ID_PARAM)
            .map(|(_, value)| value.into_owned())
            .ok_or_else(|| format!("no click ID in the Location {location}"))?;
        ids.push(click_id);
    }
    Ok(ids)
}

/// The query string of a deposit postback for `click_id` with a unique `txn_id`.
pub fn postback_path(click_id: &str, txn_id: &str) -> String {
    format!("/postback?click_id={click_id}&event=deposit&txn_id={txn_id}&amount=10.00&currency=EUR")
}

/// The query string of a registration postback for `click_id` that binds a new player.
pub fn registration_path(click_id: &str, player_id: &str) -> String {
    format!("/postback?click_id={click_id}&event=registration&player_id={player_id}")
}

/// Addresses handed out to postbacks so far, over the whole run: one each, from 10.0.0.0/8.
static ADDRESSES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The fraud signals a postback of the postbacks scenario carries, all distinct per postback
/// (`unique`, and an address of its own): every rule's lookup runs and finds nothing, as for
/// honest traffic. (Addresses were once taken from each worker's sequence number, so hundreds
/// of registrations shared each one and the velocity rule flagged them.)
pub fn fraud_signals(unique: &str) -> String {
    let [_, b, c, d] = ADDRESSES.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_be_bytes();
    format!(
        "&ip=10.{b}.{c}.{d}&device_id=dev-{unique}&email_hash=mail-{unique}&user_agent=Mozilla%2F5.0%20(iPhone)"
    )
}

/// Switches every fraud rule of the owner's tenant off (`on = false`) or back on.
pub async fn fraud_rules(client: &reqwest::Client, base: &str, token: &str, on: bool) -> Result {
    let rule = json!({ "enabled": on });
    let input = json!({
        "multiAccounting": rule, "clickInjection": rule, "selfReferral": rule, "botTraffic": rule,
        "datacenterIp": rule, "vpnIp": rule, "blocklistedIp": rule, "velocity": rule,
        "promoAbuse": rule, "clickSpamming": rule,
    });
    graphql(
        client,
        base,
        Some(token),
        "mutation($input: UpdateFraudSettingsInput!) { updateFraudSettings(input: $input) { velocity { enabled } } }",
        json!({ "input": input }),
    )
    .await?;
    Ok(())
}

/// One postback before the measurements: it must be accepted and attributed to the click.
pub async fn check_postback(client: &reqwest::Client, base: &str, api_key: &str, click_id: &str) -> Result {
    let response = client
        .get(format!("{base}{}", postback_path(click_id, "setup-check")))
        .bearer_auth(api_key)
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status != reqwest::StatusCode::OK || body["attributed"] != json!(true) {
        return Err(format!("the check postback answered {status}: {body}").into());
    }
    Ok(())
}
