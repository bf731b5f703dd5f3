//! Who gets credit for a conversion reported against a click: the rules that turn loaded facts
//! (the click, its link's campaign, the visitor's journey, the tenant's trained model) into
//! credits or a typed reason why nobody is credited. Storage loads the facts and writes the
//! result; every rule lives here.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};

use super::{AttributionModel, AttributionParams, Credit, MarkovModel, Touchpoint, attribute};
use crate::Error;
use crate::click_id::ClickIdError;
use crate::ids::AffiliateId;

/// A click may appear to be slightly after the conversion because the operator's clock and
/// ours differ; up to this much is taken as the same instant.
pub const CLOCK_SKEW: Duration = Duration::minutes(5);

/// Why a conversion credits nobody. Stored as its string; reading back a string that is not
/// one of these is a corrupt row, never a silent default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnattributedReason {
    MalformedClickId,
    ForgedClickId,
    BadClickSecret,
    /// The click ID names a link that does not exist (any more) for this tenant.
    UnknownLink,
    /// The click is older than the campaign's lookback window.
    ClickExpired,
    /// The click is later than the conversion, beyond [`CLOCK_SKEW`].
    ClickAfterConversion,
    /// No click ID, and the player is not bound to an affiliate.
    UnknownPlayer,
    /// A chargeback of a transaction never received.
    UnknownOriginalTransaction,
    /// The conversion this one inherits credit from (binding, chargeback) credited nobody.
    OriginUnattributed,
    /// The model credited nobody (no touch earned a share).
    NoTouchpoints,
}

impl UnattributedReason {
    pub const ALL: [UnattributedReason; 10] = [
        UnattributedReason::MalformedClickId,
        UnattributedReason::ForgedClickId,
        UnattributedReason::BadClickSecret,
        UnattributedReason::UnknownLink,
        UnattributedReason::ClickExpired,
        UnattributedReason::ClickAfterConversion,
        UnattributedReason::UnknownPlayer,
        UnattributedReason::UnknownOriginalTransaction,
        UnattributedReason::OriginUnattributed,
        UnattributedReason::NoTouchpoints,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UnattributedReason::MalformedClickId => "malformed_click_id",
            UnattributedReason::ForgedClickId => "forged_click_id",
            UnattributedReason::BadClickSecret => "bad_click_secret",
            UnattributedReason::UnknownLink => "unknown_link",
            UnattributedReason::ClickExpired => "click_expired",
            UnattributedReason::ClickAfterConversion => "click_after_conversion",
            UnattributedReason::UnknownPlayer => "unknown_player",
            UnattributedReason::UnknownOriginalTransaction => "unknown_original_transaction",
            UnattributedReason::OriginUnattributed => "origin_unattributed",
            UnattributedReason::NoTouchpoints => "no_touchpoints",
        }
    }

    /// Reasons that may only mean "not committed yet": the registration that binds the
    /// player, or the deposit a chargeback reverses, may be in the same group commit. Such a
    /// postback is resolved again inside the write transaction, after its neighbours.
    pub fn may_resolve_in_transaction(self) -> bool {
        matches!(self, UnattributedReason::UnknownPlayer | UnattributedReason::UnknownOriginalTransaction)
    }
}

impl fmt::Display for UnattributedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for UnattributedReason {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        UnattributedReason::ALL
            .into_iter()
            .find(|reason| reason.as_str() == s)
            .ok_or_else(|| Error::invalid("unattributed_reason", format!("unknown reason `{s}`")))
    }
}

impl From<&ClickIdError> for UnattributedReason {
    fn from(err: &ClickIdError) -> Self {
        match err {
            ClickIdError::Malformed | ClickIdError::UnsupportedVersion(_) => {
                UnattributedReason::MalformedClickId
            }
            ClickIdError::Forged => UnattributedReason::ForgedClickId,
            ClickIdError::BadSecret => UnattributedReason::BadClickSecret,
        }
    }
}

/// One click of a visitor's journey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JourneyTouch {
    pub click_id: String,
    pub affiliate: AffiliateId,
    pub at: DateTime<Utc>,
}

