//! Which endpoints an event goes to, and what is sent: the URL template filled in and, for
//! `POST`, a JSON body carrying the same values.

use chrono::{DateTime, Utc};
use clickledger_domain::ids::AffiliateId;
use clickledger_persistence::conversions::{Conversion, ConversionEvent};
use clickledger_persistence::outbound::{Endpoint, NewDelivery};

use crate::template::{self, Macros};

pub const TEST_EVENT: &str = "test";

/// Whether `endpoint` wants `event`: the conversion credits the endpoint's affiliate, is of the
/// endpoint's campaign (when it names one), passes the event and status filters, and happened
/// after the endpoint was created (a new endpoint does not replay history).
pub fn wants(endpoint: &Endpoint, event: &ConversionEvent) -> bool {
    let conversion = &event.conversion;
    conversion.credits.iter().any(|credit| credit.affiliate_id == endpoint.affiliate_id)
        && endpoint.campaign_id.is_none_or(|campaign| conversion.campaign_id == Some(campaign))
        && (endpoint.events.is_empty() || endpoint.events.iter().any(|e| e == conversion.event.as_str()))
        && (endpoint.statuses.is_empty() || endpoint.statuses.iter().any(|s| s == conversion.status.as_str()))
        && event.created_at >= endpoint.created_at
}

/// The click through which `affiliate` earned its credit: its own latest touch in the journey.
/// Under a multi-touch model the conversion's click ID may be another affiliate's, and an
/// affiliate must never learn another's click ID or sub-IDs. Without a journey (a lifetime
/// binding, a single-touch model) the conversion's click is the affiliate's own only when it
/// is the sole affiliate credited.
pub fn own_click_id(affiliate: AffiliateId, conversion: &Conversion) -> Option<String> {
    let affiliate = affiliate.to_string();
    if let Some(touch) = conversion.journey.iter().rev().find(|touch| touch.affiliate_id == affiliate) {
        return Some(touch.click_id.clone());
    }
    let sole = conversion.credits.len() == 1
        && conversion.journey.iter().all(|touch| touch.affiliate_id == affiliate);
    if sole { conversion.click_id.clone() } else { None }
}

/// `subs` are the sub-IDs of the endpoint's affiliate's own click ([`own_click_id`]).
pub fn macros(endpoint: &Endpoint, event: &ConversionEvent, subs: Option<[Option<String>; 5]>) -> Macros {
    let conversion = &event.conversion;
    // The endpoint's affiliate's own commission on this conversion (empty when no plan paid).
    let payout = conversion
        .credits
        .iter()
        .find(|credit| credit.affiliate_id == endpoint.affiliate_id)
        .and_then(|credit| credit.commission.as_ref())
        .map(|money| money.amount.normalize().to_string())
        .unwrap_or_default();
    let mut macros = Macros::default();
    macros
        .set("click_id", own_click_id(endpoint.affiliate_id, conversion).unwrap_or_default())
        .set("txn_id", conversion.txn_id.clone().unwrap_or_default())
        .set("conversion_id", conversion.id.to_string())
        .set("event", conversion.event.as_str())
        .set("event_type", event.kind.clone())
        .set("amount", conversion.amount.map(|a| a.normalize().to_string()).unwrap_or_default())
        .set("currency", conversion.currency.clone().unwrap_or_default())
        .set("payout", payout)
        .set("status", conversion.status.as_str())
        .set("affiliate_id", endpoint.affiliate_id.to_string())
        .set("campaign_id", conversion.campaign_id.map(|c| c.to_string()).unwrap_or_default())
        .set("timestamp", event.created_at.timestamp().to_string());
    let subs = subs.unwrap_or_default();
    for (name, value) in ["sub1", "sub2", "sub3", "sub4", "sub5"].into_iter().zip(subs) {
        macros.set(name, value.unwrap_or_default());
    }
    macros
}

/// The request for one (endpoint, event), rendered once and stored.
pub fn render(endpoint: &Endpoint, event_type: &str, macros: &Macros, at: DateTime<Utc>) -> (String, String) {
    let url = template::render(&endpoint.url_template, macros);
    let body = if endpoint.method == "GET" {
        String::new()
    } else {
        serde_json::json!({
            "type": event_type,
            "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": macros.to_json(),
        })
        .to_string()
    };
    (url, body)
}

pub fn delivery_for(
    endpoint: &Endpoint,
    event: &ConversionEvent,
    subs: Option<[Option<String>; 5]>,
) -> NewDelivery {
    let macros = macros(endpoint, event, subs);
    let (url, body) = render(endpoint, &event.kind, &macros, event.created_at);
    NewDelivery {
        endpoint_id: endpoint.id,
        event_seq: Some(event.seq),
        conversion_id: Some(event.conversion.id),
        event: event.kind.clone(),
        method: endpoint.method.clone(),
        url,
        body,
    }
}

/// A test message: sample values, clearly marked.
pub fn test_delivery(endpoint: &Endpoint, now: DateTime<Utc>) -> NewDelivery {
    let mut macros = Macros::default();
    macros
        .set("click_id", "test")
        .set("txn_id", "test")
        .set("conversion_id", "test")
        .set("event", TEST_EVENT)
        .set("event_type", TEST_EVENT)
        .set("status", "approved")
        .set("affiliate_id", endpoint.affiliate_id.to_string())
        .set("campaign_id", endpoint.campaign_id.map(|c| c.to_string()).unwrap_or_default())
        .set("timestamp", now.timestamp().to_string());
    let (url, body) = render(endpoint, TEST_EVENT, &macros, now);
    NewDelivery {
        endpoint_id: endpoint.id,
        event_seq: None,
        conversion_id: None,
        event: TEST_EVENT.to_owned(),
        method: endpoint.method.clone(),
        url,
        body,
    }
}
