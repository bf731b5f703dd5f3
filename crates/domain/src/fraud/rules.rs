//! The rules, their per-tenant settings, and how they judge one conversion's facts.

use std::net::IpAddr;

use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::affiliate::ClickSpamming;
use super::ip_lists::{IpList, IpRange};
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

/// A tenant's fraud settings. Every rule is on by default and only flags (an operator decides
/// to hold or reject once it trusts what the flags show), but for the blocklist, which rejects:
/// it holds only what the operator loaded into it to be refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FraudSettings {
    pub multi_accounting: RuleSetting,
    pub click_injection: RuleSetting,
    pub self_referral: RuleSetting,
    pub bot_traffic: RuleSetting,
    pub datacenter_ip: RuleSetting,
    pub vpn_ip: RuleSetting,
    pub blocklisted_ip: RuleSetting,
    pub velocity: RuleSetting,
    pub promo_abuse: RuleSetting,
    /// More registrations than this within an hour from one IP or one device is velocity.
    pub registrations_per_hour: u32,
    /// Fewer seconds than this from click to registration is click injection.
    pub registration_floor_secs: u32,
    /// Fewer seconds than this from click to first deposit is click injection.
    pub ftd_floor_secs: u32,
    /// More players than this claiming one promo code from one cluster, IP or device within
    /// `promo_window_hours` is promo abuse.
    pub promo_claims_limit: u32,
    /// How far back the promo-abuse rule counts claims of a code.
    pub promo_window_hours: u32,
    /// The affiliate-level click-spamming check (not a conversion's rule: it flags the
    /// affiliate in review and in the fraud report).
    pub click_spamming: ClickSpamming,
    /// A player who claimed a bonus in a commission period and whose deposits are under this
    /// when the period closes is a bonus-only player (flagged as promo abuse).
    pub bonus_only_deposit_floor: Decimal,
}

impl Default for FraudSettings {
    fn default() -> Self {
        FraudSettings {
            multi_accounting: RuleSetting { enabled: true, score: 60, action: Action::Flag },
            click_injection: RuleSetting { enabled: true, score: 50, action: Action::Flag },
            self_referral: RuleSetting { enabled: true, score: 80, action: Action::Flag },
            bot_traffic: RuleSetting { enabled: true, score: 70, action: Action::Flag },
            datacenter_ip: RuleSetting { enabled: true, score: 40, action: Action::Flag },
            vpn_ip: RuleSetting { enabled: true, score: 30, action: Action::Flag },
            blocklisted_ip: RuleSetting { enabled: true, score: 100, action: Action::Reject },
            velocity: RuleSetting { enabled: true, score: 50, action: Action::Flag },
            promo_abuse: RuleSetting { enabled: true, score: 60, action: Action::Flag },
            registrations_per_hour: 5,
            registration_floor_secs: 10,
            ftd_floor_secs: 30,
            promo_claims_limit: 3,
            promo_window_hours: 720,
            click_spamming: ClickSpamming::default(),
            bonus_only_deposit_floor: Decimal::TEN,
        }
    }
}

/// The most registrations an hour from one IP or device that can be allowed.
pub const MAX_REGISTRATIONS_PER_HOUR: u32 = 10_000;

/// The most players one promo code may be allowed per cluster, IP or device.
pub const MAX_PROMO_CLAIMS_LIMIT: u32 = 10_000;

/// The longest promo-abuse window: a year.
pub const MAX_PROMO_WINDOW_HOURS: u32 = 8_760;

/// How far back the velocity rule counts registrations.
pub const VELOCITY_WINDOW: TimeDelta = TimeDelta::hours(1);

