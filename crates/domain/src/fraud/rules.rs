//! The rules, their per-tenant settings, and how they judge one conversion's facts.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::signals::ClusterSignal;
use super::verdict::{Action, Flag, Rule, Verdict};
use crate::Error;
use crate::conversion::EventKind;
use crate::ids::{AffiliateId, ConversionId};

/// One rule's switch, weight and consequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSetting {
    pub enabled: bool,
    /// 0–100, how strongly a hit suspects fraud (it feeds the conversion's risk).
    pub score: u8,
    pub action: Action,
}

/// A tenant's fraud settings. Every rule is on by default and only flags: an operator decides
/// to hold or reject once it trusts what the flags show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FraudSettings {
    pub multi_accounting: RuleSetting,
    pub click_injection: RuleSetting,
    pub self_referral: RuleSetting,
    /// Fewer seconds than this from click to registration is click injection.
    pub registration_floor_secs: u32,
    /// Fewer seconds than this from click to first deposit is click injection.
    pub ftd_floor_secs: u32,
}

impl Default for FraudSettings {
    fn default() -> Self {
        FraudSettings {
            multi_accounting: RuleSetting { enabled: true, score: 60, action: Action::Flag },
            click_injection: RuleSetting { enabled: true, score: 50, action: Action::Flag },
            self_referral: RuleSetting { enabled: true, score: 80, action: Action::Flag },
            registration_floor_secs: 10,
            ftd_floor_secs: 30,
        }
    }
}

/// The longest CTIT floor that can be set: a day. Beyond it the rule would flag honest players.
pub const MAX_FLOOR_SECS: u32 = 86_400;

impl FraudSettings {
    /// Refuses settings no rule could work with, naming the field.
    pub fn validate(&self) -> Result<(), Error> {
        for (field, setting) in [
            ("multiAccounting.score", self.multi_accounting),
            ("clickInjection.score", self.click_injection),
            ("selfReferral.score", self.self_referral),
        ] {
            if setting.score > 100 {
                return Err(Error::invalid(field, "must be between 0 and 100"));
            }
        }
        for (field, floor) in
            [("registrationFloorSecs", self.registration_floor_secs), ("ftdFloorSecs", self.ftd_floor_secs)]
        {
            if floor > MAX_FLOOR_SECS {
                return Err(Error::invalid(field, format!("must be at most {MAX_FLOOR_SECS} seconds")));
            }
        }
        Ok(())
    }

    fn setting(&self, rule: Rule) -> RuleSetting {
        match rule {
            Rule::MultiAccounting => self.multi_accounting,
            Rule::ClickInjection => self.click_injection,
            Rule::SelfReferral => self.self_referral,
        }
    }
}

/// Another player of the tenant seen with one of this player's cluster signals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedSignal {
    pub signal: ClusterSignal,
    pub other_player: String,
    /// The other player's first conversion that carried the signal.
    pub other_conversion: ConversionId,
}

/// How long an affiliate's login address counts against the players it brings.
pub const SELF_REFERRAL_WINDOW: TimeDelta = TimeDelta::days(30);

/// A credited affiliate logged in from the player's IP, last at `last_seen_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffiliateLogin {
    pub affiliate: AffiliateId,
    pub last_seen_at: DateTime<Utc>,
}

/// What the rules look at for one new conversion, loaded by storage.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub event: EventKind,
    /// Other players sharing a cluster signal with this one (none without a player ID).
    pub shared: &'a [SharedSignal],
    /// From the click the postback names to the time the conversion happened.
    pub click_to_conversion: Option<TimeDelta>,
    /// When the conversion happened.
    pub occurred_at: DateTime<Utc>,
    /// Logins of the credited affiliates from the postback's `ip`.
    pub affiliate_logins: &'a [AffiliateLogin],
}

/// Judges one conversion under the tenant's settings.
pub fn judge(settings: &FraudSettings, facts: &Facts<'_>) -> Verdict {
    let mut flags = Vec::new();
    let mut hit = |rule: Rule, evidence: String| {
        let setting = settings.setting(rule);
        if setting.enabled {
            flags.push(Flag { rule, score: setting.score, action: setting.action, evidence });
        }
    };
    if !facts.shared.is_empty() {
        let evidence = facts
            .shared
            .iter()
            .map(|shared| {
                format!(
                    "shares {} with player {} (first seen on conversion {})",
                    shared.signal.as_str(),
                    shared.other_player,
                    shared.other_conversion
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        hit(Rule::MultiAccounting, evidence);
    }
    let floor = match facts.event {
        EventKind::Registration => Some(settings.registration_floor_secs),
        EventKind::Ftd => Some(settings.ftd_floor_secs),
        _ => None,
    };
    if let (Some(floor), Some(ctit)) = (floor, facts.click_to_conversion)
        && ctit < TimeDelta::seconds(i64::from(floor))
    {
        hit(
            Rule::ClickInjection,
            format!(
                "{} {} ms after its click (floor {floor} s)",
                facts.event.as_str(),
                ctit.num_milliseconds().max(0)
            ),
        );
    }
    let recent = facts
        .affiliate_logins
        .iter()
        .filter(|login| (facts.occurred_at - login.last_seen_at).abs() <= SELF_REFERRAL_WINDOW)
        .map(|login| {
            format!(
                "affiliate {} logged in from the player's IP on {}",
                login.affiliate,
                login.last_seen_at.date_naive()
            )
        })
        .collect::<Vec<_>>();
    if !recent.is_empty() {
        hit(Rule::SelfReferral, recent.join("; "));
    }
    Verdict::of(flags)
}
