//! The inbound postback: `GET` or `POST` (query, form or JSON) at `/postback`.
//!
//! Signatures (README, *Postbacks*): a `v2` signature is HMAC-SHA256 under the key's own
//! signing secret over the canonical string of every parameter the postback uses (query and
//! body together, `timestamp` included, `signature` left out), so nothing the server reads can
//! be changed or added unnoticed. The `v1` header (the API key as HMAC key, over the body or
//! the query string alone) is still checked for keys that do not require signatures, so
//! existing integrations keep working.
//!
//! Dialects (README, *Postbacks*): a key speaking another tracker's names has its parameters
//! translated by `domain::dialect` after the signature is checked (signatures cover what was
//! received) and before the postback is parsed; errors name fields as the sender did, and a
//! HasOffers key is answered in HasOffers' plain text.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use clickledger_domain::dialect::{self, Dialect};
use clickledger_domain::postback::{FieldError, parse as parse_postback};
use clickledger_persistence::conversions::{Conversion, IngestOutcome};
use clickledger_persistence::directory::Directory;
use clickledger_persistence::records::PresentedKey;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use poem::http::{Method, StatusCode, header};
use poem::web::{Data, Json};
use poem::{Body, IntoResponse, Request, Response, handler};
use serde_json::{Value, json};
use sha2::Sha256;

use super::api_key;
use crate::Error;
use crate::auth::retry_after_seconds;
use crate::state::SharedState;

pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Signed requests older (or newer) than this are refused as replays.
pub const SIGNATURE_TOLERANCE_SECONDS: i64 = 300;
pub const SIGNATURE_HEADER: &str = "x-clickledger-signature";
/// The parameter that carries a `v2` signature (or the header, as `v2=<hex>`).
pub const SIGNATURE_PARAM: &str = "signature";
/// The signed parameter that dates a `v2` signature, in Unix seconds.
pub const TIMESTAMP_PARAM: &str = "timestamp";

/// RFC 3986 percent-encoding: everything but the unreserved characters
/// `A–Z a–z 0–9 - . _ ~` is encoded, as `%XX` with upper-case hex, byte by byte of UTF-8.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

#[handler]
pub async fn receive(req: &Request, body: Body, state: Data<&SharedState>) -> Response {
    let received = Instant::now();
    // Known once the key is: until then (no key, an unknown one) the answer is native JSON.
    let mut dialect = Dialect::Clickledger;
    let result = store(req, body, &state, received, &mut dialect).await;
    if let Err(err) = &result
        && let Some(reason) = rejection_reason(err)
    {
        metrics::counter!("postbacks_rejected_total", "reason" => reason).increment(1);
    }
    match (result, dialect.answers_plain_text()) {
        (Ok(response), false) => response,
        (Err(err), false) => err.as_http(),
        (Ok(_), true) => plain_text(StatusCode::OK, "success=true;".to_owned()),
        (Err(err), true) => {
            let mut response =
                plain_text(err.status(), format!("success=false; err_msg={}", plain_message(&err)));
            if let Some(retry_after) = err.as_http().headers().get(header::RETRY_AFTER) {
                response.headers_mut().insert(header::RETRY_AFTER, retry_after.clone());
            }
            response
        }
    }
}

/// HasOffers' answer format: `text/plain`, the HTTP status as for any other dialect.
fn plain_text(status: StatusCode, text: String) -> Response {
    Response::builder().status(status).content_type("text/plain; charset=utf-8").body(text)
}

/// An error's message on one line without `;` (HasOffers' separator), every bad field named.
fn plain_message(err: &Error) -> String {
    let mut message = err.to_string();
    if let Error::BadRequest { fields, .. } = err
        && !fields.is_empty()
    {
        let named: Vec<String> = fields.iter().map(|f| format!("{} {}", f.field, f.message)).collect();
        message = format!("{message}: {}", named.join(", "));
    }
    message.chars().map(|c| if c == ';' || c.is_control() { ' ' } else { c }).collect()
}

/// Which `postbacks_rejected_total` reason an error counts under, if it is a rejection.
fn rejection_reason(err: &Error) -> Option<&'static str> {
    match err {
        Error::BadRequest { .. } => Some("invalid"),
        Error::BadApiKey(_) => Some("unauthenticated"),
        Error::BadSignature(_) => Some("signature"),
        Error::Throttled { .. } => Some("rate_limited"),
        Error::TransactionMismatch { .. } | Error::StatusBackward { .. } => Some("conflict"),
        _ => None,
    }
}

