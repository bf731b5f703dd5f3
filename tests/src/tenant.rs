//! Fixtures for attribution tests: a tenant set up through the public GraphQL API, tracking
//! link clicks and inbound postbacks over real HTTP.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::TestApp;

/// The landing URL template every test campaign uses.
pub const LANDING_URL: &str = "https://land.example/p?cid={click_id}&s={sub1}&a={affiliate_id}";
pub const PASSWORD: &str = "correct horse battery";

/// A tenant with its owner's token and an API key for postbacks.
pub struct Tenant<'a> {
    pub app: &'a TestApp,
    pub slug: String,
    pub id: String,
    pub token: String,
    pub api_key: String,
}

#[derive(Debug, Clone)]
pub struct Link {
    pub id: String,
    pub code: String,
}

impl<'a> Tenant<'a> {
    /// Signs up (owner) and creates an API key.
    pub async fn create(app: &'a TestApp, slug: &str) -> Tenant<'a> {
        let (token, id) = app.sign_up(slug).await;
        let mut tenant = Tenant { app, slug: slug.to_owned(), id, token, api_key: String::new() };
        let data = tenant
            .run(
                "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key } }",
                json!({ "input": { "name": "integration" } }),
            )
            .await;
        tenant.api_key = data["createApiKey"]["key"].as_str().expect("API key").to_owned();
        tenant
    }

    /// The same tenant and credentials, talking to another process (a replica).
    pub fn on<'b>(&self, app: &'b TestApp) -> Tenant<'b> {
        Tenant {
            app,
            slug: self.slug.clone(),
            id: self.id.clone(),
            token: self.token.clone(),
            api_key: self.api_key.clone(),
        }
    }

    /// Runs a query or mutation as the owner; returns `data`, panicking on any error.
    pub async fn run(&self, query: &str, variables: Value) -> Value {
        run_as(self.app, &self.token, query, variables).await
    }

    pub fn affiliate_email(&self, name: &str) -> String {
        format!("{name}@partners.{}.test", self.slug)
    }

    /// Creates an affiliate (able to log in with [`PASSWORD`] when `can_log_in`); returns its ID.
    pub async fn create_affiliate(&self, name: &str, can_log_in: bool) -> String {
        let mut input = json!({ "name": name, "email": self.affiliate_email(name) });
        if can_log_in {
            input["password"] = json!(PASSWORD);
        }
        let data = self
            .run(
                "mutation($input: CreateAffiliateInput!) { createAffiliate(input: $input) { id } }",
                json!({ "input": input }),
            )
            .await;
        data["createAffiliate"]["id"].as_str().expect("affiliate id").to_owned()
    }

    /// Logs an affiliate in; returns its token.
    pub async fn login_affiliate(&self, name: &str) -> String {
        let answer = self
            .app
            .graphql(
                None,
                "mutation($input: LoginInput!) { login(input: $input) { token user { role } } }",
                json!({ "input": {
                    "tenantSlug": self.slug, "email": self.affiliate_email(name), "password": PASSWORD,
                }}),
            )
            .await;
        assert_eq!(answer["data"]["login"]["user"]["role"], "AFFILIATE", "affiliate login: {answer}");
        answer["data"]["login"]["token"].as_str().expect("token").to_owned()
    }

    /// Creates a campaign on [`LANDING_URL`]; `extra` adds input fields (e.g. fallbackUrl,
    /// attributionModel). Returns its ID.
    pub async fn create_campaign(&self, name: &str, extra: Value) -> String {
        let mut input = json!({ "name": name, "landingUrl": LANDING_URL });
        if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
            input.extend(extra.clone());
        }
        let data = self
            .run(
                "mutation($input: CreateCampaignInput!) { createCampaign(input: $input) { id landingUrl } }",
                json!({ "input": input }),
            )
            .await;
        assert_eq!(data["createCampaign"]["landingUrl"], LANDING_URL);
        data["createCampaign"]["id"].as_str().expect("campaign id").to_owned()
    }

    pub async fn create_link(&self, affiliate_id: &str, campaign_id: &str) -> Link {
        let data = self
            .run(
                "mutation($input: CreateTrackingLinkInput!) { createTrackingLink(input: $input) { id code } }",
                json!({ "input": { "affiliateId": affiliate_id, "campaignId": campaign_id } }),
            )
            .await;
        let link = &data["createTrackingLink"];
        Link {
            id: link["id"].as_str().expect("link id").to_owned(),
            code: link["code"].as_str().expect("link code").to_owned(),
        }
    }

    /// Creates a commission plan with `rules` and makes it the campaign's default (for
    /// affiliates without a plan of their own), in force from now. Returns the plan's ID.
    pub async fn create_default_plan(&self, campaign_id: &str, name: &str, rules: Value) -> String {
        let data = self
            .run(
                "mutation($input: CreateCommissionPlanInput!) { createCommissionPlan(input: $input) { id } }",
                json!({ "input": { "name": name, "rules": rules } }),
            )
            .await;
        let plan = data["createCommissionPlan"]["id"].as_str().expect("plan id").to_owned();
        self.run(
            "mutation($input: AssignCommissionPlanInput!) { assignCommissionPlan(input: $input) { id } }",
            json!({ "input": { "planId": plan, "campaignId": campaign_id } }),
        )
        .await;
        plan
    }

    /// An inbound postback by GET with `key=`; returns (HTTP status, JSON body).
    pub async fn postback(&self, params: &[(&str, &str)]) -> (u16, Value) {
        let mut all = vec![("key", self.api_key.as_str())];
        all.extend_from_slice(params);
        self.app.postback_get(&all).await
    }

    /// A postback that must succeed; returns the answer.
    pub async fn postback_ok(&self, params: &[(&str, &str)]) -> Value {
        let (status, body) = self.postback(params).await;
        assert_eq!(status, 200, "postback {params:?} answered {body}");
        body
    }

    /// The tenant's conversions as the owner sees them, oldest first.
    pub async fn conversions(&self) -> Vec<Value> {
        conversions_as(self.app, &self.token).await
    }
}

