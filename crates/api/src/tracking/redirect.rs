use chrono::Utc;
use clickledger_domain::click_id::ClickId;
use clickledger_domain::ids::VisitorId;
use clickledger_domain::status::CampaignStatus;
use clickledger_domain::url_template;
use clickledger_domain::validate;
use clickledger_domain::validate::without_control_characters as printable;
use clickledger_persistence::tracking::NewClick;
use poem::http::{Method, StatusCode, header};
use poem::web::Data;
use poem::{Request, Response, handler};

use crate::state::SharedState;

/// First-party visitor cookie: recognises a browser across clicks (the journey).
pub const VISITOR_COOKIE: &str = "clv";
const ONE_YEAR_SECONDS: u32 = 365 * 24 * 3600;
const MAX_CODE_LEN: usize = 32;
const MAX_PARAM_LEN: usize = 256;
/// As long as an imported affiliate's or campaign's external ID may be.
const MAX_EXTERNAL_ID_LEN: usize = 100;
/// Looked up once: the registry lookup behind `counter!` is measurable at this request rate.
static CLICKS_TOTAL: std::sync::LazyLock<metrics::Counter> =
    std::sync::LazyLock::new(|| metrics::counter!("clicks_total"));

fn not_found() -> Response {
    Response::builder().status(StatusCode::NOT_FOUND).body("unknown tracking link")
}

#[handler]
pub async fn click(req: &Request, state: Data<&SharedState>) -> Response {
    // Read from the path as it is (route `/c/:code`): no owned copy per redirect.
    let code = req.uri().path().strip_prefix("/c/").unwrap_or_default();
    serve(code, req, state.0, false).await
}

/// Another tracker's link shapes kept alive after a migration (`--legacy-link-path`):
/// `PATH?btag=CODE` answers exactly as `/c/CODE` does, and `PATH?a=AFFILIATE&c=CAMPAIGN`
/// (imported external IDs) as the link of that affiliate and campaign does, with the old
/// `s1`…`s5` as `sub1`…`sub5`.
#[handler]
pub async fn legacy_click(req: &Request, state: Data<&SharedState>) -> Response {
    let query = req.uri().query().unwrap_or_default();
    let param = |wanted: &str| {
        url::form_urlencoded::parse(query.as_bytes()).find(|(name, _)| name == wanted).map(|(_, v)| v)
    };
    if let Some(code) = param("btag") {
        return serve(&code, req, state.0, false).await;
    }
    let (Some(affiliate), Some(campaign)) = (param("a"), param("c")) else { return not_found() };
    let valid =
        |id: &str| !id.is_empty() && id.len() <= MAX_EXTERNAL_ID_LEN && !id.chars().any(char::is_control);
    if !valid(&affiliate) || !valid(&campaign) {
        return not_found();
    }
    match state.links.code_for_pair(&state.db, &affiliate, &campaign).await {
        Ok(Some(code)) => serve(&code, req, state.0, true).await,
        Ok(None) => not_found(),
        Err(err) => {
            tracing::error!(error = %err, "legacy link lookup failed");
            Response::builder().status(StatusCode::SERVICE_UNAVAILABLE).body("try again")
        }
    }
}

/// `old_subs`: the request is another tracker's shape, whose `s1`…`s5` are our `sub1`…`sub5`.
async fn serve(code: &str, req: &Request, state: &SharedState, old_subs: bool) -> Response {
    // Native codes are alphanumeric; imported ones keep their old `-` and `_`.
    if code.is_empty() || code.len() > MAX_CODE_LEN || !validate::is_link_code(code) {
        return not_found();
    }
    let link = match state.links.get(&state.db, code).await {
        Ok(Some(link)) => link,
        Ok(None) => return not_found(),
        Err(err) => {
            tracing::error!(error = %err, "link lookup failed");
            return Response::builder().status(StatusCode::SERVICE_UNAVAILABLE).body("try again");
        }
    };
    let target = &link.target;
    if !target.tracking {
        return not_found();
    }
    match target.campaign_status {
        CampaignStatus::Active => {}
        // A paused campaign keeps its traffic somewhere useful, but records nothing.
        CampaignStatus::Paused => {
            return match &target.fallback_url {
                Some(url) => redirect(url, None),
                None => not_found(),
            };
        }
        CampaignStatus::Archived => return not_found(),
    }

    let params = Params::from_query(req.uri().query().unwrap_or_default(), old_subs);
    let now = Utc::now();
    let click_id = ClickId::mint(target.click_tag, target.link_tag, now).encode(&link.secret);
    let known_visitor = visitor_cookie(req);
    let visitor = known_visitor.unwrap_or_default();

    let location = fill_macros(
        &target.landing_url,
        &[
            ("click_id", click_id.as_str()),
            ("affiliate_id", link.affiliate_id.as_str()),
            ("campaign_id", link.campaign_id.as_str()),
            ("sub1", params.subs[0].as_deref().unwrap_or_default()),
            ("sub2", params.subs[1].as_deref().unwrap_or_default()),
            ("sub3", params.subs[2].as_deref().unwrap_or_default()),
            ("sub4", params.subs[3].as_deref().unwrap_or_default()),
            ("sub5", params.subs[4].as_deref().unwrap_or_default()),
        ],
    );

    if counts_as_click(req) {
        CLICKS_TOTAL.increment(1);
        let header_text = |name: header::HeaderName| {
            req.headers().get(name).and_then(|v| v.to_str().ok()).map(|v| truncate(&printable(v), 512))
        };
        let user_agent = header_text(header::USER_AGENT);
        let ip = crate::http::client_ip(req);
        state
            .clicks
            .record(NewClick {
                click_id,
                tenant_id: target.tenant_id,
                link_id: target.link_id,
                affiliate_id: target.affiliate_id,
                campaign_id: target.campaign_id,
                visitor_id: visitor,
                new_visitor: known_visitor.is_none(),
                clicked_at: now,
                velocity: state.click_velocity.over(target.link_id, ip, now.timestamp()),
                // Looked up by the click writer, off the redirect's path.
                country: None,
                ip: ip.map(|ip| ip.to_string()),
                is_bot: user_agent
                    .as_deref()
                    .is_some_and(|ua| clickledger_domain::user_agent::classify(ua).is_bot),
                user_agent,
                referrer: header_text(header::REFERER),
                accept_language: header_text(header::ACCEPT_LANGUAGE),
                subs: params.subs,
                source: params.source,
                creative: params.creative,
                landing_page: params.lp,
            })
            .await;
    }

    let secure = state.public_url.starts_with("https://");
    let cookie = format!(
        "{VISITOR_COOKIE}={visitor}; Max-Age={ONE_YEAR_SECONDS}; Path=/; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    );
    redirect(&location, Some(cookie))
}

fn redirect(location: &str, cookie: Option<String>) -> Response {
    let mut response = Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, location)
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::REFERRER_POLICY, "no-referrer-when-downgrade");
    if let Some(cookie) = cookie {
        response = response.header(header::SET_COOKIE, cookie);
    }
    response.finish()
}