/// Other players who registered from the same IP or device within [`VELOCITY_WINDOW`] of this
/// one, as counted by storage (it stops counting past the limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Burst {
    /// `ip` or `device_id`.
    pub signal: &'static str,
    pub others: u64,
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
            ("botTraffic.score", self.bot_traffic),
            ("datacenterIp.score", self.datacenter_ip),
            ("vpnIp.score", self.vpn_ip),
            ("blocklistedIp.score", self.blocklisted_ip),
            ("velocity.score", self.velocity),
            ("promoAbuse.score", self.promo_abuse),
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
        if !(1..=MAX_REGISTRATIONS_PER_HOUR).contains(&self.registrations_per_hour) {
            return Err(Error::invalid(
                "registrationsPerHour",
                format!("must be between 1 and {MAX_REGISTRATIONS_PER_HOUR}"),
            ));
        }
        if !(1..=MAX_PROMO_CLAIMS_LIMIT).contains(&self.promo_claims_limit) {
            return Err(Error::invalid(
                "promoClaimsLimit",
                format!("must be between 1 and {MAX_PROMO_CLAIMS_LIMIT}"),
            ));
        }
        if !(1..=MAX_PROMO_WINDOW_HOURS).contains(&self.promo_window_hours) {
            return Err(Error::invalid(
                "promoWindowHours",
                format!("must be between 1 and {MAX_PROMO_WINDOW_HOURS}"),
            ));
        }
        if self.bonus_only_deposit_floor.is_sign_negative() && !self.bonus_only_deposit_floor.is_zero() {
            return Err(Error::invalid("bonusOnlyDepositFloor", "must not be negative"));
        }
        self.click_spamming.validate()
    }

    fn setting(&self, rule: Rule) -> RuleSetting {
        match rule {
            Rule::MultiAccounting => self.multi_accounting,
            Rule::ClickInjection => self.click_injection,
            Rule::SelfReferral => self.self_referral,
            Rule::BotTraffic => self.bot_traffic,
            Rule::DatacenterIp => self.datacenter_ip,
            Rule::VpnIp => self.vpn_ip,
            Rule::BlocklistedIp => self.blocklisted_ip,
            Rule::Velocity => self.velocity,
            Rule::PromoAbuse => self.promo_abuse,
        }
    }

    /// The rule an address list feeds.
    pub fn rule_of(list: IpList) -> Rule {
        match list {
            IpList::Datacenter => Rule::DatacenterIp,
            IpList::Vpn => Rule::VpnIp,
            IpList::Blocklist => Rule::BlocklistedIp,
        }
    }

    /// Whether the rule an address list feeds is on: storage looks up only those lists.
    pub fn checks(&self, list: IpList) -> bool {
        self.setting(Self::rule_of(list)).enabled
    }

    /// How many other registrations from one IP or device storage must count (at most) for the
    /// velocity rule: one more than allowed, so a lookup reads no more than it needs. `None`
    /// when the rule is off or the event is not a registration.
    pub fn velocity_probe(&self, event: EventKind) -> Option<u64> {
        (self.velocity.enabled && event == EventKind::Registration)
            .then_some(u64::from(self.registrations_per_hour))
    }

    /// For a postback claiming a promo code: since when claims count, and how many other
    /// players storage must find (at most) per cluster, IP and device. `None` when the rule
    /// is off.
    pub fn promo_probe(&self, at: DateTime<Utc>) -> Option<(DateTime<Utc>, u64)> {
        self.promo_abuse.enabled.then(|| {
            (at - TimeDelta::hours(i64::from(self.promo_window_hours)), u64::from(self.promo_claims_limit))
        })
    }

    /// Whether a rule that reads the named click's marks (bot, velocity) is on: storage reads
    /// the click only then.
    pub fn checks_click_marks(&self) -> bool {
        self.bot_traffic.enabled || self.velocity.enabled
    }

    /// Whether the other players sharing a cluster signal are needed: multi-accounting names
    /// them, and promo abuse counts claims by cluster. (The player's signals are recorded
    /// either way, so a rule switched on later sees the players seen before.)
    pub fn checks_clusters(&self) -> bool {
        self.multi_accounting.enabled || self.promo_abuse.enabled
    }

    /// Whether the credited affiliates' logins are needed (self-referral).
    pub fn checks_logins(&self) -> bool {
        self.self_referral.enabled
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

/// A credited affiliate logged in from the player's IP, last at `last_seen_at`, with the user
/// agent of its latest login from there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffiliateLogin {
    pub affiliate: AffiliateId,
    pub last_seen_at: DateTime<Utc>,
    pub user_agent: Option<String>,
}

/// How another player claiming the same promo code is linked to this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PromoLink {
    /// It shares a cluster signal with this player (see multi-accounting).
    Cluster,
    /// It claimed the code from the postback's `ip`.
    Ip,
    /// It claimed the code from the postback's `device_id`.
    Device,
}

impl PromoLink {
    pub fn describe(self) -> &'static str {
        match self {
            PromoLink::Cluster => "one cluster",
            PromoLink::Ip => "one IP",
            PromoLink::Device => "one device",
        }
    }
}

/// Another player that claimed the postback's promo code within the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromoClaim {
    pub link: PromoLink,
    pub other_player: String,
}

/// The click a conversion names, recorded from a user agent known to be a bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotClick {
    pub click_id: String,
    pub user_agent: String,
}

/// Where a listed address was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpSource {
    /// The postback's `ip`.
    Postback,
    /// The IP of the click the postback names.
    Click,
}

