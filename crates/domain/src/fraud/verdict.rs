//! What the rules found (flags) and what follows from them together (risk and action).

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::conversion::ConversionStatus;

/// A fraud rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The player shares a device, fingerprint, payment or contact hash with another player.
    MultiAccounting,
    /// The conversion came faster after its click than a human can manage (CTIT below floor).
    ClickInjection,
    /// The player's IP is one the credited affiliate logged in from.
    SelfReferral,
    /// The click the conversion names came from a user agent known to be a bot.
    BotTraffic,
    /// The postback's or its click's IP is in the operator's data-centre list.
    DatacenterIp,
    /// The postback's or its click's IP is in the operator's VPN list.
    VpnIp,
    /// The postback's or its click's IP is in the operator's blocklist.
    BlocklistedIp,
    /// More players registered from the postback's IP or device within an hour than allowed,
    /// or the named click came beyond the clicks a minute allowed from its IP on its link.
    Velocity,
    /// One promo code claimed by more players of one cluster, one IP or one device within the
    /// window than allowed.
    PromoAbuse,
}

impl Rule {
    pub const ALL: [Rule; 9] = [
        Rule::MultiAccounting,
        Rule::ClickInjection,
        Rule::SelfReferral,
        Rule::BotTraffic,
        Rule::DatacenterIp,
        Rule::VpnIp,
        Rule::BlocklistedIp,
        Rule::Velocity,
        Rule::PromoAbuse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::MultiAccounting => "multi_accounting",
            Rule::ClickInjection => "click_injection",
            Rule::SelfReferral => "self_referral",
            Rule::BotTraffic => "bot_traffic",
            Rule::DatacenterIp => "datacenter_ip",
            Rule::VpnIp => "vpn_ip",
            Rule::BlocklistedIp => "blocklisted_ip",
            Rule::Velocity => "velocity",
            Rule::PromoAbuse => "promo_abuse",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Rule {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Rule::ALL
            .into_iter()
            .find(|rule| rule.as_str() == s)
            .ok_or_else(|| Error::invalid("rule", format!("unknown fraud rule `{s}`")))
    }
}

/// What a rule's hit does to the conversion, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Recorded for review; commission is booked as usual.
    Flag,
    /// Commission is booked as held: never payable until a person releases it.
    Hold,
    /// The conversion is stored as rejected and books nothing.
    Reject,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Flag, Action::Hold, Action::Reject];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Flag => "flag",
            Action::Hold => "hold",
            Action::Reject => "reject",
        }
    }
}

impl FromStr for Action {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Action::ALL
            .into_iter()
            .find(|action| action.as_str() == s)
            .ok_or_else(|| Error::invalid("action", format!("unknown fraud action `{s}`")))
    }
}

/// One rule's hit: how strongly it suspects fraud (0–100), what it does, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    pub rule: Rule,
    pub score: u8,
    pub action: Action,
    /// For staff: what the rule saw (the shared signal and the other player, the CTIT).
    pub evidence: String,
}

/// All rules' findings on one conversion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// 0–100: the chance that at least one flag is right, were they independent.
    pub risk: u8,
    /// The strongest action of any flag; `None` without flags.
    pub action: Option<Action>,
    pub flags: Vec<Flag>,
}

impl Verdict {
    pub fn of(flags: Vec<Flag>) -> Verdict {
        let hundred = Decimal::ONE_HUNDRED;
        let clean = flags.iter().fold(Decimal::ONE, |clean, flag| {
            clean * (hundred - Decimal::from(flag.score.min(100))) / hundred
        });
        let risk = ((Decimal::ONE - clean) * hundred).round();
        let risk = risk.to_u8().unwrap_or(100).min(100);
        let action = flags.iter().map(|flag| flag.action).max();
        Verdict { risk, action, flags }
    }

    /// The status the conversion is stored with: a rejecting rule overrides the operator's.
    pub fn status(&self, reported: ConversionStatus) -> ConversionStatus {
        match self.action {
            Some(Action::Reject) => ConversionStatus::Rejected,
            _ => reported,
        }
    }

    /// Whether its commission is booked as held.
    pub fn holds(&self) -> bool {
        self.action == Some(Action::Hold)
    }

    /// Why it was rejected (`fraud:<rule>`, the first rejecting rule), if a rule rejected it.
    pub fn rejection_reason(&self) -> Option<String> {
        self.flags
            .iter()
            .find(|flag| flag.action == Action::Reject)
            .map(|flag| format!("fraud:{}", flag.rule))
    }
}