/// The visitor ID from our cookie, if the browser sent a valid one.
fn visitor_cookie(req: &Request) -> Option<VisitorId> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == VISITOR_COOKIE)
        .and_then(|(_, value)| VisitorId::parse(value, "visitor").ok())
}

/// `HEAD` and browser or proxy prefetches get the redirect but are not clicks.
fn counts_as_click(req: &Request) -> bool {
    if req.method() == Method::HEAD {
        return false;
    }
    let prefetch = |name: &str| {
        req.headers().get(name).and_then(|v| v.to_str().ok()).is_some_and(|v| {
            v.to_ascii_lowercase().contains("prefetch") || v.to_ascii_lowercase().contains("prerender")
        })
    };
    !(prefetch("sec-purpose") || prefetch("purpose") || prefetch("x-purpose") || prefetch("x-moz"))
}

/// Fills the landing URL's macros (URL-encoded). Only these macros are replaced, and the
/// URL itself comes from the campaign, never from the request.
pub fn fill_macros(template: &str, values: &[(&str, &str)]) -> String {
    url_template::fill(template, |name| values.iter().find(|(n, _)| *n == name).map(|(_, value)| *value))
}

fn truncate(value: &str, max: usize) -> String {
    if value.len() <= max {
        return value.to_owned();
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].to_owned()
}

struct Params {
    subs: [Option<String>; 5],
    source: Option<String>,
    creative: Option<String>,
    lp: Option<String>,
}

impl Params {
    /// With `old_subs`, `s1`…`s5` fill the sub-IDs that `sub1`…`sub5` leave empty.
    fn from_query(query: &str, old_subs: bool) -> Params {
        let mut params = Params { subs: Default::default(), source: None, creative: None, lp: None };
        let mut old: [Option<String>; 5] = Default::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let value = Some(truncate(&printable(&value), MAX_PARAM_LEN)).filter(|v| !v.is_empty());
            match name.as_ref() {
                "s1" | "s2" | "s3" | "s4" | "s5" if old_subs => {
                    let n = usize::from(name.as_bytes()[1] - b'1');
                    old[n] = value;
                }
                "sub1" => params.subs[0] = value,
                "sub2" => params.subs[1] = value,
                "sub3" => params.subs[2] = value,
                "sub4" => params.subs[3] = value,
                "sub5" => params.subs[4] = value,
                "source" => params.source = value,
                "creative" => params.creative = value,
                "lp" => params.lp = value,
                _ => {}
            }
        }
        for (sub, old) in params.subs.iter_mut().zip(old) {
            if sub.is_none() {
                *sub = old;
            }
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use super::{Params, fill_macros};

    #[test]
    fn recorded_parameters_carry_no_control_characters() {
        let params = Params::from_query("sub1=%00&sub2=a%01b&source=x%0Ay&lp=%7F", false);
        assert_eq!(params.subs[0], None);
        assert_eq!(params.subs[1].as_deref(), Some("ab"));
        assert_eq!(params.source.as_deref(), Some("xy"));
        assert_eq!(params.lp, None);
    }

    #[test]
    fn another_trackers_sub_ids_fill_only_what_ours_leave_empty() {
        let params = Params::from_query("s1=old1&sub2=new2&s2=old2&s5=old5", true);
        assert_eq!(params.subs, [Some("old1".into()), Some("new2".into()), None, None, Some("old5".into())]);
        assert_eq!(Params::from_query("s1=old1", false).subs[0], None);
    }

    #[test]
    fn macros_are_url_encoded_and_unknown_ones_left_alone() {
        let url = fill_macros(
            "https://x.test/?c={click_id}&s={sub1}&k={keep}",
            &[("click_id", "a-b"), ("sub1", "a&b=c d")],
        );
        assert_eq!(url, "https://x.test/?c=a-b&s=a%26b%3Dc%20d&k={keep}");
    }
}