/// An address of the conversion found in one of the operator's lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedIp {
    pub list: IpList,
    pub ip: IpAddr,
    pub source: IpSource,
    /// The (merged) range of the list that holds it.
    pub range: IpRange,
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
    /// The click the postback names, when it was recorded as a bot's.
    pub bot_click: Option<&'a BotClick>,
    /// The postback's and its click's addresses found in the operator's lists.
    pub listed_ips: &'a [ListedIp],
    /// Registrations from this one's IP and device within the last hour (registrations only).
    pub bursts: &'a [Burst],
    /// The click the postback names, when it came beyond the clicks a minute allowed from its
    /// address on its link.
    pub fast_click: Option<&'a str>,
    /// The postback's `user_agent`: with its `ip`, the player's device as a login records it.
    pub user_agent: Option<&'a str>,
    /// The promo code the postback claims.
    pub promo_code: Option<&'a str>,
    /// Other players that claimed it within the window, by how they are linked to this one.
    pub promo_claims: &'a [PromoClaim],
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
        .map(|login| match (login.user_agent.as_deref(), facts.user_agent) {
            (Some(login_agent), Some(player_agent)) if login_agent == player_agent => format!(
                "affiliate {} logged in from the player's device (its IP and user agent `{}`) on {}",
                login.affiliate,
                player_agent.escape_debug(),
                login.last_seen_at.date_naive()
            ),
            _ => format!(
                "affiliate {} logged in from the player's IP on {}",
                login.affiliate,
                login.last_seen_at.date_naive()
            ),
        })
        .collect::<Vec<_>>();
    if !recent.is_empty() {
        hit(Rule::SelfReferral, recent.join("; "));
    }
    if let Some(bot) = facts.bot_click {
        hit(
            Rule::BotTraffic,
            format!("click {} came from a bot user agent `{}`", bot.click_id, bot.user_agent.escape_debug()),
        );
    }
    for list in IpList::ALL {
        let found = facts
            .listed_ips
            .iter()
            .filter(|listed| listed.list == list && listed.range.contains(listed.ip))
            .map(|listed| {
                let source = match listed.source {
                    IpSource::Postback => "the postback's ip",
                    IpSource::Click => "the click's ip",
                };
                format!("{source} {} is in the {list} list ({})", listed.ip, listed.range)
            })
            .collect::<Vec<_>>();
        if !found.is_empty() {
            hit(FraudSettings::rule_of(list), found.join("; "));
        }
    }
    let mut too_fast = Vec::new();
    if let Some(click) = facts.fast_click {
        too_fast
            .push(format!("click {click} came beyond the clicks a minute allowed from its IP on its link"));
    }
    if facts.event == EventKind::Registration {
        // This registration is one of them: more than allowed once the others reach the limit.
        let limit = u64::from(settings.registrations_per_hour);
        too_fast.extend(facts.bursts.iter().filter(|burst| burst.others + 1 > limit).map(|burst| {
            format!(
                "{} registrations within an hour from one {} (limit {limit})",
                burst.others + 1,
                burst.signal
            )
        }));
    }
    if !too_fast.is_empty() {
        hit(Rule::Velocity, too_fast.join("; "));
    }
    if let Some(code) = facts.promo_code {
        let abuse = promo_abuse(settings.promo_claims_limit, code, facts.promo_claims);
        if !abuse.is_empty() {
            hit(Rule::PromoAbuse, abuse.join("; "));
        }
    }
    Verdict::of(flags)
}

/// The evidence against a player who claimed `code` with `bonus` and whose deposits came to
/// `deposits` by the time the period closed, when that is under the floor; `None` otherwise
/// (no bonus, or enough deposited).
pub fn bonus_only(floor: Decimal, code: &str, bonus: Decimal, deposits: Decimal) -> Option<String> {
    (bonus > Decimal::ZERO && deposits < floor).then(|| {
        format!(
            "bonus-only: claimed promo code `{}` with a bonus of {}, deposited {} by the period's close (floor {})",
            code.escape_debug(),
            bonus.normalize(),
            deposits.normalize(),
            floor.normalize()
        )
    })
}

/// Per link (cluster, IP, device), when this player and the others who claimed `code` that
/// way are more than `limit`: what to say about it.
fn promo_abuse(limit: u32, code: &str, claims: &[PromoClaim]) -> Vec<String> {
    let mut found = Vec::new();
    for link in [PromoLink::Cluster, PromoLink::Ip, PromoLink::Device] {
        let mut others: Vec<&str> = claims
            .iter()
            .filter(|claim| claim.link == link)
            .map(|claim| claim.other_player.as_str())
            .collect();
        others.sort_unstable();
        others.dedup();
        let players = others.len() as u64 + 1;
        if players > u64::from(limit) {
            found.push(format!(
                "promo code `{}` claimed by {players} players of {} (limit {limit}); the others: {}",
                code.escape_debug(),
                link.describe(),
                others.join(", ")
            ));
        }
    }
    found
}
