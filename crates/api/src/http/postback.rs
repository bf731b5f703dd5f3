//! The inbound postback: `GET` or `POST` (query, form or JSON) at `/postback`.

use std::time::Instant;

use chrono::Utc;
use clickledger_domain::ids::TenantId;
use clickledger_domain::postback::{FieldError, parse as parse_postback};
use clickledger_persistence::conversions::{Conversion, IngestOutcome};
use clickledger_persistence::directory::Directory;
use hmac::{Hmac, Mac};
use poem::http::{Method, header};
use poem::web::{Data, Json};
use poem::{Body, IntoResponse, Request, Response, handler};
use serde_json::{Value, json};
use sha2::Sha256;

use super::api_key;
use crate::Error;
use crate::state::SharedState;

pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Signed requests older (or newer) than this are refused as replays.
pub const SIGNATURE_TOLERANCE_SECONDS: i64 = 300;
pub const SIGNATURE_HEADER: &str = "x-clickledger-signature";

#[handler]
pub async fn receive(req: &Request, body: Body, state: Data<&SharedState>) -> Response {
    let received = Instant::now();
    match store(req, body, &state, received).await {
        Ok(response) => response,
        Err(err) => {
            if let Some(reason) = rejection_reason(&err) {
                metrics::counter!("postbacks_rejected_total", "reason" => reason).increment(1);
            }
            err.as_http()
        }
    }
}

/// Which `postbacks_rejected_total` reason an error counts under, if it is a rejection.
fn rejection_reason(err: &Error) -> Option<&'static str> {
    match err {
        Error::BadRequest { .. } => Some("invalid"),
        Error::BadApiKey(_) => Some("unauthenticated"),
        Error::BadSignature(_) => Some("signature"),
        Error::TransactionMismatch { .. } | Error::StatusBackward { .. } => Some("conflict"),
        _ => None,
    }
}

async fn store(req: &Request, body: Body, state: &SharedState, received: Instant) -> Result<Response, Error> {
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
    let tenant =
        authenticate(state, &presented_key).await?.ok_or(Error::BadApiKey("unknown or revoked API key"))?;
    if let Some(signature) = req.headers().get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()) {
        let signed = if req.method() == Method::GET {
            req.uri().query().unwrap_or_default().as_bytes()
        } else {
            &raw_body[..]
        };
        verify_signature(&presented_key, signature, signed, Utc::now().timestamp())
            .map_err(Error::BadSignature)?;
    }

    let received_at = Utc::now();
    let parsed = parse_postback(params.iter().map(|(k, v)| (k.as_str(), v.as_str())), received_at)
        .map_err(|fields| Error::BadRequest { message: "invalid postback".into(), fields })?;
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

async fn authenticate(state: &SharedState, presented: &str) -> Result<Option<TenantId>, Error> {
    let hash = api_key::hash(presented);
    let found = match state.api_keys.get(&hash) {
        Some(cached) => cached,
        None => {
            let found = Directory::new(&state.db).authenticate_api_key(&hash).await?;
            state.api_keys.insert(hash, found);
            found
        }
    };
    Ok(found.map(|(tenant, key)| {
        state.api_keys.note_use(key, Utc::now());
        tenant
    }))
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
            .map_err(|err| FieldError { field: "body", message: format!("invalid JSON: {err}") })?;
        let Value::Object(object) = value else {
            return Err(FieldError { field: "body", message: "must be a JSON object".into() });
        };
        for (name, value) in object {
            let text = match value {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => continue,
                _ => {
                    return Err(FieldError {
                        field: "body",
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
    if (now - timestamp).abs() > SIGNATURE_TOLERANCE_SECONDS {
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
}