async fn store(
    req: &Request,
    body: Body,
    state: &SharedState,
    received: Instant,
    dialect: &mut Dialect,
) -> Result<Response, Error> {
    let raw_body = super::read_limited(body, MAX_BODY_BYTES).await.map_err(|err| match err {
        super::BodyError::TooLarge => Error::PayloadTooLarge("body exceeds 64 KiB"),
        _ => Error::BadRequest { message: "cannot read the body".into(), fields: Vec::new() },
    })?;
    let params = collect_params(req, &raw_body)
        .map_err(|field| Error::BadRequest { message: "malformed body".into(), fields: vec![field] })?;
    let presented_key = params
        .iter()
        .find(|(name, _)| name == "key")
        .map(|(_, value)| value.clone())
        .or_else(|| bearer(req))
        .ok_or(Error::BadApiKey("an API key is required (`key` or Authorization: Bearer)"))?;
    let key =
        authenticate(state, &presented_key).await?.ok_or(Error::BadApiKey("unknown or revoked API key"))?;
    *dialect = key.dialect;
    // Signatures cover the parameters as received, before any dialect translates them.
    check_signature(req, &raw_body, &params, &presented_key, &key, Utc::now().timestamp())?;
    // After the signature: where signatures are required, only the integrator can spend the
    // key's budget.
    state
        .postback_limits
        .check(key.id, key.postbacks_per_minute)
        .map_err(|wait| Error::Throttled { retry_after: retry_after_seconds(wait) })?;
    let tenant = key.tenant;

    let received_at = Utc::now();
    let invalid = |fields| Error::BadRequest { message: "invalid postback".into(), fields };
    let translation = dialect::translate(key.mapping(), &params).map_err(invalid)?;
    let parsed =
        parse_postback(translation.params.iter().map(|(k, v)| (k.as_str(), v.as_str())), received_at)
            .map_err(|fields| invalid(translation.sender_errors(fields)))?;
    Ok(match crate::ingest::ingest(state, tenant, parsed, received_at, received).await? {
        IngestOutcome::Created(event) | IngestOutcome::StatusChanged(event) => {
            let conversion = &event.conversion;
            let attributed = conversion.attributed.to_string();
            metrics::counter!("conversions_total", "status" => conversion.status.as_str(), "attributed" => attributed)
                .increment(1);
            answer(conversion, false)
        }
        IngestOutcome::Duplicate(conversion) => {
            metrics::counter!("postbacks_duplicate_total").increment(1);
            answer(&conversion, true)
        }
    })
}

fn answer(conversion: &Conversion, duplicate: bool) -> Response {
    let credits: Vec<Value> = conversion
        .credits
        .iter()
        .map(|c| json!({ "affiliate_id": c.affiliate_id.to_string(), "share": c.share.to_string() }))
        .collect();
    // The operator's own backend sent the signals, so it may see what the rules made of them.
    let flags: Vec<Value> = conversion
        .fraud
        .flags
        .iter()
        .map(|f| json!({ "rule": f.rule.as_str(), "score": f.score, "action": f.action.as_str(), "evidence": f.evidence }))
        .collect();
    Json(json!({
        "conversion_id": conversion.id.to_string(),
        "event": conversion.event.as_str(),
        "status": conversion.status.as_str(),
        "duplicate": duplicate,
        "attributed": conversion.attributed,
        "unattributed_reason": conversion.unattributed_reason.map(|reason| reason.as_str()),
        "credits": credits,
        "risk": conversion.fraud.risk,
        "fraud_action": conversion.fraud.action.map(|action| action.as_str()),
        "rejection_reason": conversion.fraud.rejection_reason(),
        "flags": flags,
    }))
    .into_response()
}

fn bearer(req: &Request) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|v| v.trim().to_owned())
}

async fn authenticate(state: &SharedState, presented: &str) -> Result<Option<Arc<PresentedKey>>, Error> {
    let hash = api_key::hash(presented);
    let found = match state.api_keys.get(&hash) {
        Some(cached) => cached,
        None => {
            let found = Directory::new(&state.db).authenticate_api_key(&hash).await?.map(Arc::new);
            state.api_keys.insert(hash, found.clone());
            found
        }
    };
    if let Some(key) = &found {
        state.api_keys.note_use(key.id, Utc::now());
    }
    Ok(found)
}