/// What storage knows about the click a conversion names.
#[derive(Debug, Clone)]
pub struct ClickFacts {
    /// The click the postback names, as its verified ID tells it (it may not be stored yet).
    pub click: JourneyTouch,
    pub lookback_days: i32,
    pub model: AttributionModel,
    /// The visitor's stored clicks on the campaign up to [`journey_cutoff`], in any order.
    pub stored_journey: Vec<JourneyTouch>,
}

/// A tenant's trained data-driven model with the version recorded on what it attributes.
pub struct TrainedModel {
    pub model: MarkovModel<AffiliateId>,
    pub version: String,
}

/// Credit worked out from a click.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickCredit {
    pub credits: Vec<Credit<AffiliateId>>,
    /// The journey considered, oldest first.
    pub journey: Vec<JourneyTouch>,
    pub model_used: AttributionModel,
    /// `v1` for the rule-based models, the training's version for DATA_DRIVEN, and
    /// `v1 (fallback: why)` when DATA_DRIVEN could not be used.
    pub model_version: String,
}

/// The latest click time that can belong to a conversion at `occurred_at`.
pub fn journey_cutoff(occurred_at: DateTime<Utc>) -> DateTime<Utc> {
    occurred_at + CLOCK_SKEW
}

/// Applies the lookback window, the clock-skew rule and the campaign's model (falling back
/// to LAST_CLICK where DATA_DRIVEN cannot be used) to a conversion at `occurred_at`.
pub fn credit_from_click(
    facts: ClickFacts,
    occurred_at: DateTime<Utc>,
    trained: Option<&TrainedModel>,
) -> Result<ClickCredit, UnattributedReason> {
    let lookback = Duration::days(i64::from(facts.lookback_days));
    let clicked_at = facts.click.at;
    if occurred_at - clicked_at > lookback {
        return Err(UnattributedReason::ClickExpired);
    }
    if clicked_at - occurred_at > CLOCK_SKEW {
        return Err(UnattributedReason::ClickAfterConversion);
    }
    // Only clicks within the lookback count. The named click is always part of the journey:
    // its row may not be written yet, and its ID fully describes it.
    let earliest = occurred_at - lookback;
    let cutoff = journey_cutoff(occurred_at);
    let mut journey: Vec<JourneyTouch> =
        facts.stored_journey.into_iter().filter(|t| t.at >= earliest && t.at <= cutoff).collect();
    if !journey.iter().any(|t| t.click_id == facts.click.click_id) {
        journey.push(facts.click);
    }
    journey.sort_by_key(|t| t.at);
    let touchpoints: Vec<Touchpoint<AffiliateId>> =
        journey.iter().map(|t| Touchpoint { key: t.affiliate, at: t.at }).collect();
    let outcome = attribute(
        facts.model,
        &touchpoints,
        occurred_at.max(clicked_at),
        &AttributionParams::default(),
        trained.map(|t| &t.model),
    );
    if outcome.credits.is_empty() {
        return Err(UnattributedReason::NoTouchpoints);
    }
    let model_version = match (outcome.fallback_reason, outcome.model_used, trained) {
        (Some(reason), _, _) => format!("v1 (fallback: {reason})"),
        (None, AttributionModel::DataDriven, Some(trained)) => trained.version.clone(),
        (None, _, _) => "v1".to_owned(),
    };
    Ok(ClickCredit { credits: outcome.credits, journey, model_used: outcome.model_used, model_version })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;
    use rust_decimal::Decimal;
    use uuid::Uuid;

    use super::*;

    fn aff(n: u8) -> AffiliateId {
        AffiliateId::from_uuid(Uuid::from_u128(u128::from(n)))
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    fn touch(n: u8, minutes: i64) -> JourneyTouch {
        JourneyTouch { click_id: format!("c{n}-{minutes}"), affiliate: aff(n), at: at(minutes) }
    }

    fn facts(click: JourneyTouch, stored: Vec<JourneyTouch>, model: AttributionModel) -> ClickFacts {
        ClickFacts { click, lookback_days: 30, model, stored_journey: stored }
    }

    #[test]
    fn reasons_round_trip_and_unknown_ones_are_errors() {
        for reason in UnattributedReason::ALL {
            assert_eq!(reason.as_str().parse::<UnattributedReason>().unwrap(), reason);
        }
        assert_eq!("gremlins".parse::<UnattributedReason>().unwrap_err().field(), "unattributed_reason");
        assert_eq!(UnattributedReason::from(&ClickIdError::Forged).as_str(), ClickIdError::Forged.reason());
        assert_eq!(
            UnattributedReason::from(&ClickIdError::Malformed).as_str(),
            ClickIdError::Malformed.reason()
        );
    }

    #[test]
    fn the_lookback_window_and_clock_skew_bound_the_click() {
        let day = 24 * 60;
        let old = touch(1, 0);
        assert_eq!(
            credit_from_click(facts(old.clone(), vec![], AttributionModel::LastClick), at(31 * day), None),
            Err(UnattributedReason::ClickExpired)
        );
        assert!(
            credit_from_click(facts(old, vec![], AttributionModel::LastClick), at(30 * day), None).is_ok()
        );
        let late = touch(1, 10);
        assert_eq!(
            credit_from_click(facts(late.clone(), vec![], AttributionModel::LastClick), at(4), None),
            Err(UnattributedReason::ClickAfterConversion)
        );
        assert!(credit_from_click(facts(late, vec![], AttributionModel::LastClick), at(5), None).is_ok());
    }

    #[test]
    fn data_driven_without_a_model_falls_back_to_last_click_and_says_why() {
        let credit = credit_from_click(
            facts(touch(2, 10), vec![touch(1, 0)], AttributionModel::DataDriven),
            at(20),
            None,
        )
        .unwrap();
        assert_eq!(credit.model_used, AttributionModel::LastClick);
        assert!(credit.model_version.starts_with("v1 (fallback: "), "{}", credit.model_version);
        assert_eq!(credit.credits, vec![Credit { key: aff(2), share: Decimal::ONE }]);
    }

    #[test]
    fn touches_outside_the_window_do_not_count() {
        let day = 24 * 60;
        let stored = vec![touch(1, 0), touch(2, 40 * day), touch(3, 45 * day + 30)];
        let credit = credit_from_click(
            facts(touch(3, 45 * day), stored, AttributionModel::Linear),
            at(45 * day),
            None,
        )
        .unwrap();
        let affiliates: Vec<AffiliateId> = credit.journey.iter().map(|t| t.affiliate).collect();
        assert_eq!(
            affiliates,
            vec![aff(2), aff(3)],
            "day 0 is past the lookback, the later click past the cutoff"
        );
    }

    proptest! {
        #[test]
        fn credit_goes_only_to_journey_affiliates_and_shares_sum_to_one(
            stored in prop::collection::vec((0_u8..5, 0_i64..600), 0..12),
            click in (0_u8..5, 0_i64..600),
            converted in 0_i64..700,
            model in prop::sample::select(AttributionModel::ALL.to_vec()),
        ) {
            let stored: Vec<JourneyTouch> = stored.into_iter().map(|(a, m)| touch(a, m)).collect();
            let named = touch(click.0, click.1);
            match credit_from_click(facts(named.clone(), stored, model), at(converted), None) {
                Ok(credit) => {
                    prop_assert!(credit.journey.iter().any(|t| t.click_id == named.click_id));
                    prop_assert!(credit.journey.windows(2).all(|w| w[0].at <= w[1].at));
                    let total: Decimal = credit.credits.iter().map(|c| c.share).sum();
                    prop_assert_eq!(total, Decimal::ONE);
                    for c in &credit.credits {
                        prop_assert!(credit.journey.iter().any(|t| t.affiliate == c.key));
                    }
                }
                Err(reason) => {
                    prop_assert_eq!(reason, UnattributedReason::ClickAfterConversion);
                    prop_assert!(named.at - at(converted) > CLOCK_SKEW);
                }
            }
        }
    }
}