/// Runs a query or mutation with `token`; returns `data`, panicking on any error.
pub async fn run_as(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    let answer = app.graphql(Some(token), query, variables).await;
    assert!(answer.get("errors").is_none_or(Value::is_null), "GraphQL errors for `{query}`: {answer}");
    answer["data"].clone()
}

pub const CONVERSION_FIELDS: &str = "id event status txnId clickId playerId campaignId amount currency \
    attributed unattributedReason model credits { affiliateId share commission }";

/// Conversions visible to `token`, oldest first (first 100).
pub async fn conversions_as(app: &TestApp, token: &str) -> Vec<Value> {
    let data = run_as(
        app,
        token,
        &format!("{{ conversions(first: 100) {{ nodes {{ {CONVERSION_FIELDS} }} }} }}"),
        json!({}),
    )
    .await;
    data["conversions"]["nodes"].as_array().expect("conversion nodes").clone()
}

/// The answer to `GET /c/{code}`.
#[derive(Debug)]
pub struct ClickAnswer {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookie: Option<String>,
}

impl ClickAnswer {
    /// The visitor ID from `Set-Cookie: clv=…`.
    pub fn visitor(&self) -> Option<&str> {
        let cookie = self.set_cookie.as_deref()?;
        let first = cookie.split(';').next()?.trim();
        first.strip_prefix("clv=")
    }