/// A `v2` signature (the `signature` parameter, else `v2=` in the header) is verified under
/// the key's signing secret whatever the key's switch says; without one, a key that requires
/// signatures refuses the postback, and any other key checks a `v1` header if one came.
fn check_signature(
    req: &Request,
    raw_body: &[u8],
    params: &[(String, String)],
    presented_key: &str,
    key: &PresentedKey,
    now: i64,
) -> Result<(), Error> {
    let header = req.headers().get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let v2 = params
        .iter()
        .find(|(name, _)| name == SIGNATURE_PARAM)
        .map(|(_, value)| value.as_str())
        .or_else(|| header.and_then(|h| h.split(',').find_map(|part| part.trim().strip_prefix("v2="))));
    if let Some(signature) = v2 {
        let secret = key
            .signing_secret
            .as_deref()
            .ok_or(Error::BadSignature("this key has no signing secret: rotate one in first"))?;
        return verify_v2(secret, signature, params, now).map_err(Error::BadSignature);
    }
    if key.signature_required {
        return Err(Error::BadSignature(
            "this key requires signed postbacks: `timestamp` and `signature` parameters (see Postbacks in the README)",
        ));
    }
    if let Some(header) = header {
        let signed = if req.method() == Method::GET {
            req.uri().query().unwrap_or_default().as_bytes()
        } else {
            raw_body
        };
        verify_signature(presented_key, header, signed, now).map_err(Error::BadSignature)?;
    }
    Ok(())
}

/// The string a `v2` signature covers: every parameter but `signature`, each name and value
/// percent-encoded per RFC 3986, sorted by encoded name, as `name=value` joined with `&`. A
/// name may appear only once (query and body together), so the string says exactly what the
/// server reads.
pub fn canonical_string(params: &[(String, String)]) -> Result<String, &'static str> {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .filter(|(name, _)| name != SIGNATURE_PARAM)
        .map(|(name, value)| {
            (utf8_percent_encode(name, RFC3986).to_string(), utf8_percent_encode(value, RFC3986).to_string())
        })
        .collect();
    pairs.sort();
    if pairs.windows(2).any(|pair| pair[0].0 == pair[1].0) {
        return Err("a signed postback must name each parameter once (query and body together)");
    }
    let joined: Vec<String> = pairs.into_iter().map(|(name, value)| format!("{name}={value}")).collect();
    Ok(joined.join("&"))
}

/// `signature` = lower- or upper-case hex of HMAC-SHA256(signing secret, canonical string),
/// with a `timestamp` parameter (Unix seconds) within [`SIGNATURE_TOLERANCE_SECONDS`] of now.
pub fn verify_v2(
    secret: &str,
    signature: &str,
    params: &[(String, String)],
    now: i64,
) -> Result<(), &'static str> {
    let timestamp = params
        .iter()
        .find(|(name, _)| name == TIMESTAMP_PARAM)
        .ok_or("a signed postback needs a `timestamp` parameter (Unix seconds)")?
        .1
        .parse::<i64>()
        .map_err(|_| "`timestamp` must be Unix seconds")?;
    if !within_tolerance(timestamp, now) {
        return Err("signature timestamp is too old or in the future");
    }
    let canonical = canonical_string(params)?;
    let expected = hex::decode(signature.trim()).map_err(|_| "signature must be hex")?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| "signature does not match")?;
    mac.update(canonical.as_bytes());
    // verify_slice compares in constant time.
    mac.verify_slice(&expected).map_err(|_| "signature does not match")
}

/// Whether a signature's timestamp (the sender's, so any `i64`) is near enough to now.
fn within_tolerance(timestamp: i64, now: i64) -> bool {
    now.abs_diff(timestamp) <= SIGNATURE_TOLERANCE_SECONDS.unsigned_abs()
}

/// Query string, then the body (form or JSON object of scalars); a later value wins.
fn collect_params(req: &Request, body: &[u8]) -> Result<Vec<(String, String)>, FieldError> {
    let mut params: Vec<(String, String)> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    if body.is_empty() {
        return Ok(params);
    }
    let content_type =
        req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if content_type.starts_with("application/json") {
        let value: Value = serde_json::from_slice(body)
            .map_err(|err| FieldError { field: "body".into(), message: format!("invalid JSON: {err}") })?;
        let Value::Object(object) = value else {
            return Err(FieldError { field: "body".into(), message: "must be a JSON object".into() });
        };
        for (name, value) in object {
            let text = match value {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => continue,
                _ => {
                    return Err(FieldError {
                        field: "body".into(),
                        message: format!("`{name}` must be a string or number"),
                    });
                }
            };
            params.push((name, text));
        }
    } else {
        params.extend(url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())));
    }
    Ok(params)
}

/// The legacy `v1` scheme, kept for keys that do not require signatures:
/// `X-Clickledger-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>.<payload>")>`,
/// where the payload is the body (POST) or the raw query string (GET).
pub fn verify_signature(key: &str, header_value: &str, payload: &[u8], now: i64) -> Result<(), &'static str> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header_value.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => signatures.push(sig),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or("signature header lacks t=<unix seconds>")?;
    if !within_tolerance(timestamp, now) {
        return Err("signature timestamp is too old or in the future");
    }
    for signature in signatures {
        let Ok(expected) = hex::decode(signature) else { continue };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.as_bytes()) else { continue };
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        // verify_slice compares in constant time.
        if mac.verify_slice(&expected).is_ok() {
            return Ok(());
        }
    }
    Err("signature does not match")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(key: &str, t: i64, payload: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(payload);
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn signatures_verify_and_reject_tampering_and_staleness() {
        let header = sign("clk_key", 1_000, b"event=ftd");
        assert!(verify_signature("clk_key", &header, b"event=ftd", 1_010).is_ok());
        assert!(verify_signature("clk_key", &header, b"event=deposit", 1_010).is_err());
        assert!(verify_signature("other", &header, b"event=ftd", 1_010).is_err());
        assert!(
            verify_signature("clk_key", &header, b"event=ftd", 1_000 + SIGNATURE_TOLERANCE_SECONDS + 1)
                .is_err()
        );
        assert!(verify_signature("clk_key", "v1=00", b"", 0).is_err());
    }

    #[test]
    fn hasoffers_error_messages_stay_on_one_line_with_one_separator() {
        let err = Error::BadRequest {
            message: "invalid postback".into(),
            fields: vec![
                FieldError { field: "adv_sub".into(), message: "is required for ftd".into() },
                FieldError { field: "amount".into(), message: "bad;\nvalue".into() },
            ],
        };
        assert_eq!(plain_message(&err), "invalid postback: adv_sub is required for ftd, amount bad  value");
        assert_eq!(
            plain_message(&Error::BadApiKey("unknown or revoked API key")),
            "unknown or revoked API key"
        );
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The worked example of README's *Postbacks*; the signature there was computed with
    /// `openssl dgst -sha256 -hmac`, independently of this code.
    #[test]
    fn the_readme_worked_example_verifies() {
        let secret = "clsig_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let sent = params(&[
            ("key", "clk_ExampleExampleExampleExampleExample12345"),
            ("player_id", "p-42"),
            ("event", "ftd"),
            ("txn_id", "t-1001"),
            ("amount", "100.50"),
            ("currency", "EUR"),
            ("promo_code", "SPRING 25"),
            ("timestamp", "1767225600"),
            ("signature", "ignored: never part of the string"),
        ]);
        assert_eq!(
            canonical_string(&sent).unwrap(),
            "amount=100.50&currency=EUR&event=ftd&key=clk_ExampleExampleExampleExampleExample12345\
             &player_id=p-42&promo_code=SPRING%2025&timestamp=1767225600&txn_id=t-1001"
        );
        let signature = "68c938ce3323b6128552d23ec54878efd1000fac48947be6b6e810520bb088c9";
        assert_eq!(verify_v2(secret, signature, &sent, 1_767_225_600 + 299), Ok(()));
        assert_eq!(verify_v2(secret, &signature.to_uppercase(), &sent, 1_767_225_600), Ok(()));
        assert!(verify_v2(secret, signature, &sent, 1_767_225_600 + 301).is_err(), "stale");
        assert!(verify_v2(secret, signature, &sent, 1_767_225_600 - 301).is_err(), "from the future");
        assert!(verify_v2("clsig_other", signature, &sent, 1_767_225_600).is_err(), "another secret");
        let mut changed = sent.clone();
        changed[4].1 = "1000.50".into();
        assert!(verify_v2(secret, signature, &changed, 1_767_225_600).is_err(), "a changed value");
        let mut added = sent.clone();
        added.push(("status".into(), "rejected".into()));
        assert!(verify_v2(secret, signature, &added, 1_767_225_600).is_err(), "an added parameter");
        let mut repeated = sent.clone();
        repeated.push(("event".into(), "ftd".into()));
        assert!(verify_v2(secret, signature, &repeated, 1_767_225_600).is_err(), "a repeated name");
        let undated: Vec<_> = sent.iter().filter(|(k, _)| k != "timestamp").cloned().collect();
        assert!(verify_v2(secret, signature, &undated, 1_767_225_600).is_err(), "no timestamp");
        assert!(verify_v2(secret, "zz", &sent, 1_767_225_600).is_err(), "not hex");
        for extreme in [i64::MIN, i64::MAX] {
            let mut dated = undated.clone();
            dated.push(("timestamp".into(), extreme.to_string()));
            assert!(verify_v2(secret, signature, &dated, 1_767_225_600).is_err(), "{extreme}");
            let header = format!("t={extreme},v1=00");
            assert!(verify_signature("clk_key", &header, b"", 1_767_225_600).is_err(), "{extreme}");
        }
    }

    #[test]
    fn canonical_encoding_is_rfc3986() {
        let encoded = canonical_string(&params(&[("b", "a+b c/ü~-._*"), ("a", "")])).unwrap();
        assert_eq!(encoded, "a=&b=a%2Bb%20c%2F%C3%BC~-._%2A");
    }
}