    /// A query parameter of the Location, as sent (still percent-encoded).
    pub fn location_param(&self, name: &str) -> Option<&str> {
        let (_, query) = self.location.as_deref()?.split_once('?')?;
        query.split('&').filter_map(|pair| pair.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// The click ID filled into [`LANDING_URL`]'s `cid`.
    pub fn click_id(&self) -> String {
        assert_eq!(self.status, 302, "not a redirect: {self:?}");
        self.location_param("cid").expect("cid in Location").to_owned()
    }
}

/// Replaces the character at `index` with another URL-safe one.
pub fn flip_char(id: &str, index: usize) -> String {
    let mut chars: Vec<char> = id.chars().collect();
    chars[index] = if chars[index] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// Adds decimal strings exactly (up to 9 fractional digits), e.g. shares.
pub fn sum_decimals<'v>(values: impl IntoIterator<Item = &'v str>) -> String {
    const SCALE: u32 = 9;
    let mut total: i128 = 0;
    for value in values {
        let (int, frac) = value.split_once('.').unwrap_or((value, ""));
        assert!(frac.len() <= SCALE as usize, "too many decimals in {value}");
        let int: i128 = int.parse().expect("integer part");
        let frac_units: i128 = if frac.is_empty() {
            0
        } else {
            frac.parse::<i128>().expect("fraction") * 10i128.pow(SCALE - frac.len() as u32)
        };
        total += int * 10i128.pow(SCALE) + frac_units;
    }
    let (int, frac) = (total / 10i128.pow(SCALE), total % 10i128.pow(SCALE));
    let frac = format!("{frac:09}");
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() { int.to_string() } else { format!("{int}.{frac}") }
}

impl TestApp {
    /// `GET /c/{code}?{query}`, optionally with the visitor cookie.
    pub async fn click(&self, code: &str, query: &str, visitor: Option<&str>) -> ClickAnswer {
        self.click_with(reqwest::Method::GET, code, query, visitor).await
    }

    pub async fn click_with(
        &self,
        method: reqwest::Method,
        code: &str,
        query: &str,
        visitor: Option<&str>,
    ) -> ClickAnswer {
        let url = if query.is_empty() {
            self.url(&format!("/c/{code}"))
        } else {
            self.url(&format!("/c/{code}?{query}"))
        };
        let mut request = self.client.request(method, url);
        if let Some(visitor) = visitor {
            request = request.header("Cookie", format!("clv={visitor}"));
        }
        let response = request.send().await.expect("click request");
        let header =
            |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        ClickAnswer {
            status: response.status().as_u16(),
            location: header("location"),
            set_cookie: header("set-cookie"),
        }
    }

    /// `GET /postback?…`; returns (HTTP status, JSON body).
    pub async fn postback_get(&self, params: &[(&str, &str)]) -> (u16, Value) {
        let response =
            self.client.get(self.url("/postback")).query(params).send().await.expect("GET /postback");
        answer(response).await
    }

    /// `POST /postback` with a form body.
    pub async fn postback_form(&self, params: &[(&str, &str)]) -> (u16, Value) {
        let response =
            self.client.post(self.url("/postback")).form(params).send().await.expect("POST /postback");
        answer(response).await
    }

    /// `POST /postback` with a JSON body and, optionally, `Authorization: Bearer`.
    pub async fn postback_json(&self, bearer: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = self.client.post(self.url("/postback")).json(&body);
        if let Some(key) = bearer {
            request = request.bearer_auth(key);
        }
        answer(request.send().await.expect("POST /postback")).await
    }

    /// The value of an unlabelled counter or gauge in `/metrics` (0 when not yet reported).
    pub async fn metric(&self, name: &str) -> f64 {
        let text =
            self.client.get(self.url("/metrics")).send().await.expect("GET /metrics").text().await.unwrap();
        text.lines()
            .filter_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .map(|value| value.trim().parse::<f64>().expect("metric value"))
            .next()
            .unwrap_or(0.0)
    }

    /// Waits until the write-behind batcher has committed at least `count` clicks in total.
    pub async fn wait_for_recorded_clicks(&self, count: f64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let recorded = self.metric("clicks_recorded_total").await;
            if recorded >= count {
                return;
            }
            assert!(Instant::now() < deadline, "only {recorded} of {count} clicks recorded after 10 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("postback body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("postback answered non-JSON ({status}): {text}"));
    (status, body)
}
