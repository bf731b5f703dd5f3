//! Fraud: the verdict types on a conversion, and each tenant's rule settings.

use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use clickledger_domain::Error as Invalid;
use clickledger_domain::fraud::review::{self, Decision};
use clickledger_domain::fraud::{self, CtitBucket, FraudSettings as Settings, RuleSetting};
use clickledger_domain::ids::{AffiliateId, ConversionId};
use clickledger_persistence::conversions::{Review, ReviewFilter, Reviewed};
use clickledger_persistence::fraud::Fraud;
use clickledger_persistence::fraud_report::AffiliateFraud;
use rust_decimal::Decimal;

use super::context::{principal, state};
use super::conversions::Conversion;
use super::guard::Allow;
use super::pagination;
use crate::error::GqlResultExt;

/// What a rule's hit does, weakest first.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum FraudAction {
    /// Recorded for review; commission is booked as usual.
    Flag,
    /// Commission is booked HELD: never payable until released.
    Hold,
    /// The conversion is stored rejected (reason `fraud:<rule>`) and books nothing.
    Reject,
}

impl From<fraud::Action> for FraudAction {
    fn from(action: fraud::Action) -> Self {
        match action {
            fraud::Action::Flag => FraudAction::Flag,
            fraud::Action::Hold => FraudAction::Hold,
            fraud::Action::Reject => FraudAction::Reject,
        }
    }
}

impl From<FraudAction> for fraud::Action {
    fn from(action: FraudAction) -> Self {
        match action {
            FraudAction::Flag => fraud::Action::Flag,
            FraudAction::Hold => fraud::Action::Hold,
            FraudAction::Reject => fraud::Action::Reject,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "fraud::Rule")]
pub enum FraudRule {
    /// The player shares a device ID, fingerprint, payment, e-mail or phone hash with another
    /// player of the tenant.
    MultiAccounting,
    /// Click to registration or first deposit faster than the configured floor.
    ClickInjection,
    /// The player's IP is one the credited affiliate logged in from within 30 days.
    SelfReferral,
    /// The click the conversion names came from a user agent known to be a bot's.
    BotTraffic,
    /// The postback's `ip` or its click's IP is in the operator's data-centre list.
    DatacenterIp,
    /// The postback's `ip` or its click's IP is in the operator's VPN list.
    VpnIp,
    /// The postback's `ip` or its click's IP is in the operator's blocklist.
    BlocklistedIp,
    /// More registrations within an hour from one IP or one device than
    /// `registrationsPerHour`, or the named click came beyond the clicks a minute allowed from
    /// its IP on its link (`--clicks-per-minute-per-address`).
    Velocity,
    /// One `promo_code` claimed by more than `promoClaimsLimit` players of one cluster, one
    /// IP or one device within `promoWindowHours`.
    PromoAbuse,
}

/// One rule's hit on a conversion.
#[derive(SimpleObject, Clone)]
pub struct FraudFlag {
    pub rule: FraudRule,
    /// 0–100: how strongly this rule suspects fraud.
    pub score: i32,
    pub action: FraudAction,
    /// What the rule saw: the shared signal and the other player, the click-to-conversion
    /// time, the bot's user agent, or the listed address and its range.
    pub evidence: String,
}

impl From<fraud::Flag> for FraudFlag {
    fn from(flag: fraud::Flag) -> Self {
        FraudFlag {
            rule: flag.rule.into(),
            score: i32::from(flag.score),
            action: flag.action.into(),
            evidence: flag.evidence,
        }
    }
}

#[derive(SimpleObject)]
pub struct FraudRuleSetting {
    pub enabled: bool,
    /// 0–100, the weight of a hit in the conversion's risk.
    pub score: i32,
    pub action: FraudAction,
}

impl From<RuleSetting> for FraudRuleSetting {
    fn from(setting: RuleSetting) -> Self {
        FraudRuleSetting {
            enabled: setting.enabled,
            score: i32::from(setting.score),
            action: setting.action.into(),
        }
    }
}

/// The tenant's fraud rules.
#[derive(SimpleObject)]
pub struct FraudSettings {
    pub multi_accounting: FraudRuleSetting,
    pub click_injection: FraudRuleSetting,
    pub self_referral: FraudRuleSetting,
    /// Default on, score 70, FLAG.
    pub bot_traffic: FraudRuleSetting,
    /// Default on, score 40, FLAG.
    pub datacenter_ip: FraudRuleSetting,
    /// Default on, score 30, FLAG.
    pub vpn_ip: FraudRuleSetting,
    /// Default on, score 100, REJECT.
    pub blocklisted_ip: FraudRuleSetting,
    /// Default on, score 50, FLAG.
    pub velocity: FraudRuleSetting,
    /// More registrations than this within an hour from one IP or one device is velocity
    /// (default 5, 1–10000).
    pub registrations_per_hour: i32,
    /// Click to registration in fewer seconds than this is click injection.
    pub registration_floor_secs: i32,
    /// Click to first deposit in fewer seconds than this is click injection.
    pub ftd_floor_secs: i32,
    /// Default on, score 60, FLAG.
    pub promo_abuse: FraudRuleSetting,
    /// More players than this claiming one promo code from one cluster, IP or device within
    /// the window is promo abuse (default 3, 1–10000).
    pub promo_claims_limit: i32,
    /// How far back promo claims count, in hours (default 720, 1–8760).
    pub promo_window_hours: i32,
    /// The affiliate-level click-spamming check.
    pub click_spamming: ClickSpammingSetting,
    /// When a commission period closes, a player who claimed a bonus (`bonus_amount`) in it
    /// and whose deposits are under this is flagged PROMO_ABUSE (bonus-only; default 10).
    pub bonus_only_deposit_floor: Decimal,
}

/// Click spamming: an affiliate whose conversions came 24 hours or more after their click
/// in more than `thresholdPercent` % of those with a known click-to-conversion time, over the
/// last 7 UTC days, once it has at least `minConversions` of them.
#[derive(SimpleObject)]
pub struct ClickSpammingSetting {
    /// Default on.
    pub enabled: bool,
    /// 0–100, default 30.
    pub threshold_percent: i32,
    /// At least 1, default 20.
    pub min_conversions: i32,
}

impl From<fraud::ClickSpamming> for ClickSpammingSetting {
    fn from(setting: fraud::ClickSpamming) -> Self {
        ClickSpammingSetting {
            enabled: setting.enabled,
            threshold_percent: i32::from(setting.threshold_percent),
            min_conversions: i32::try_from(setting.min_conversions).unwrap_or(i32::MAX),
        }
    }
}

impl From<Settings> for FraudSettings {
    fn from(settings: Settings) -> Self {
        FraudSettings {
            multi_accounting: settings.multi_accounting.into(),
            click_injection: settings.click_injection.into(),
            self_referral: settings.self_referral.into(),
            bot_traffic: settings.bot_traffic.into(),
            datacenter_ip: settings.datacenter_ip.into(),
            vpn_ip: settings.vpn_ip.into(),
            blocklisted_ip: settings.blocklisted_ip.into(),
            velocity: settings.velocity.into(),
            registrations_per_hour: i32::try_from(settings.registrations_per_hour).unwrap_or(i32::MAX),
            registration_floor_secs: i32::try_from(settings.registration_floor_secs).unwrap_or(i32::MAX),
            ftd_floor_secs: i32::try_from(settings.ftd_floor_secs).unwrap_or(i32::MAX),
            promo_abuse: settings.promo_abuse.into(),
            promo_claims_limit: i32::try_from(settings.promo_claims_limit).unwrap_or(i32::MAX),
            promo_window_hours: i32::try_from(settings.promo_window_hours).unwrap_or(i32::MAX),
            click_spamming: settings.click_spamming.into(),
            bonus_only_deposit_floor: settings.bonus_only_deposit_floor,
        }
    }
}

/// Changes to one rule; what is left out stays as it is.
#[derive(InputObject)]
pub struct FraudRuleSettingInput {
    pub enabled: Option<bool>,
    /// 0–100.
    pub score: Option<i32>,
    pub action: Option<FraudAction>,
}

/// Changes to the tenant's fraud settings; what is left out stays as it is.
#[derive(InputObject)]
pub struct UpdateFraudSettingsInput {
    pub multi_accounting: Option<FraudRuleSettingInput>,
    pub click_injection: Option<FraudRuleSettingInput>,
    pub self_referral: Option<FraudRuleSettingInput>,
    pub bot_traffic: Option<FraudRuleSettingInput>,
    pub datacenter_ip: Option<FraudRuleSettingInput>,
    pub vpn_ip: Option<FraudRuleSettingInput>,
    pub blocklisted_ip: Option<FraudRuleSettingInput>,
    pub velocity: Option<FraudRuleSettingInput>,
    /// 1–10000.
    pub registrations_per_hour: Option<i32>,
    pub registration_floor_secs: Option<i32>,
    pub ftd_floor_secs: Option<i32>,
    pub promo_abuse: Option<FraudRuleSettingInput>,
    /// 1–10000.
    pub promo_claims_limit: Option<i32>,
    /// 1–8760.
    pub promo_window_hours: Option<i32>,
    pub click_spamming: Option<ClickSpammingInput>,
    /// Not negative.
    pub bonus_only_deposit_floor: Option<Decimal>,
}

/// Changes to the click-spamming check; what is left out stays as it is.
#[derive(InputObject)]
pub struct ClickSpammingInput {
    pub enabled: Option<bool>,
    /// 0–100.
    pub threshold_percent: Option<i32>,
    /// At least 1.
    pub min_conversions: Option<i32>,
}

impl UpdateFraudSettingsInput {
    fn apply_to(self, mut settings: Settings) -> Result<Settings, Invalid> {
        if let Some(input) = self.multi_accounting {
            input.apply_to(&mut settings.multi_accounting, "multiAccounting.score")?;
        }
        if let Some(input) = self.click_injection {
            input.apply_to(&mut settings.click_injection, "clickInjection.score")?;
        }
        if let Some(input) = self.self_referral {
            input.apply_to(&mut settings.self_referral, "selfReferral.score")?;
        }
        if let Some(input) = self.bot_traffic {
            input.apply_to(&mut settings.bot_traffic, "botTraffic.score")?;
        }
        if let Some(input) = self.datacenter_ip {
            input.apply_to(&mut settings.datacenter_ip, "datacenterIp.score")?;
        }
        if let Some(input) = self.vpn_ip {
            input.apply_to(&mut settings.vpn_ip, "vpnIp.score")?;
        }
        if let Some(input) = self.blocklisted_ip {
            input.apply_to(&mut settings.blocklisted_ip, "blocklistedIp.score")?;
        }
        if let Some(input) = self.velocity {
            input.apply_to(&mut settings.velocity, "velocity.score")?;
        }
        if let Some(count) = self.registrations_per_hour {
            // Only the conversion here; the range is FraudSettings::validate's.
            settings.registrations_per_hour = u32::try_from(count).map_err(|_| {
                Invalid::invalid(
                    "registrationsPerHour",
                    format!("must be between 1 and {}", fraud::MAX_REGISTRATIONS_PER_HOUR),
                )
            })?;
        }
        let seconds = |value: i32, field: &'static str| {
            u32::try_from(value).map_err(|_| Invalid::invalid(field, "must not be negative"))
        };
        if let Some(floor) = self.registration_floor_secs {
            settings.registration_floor_secs = seconds(floor, "registrationFloorSecs")?;
        }
        if let Some(floor) = self.ftd_floor_secs {
            settings.ftd_floor_secs = seconds(floor, "ftdFloorSecs")?;
        }
        if let Some(input) = self.promo_abuse {
            input.apply_to(&mut settings.promo_abuse, "promoAbuse.score")?;
        }
        // Only the conversions here; the ranges are FraudSettings::validate's.
        let at_least_one = |value: i32, field: &'static str| {
            u32::try_from(value).map_err(|_| Invalid::invalid(field, "must be at least 1"))
        };
        if let Some(limit) = self.promo_claims_limit {
            settings.promo_claims_limit = at_least_one(limit, "promoClaimsLimit")?;
        }
        if let Some(hours) = self.promo_window_hours {
            settings.promo_window_hours = at_least_one(hours, "promoWindowHours")?;
        }
        if let Some(floor) = self.bonus_only_deposit_floor {
            settings.bonus_only_deposit_floor = floor;
        }
        if let Some(input) = self.click_spamming {
            let check = &mut settings.click_spamming;
            if let Some(enabled) = input.enabled {
                check.enabled = enabled;
            }
            if let Some(percent) = input.threshold_percent {
                check.threshold_percent = u8::try_from(percent).map_err(|_| {
                    Invalid::invalid("clickSpamming.thresholdPercent", "must be between 0 and 100")
                })?;
            }
            if let Some(min) = input.min_conversions {
                check.min_conversions = at_least_one(min, "clickSpamming.minConversions")?;
            }
        }
        Ok(settings)
    }
}

impl FraudRuleSettingInput {
    fn apply_to(self, setting: &mut RuleSetting, score_field: &'static str) -> Result<(), Invalid> {
        if let Some(enabled) = self.enabled {
            setting.enabled = enabled;
        }
        if let Some(score) = self.score {
            // Only the conversion here; the range (0–100) is FraudSettings::validate's.
            setting.score = u8::try_from(score)
                .map_err(|_| Invalid::invalid(score_field, "must be between 0 and 100"))?;
        }
        if let Some(action) = self.action {
            setting.action = action.into();
        }
        Ok(())
    }
}

/// Where a flagged conversion is in review.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "clickledger_domain::fraud::review::ReviewState")]
pub enum ReviewState {
    /// Not decided yet.
    Open,
    /// `approveConversion`: its commission counts (held entries released).
    Approved,
    /// `rejectConversion`: its commission is voided (what was paid is reversed).
    Rejected,
}

/// Which flagged conversions `fraudReview` lists; everything left out matches all.
#[derive(InputObject, Default)]
pub struct FraudReviewFilter {
    /// The verdict's action (the strongest of its flags).
    pub action: Option<FraudAction>,
    /// Conversions with a flag of this rule.
    pub rule: Option<FraudRule>,
    /// Conversions crediting this affiliate.
    pub affiliate_id: Option<ID>,
    /// Default: OPEN.
    pub state: Option<ReviewState>,
}

/// A flagged conversion in review: its evidence is `conversion.fraudFlags`.
#[derive(SimpleObject)]
pub struct FraudReviewItem {
    pub conversion: Conversion,
    pub review_state: ReviewState,
    /// The user who decided last.
    pub reviewed_by: Option<ID>,
    pub reviewed_at: Option<DateTime<Utc>>,
    /// The approval's note or the rejection's reason.
    pub review_note: Option<String>,
    /// Where the multi-accounting rule linked players: the other player IDs sharing a
    /// signal (device, fingerprint, payment, e-mail or phone hash) with this one.
    pub cluster: Vec<String>,
    /// Affiliate-level flags of the affiliates this conversion credits, as of today (UTC).
    pub affiliate_flags: Vec<AffiliateFraudFlag>,
}

/// An affiliate-level fraud flag.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum AffiliateFlagKind {
    /// More than `clickSpamming.thresholdPercent` % of its conversions with a known
    /// click-to-conversion time came 24 hours or more after their click, over the last 7 UTC
    /// days (with at least `clickSpamming.minConversions` of them).
    ClickSpamming,
}

/// An affiliate flagged as a whole, not one conversion.
#[derive(SimpleObject, Clone)]
pub struct AffiliateFraudFlag {
    pub affiliate_id: ID,
    pub flag: AffiliateFlagKind,
    /// What the check counted.
    pub evidence: String,
}

impl From<Reviewed> for FraudReviewItem {
    fn from(reviewed: Reviewed) -> Self {
        FraudReviewItem {
            affiliate_flags: Vec::new(),
            conversion: Conversion::from(reviewed.conversion),
            review_state: reviewed.review.state.into(),
            reviewed_by: reviewed.review.reviewed_by.map(|id| ID(id.to_string())),
            reviewed_at: reviewed.review.reviewed_at,
            review_note: reviewed.review.note,
            cluster: reviewed.cluster,
        }
    }
}

/// One affiliate's line of `fraudReport`.
#[derive(SimpleObject)]
pub struct FraudReportLine {
    pub affiliate_id: ID,
    pub affiliate_name: String,
    /// Conversions crediting it (chargebacks aside).
    pub conversions: i64,
    /// Those with at least one fraud flag.
    pub flagged: i64,
    /// `flagged / conversions`, to four places.
    pub flagged_rate: Decimal,
    /// Per rule that fired at least once: the conversions it flagged.
    pub rules: Vec<FraudReportRule>,
    /// Click-to-conversion times of its conversions that name their click.
    pub ctit: CtitDistribution,
    /// Whether it is click spamming over the 7 days ending on the report's `to`.
    pub click_spamming: bool,
}

#[derive(SimpleObject)]
pub struct FraudReportRule {
    pub rule: FraudRule,
    pub flagged: i64,
    /// `flagged / conversions`, to four places.
    pub rate: Decimal,
}

/// Conversions by click-to-conversion time.
#[derive(SimpleObject)]
pub struct CtitDistribution {
    #[graphql(name = "under10s")]
    pub under_10s: i64,
    /// 10 s to under a minute.
    #[graphql(name = "under1m")]
    pub under_1m: i64,
    /// A minute to under an hour.
    #[graphql(name = "under1h")]
    pub under_1h: i64,
    /// An hour to under 24 hours.
    #[graphql(name = "under24h")]
    pub under_24h: i64,
    /// 24 hours or more.
    #[graphql(name = "over24h")]
    pub over_24h: i64,
}

fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl From<AffiliateFraud> for FraudReportLine {
    fn from(line: AffiliateFraud) -> Self {
        let bucket = |bucket| count(line.ctit.get(bucket));
        FraudReportLine {
            affiliate_id: ID(line.affiliate.to_string()),
            affiliate_name: line.name.clone(),
            conversions: count(line.conversions),
            flagged: count(line.flagged),
            flagged_rate: fraud::rate(line.flagged, line.conversions),
            rules: line
                .by_rule
                .iter()
                .map(|(rule, flagged)| FraudReportRule {
                    rule: (*rule).into(),
                    flagged: count(*flagged),
                    rate: fraud::rate(*flagged, line.conversions),
                })
                .collect(),
            ctit: CtitDistribution {
                under_10s: bucket(CtitBucket::Under10s),
                under_1m: bucket(CtitBucket::Under1m),
                under_1h: bucket(CtitBucket::Under1h),
                under_24h: bucket(CtitBucket::Under24h),
                over_24h: bucket(CtitBucket::Over24h),
            },
            click_spamming: line.click_spamming,
        }
    }
}

#[derive(Default)]
pub struct FraudQuery;

#[Object]
impl FraudQuery {
    /// The tenant's fraud rules: which run, their weights, floors and actions. Owner only.
    #[graphql(guard = "Allow::OWNER")]
    async fn fraud_settings(&self, ctx: &Context<'_>) -> async_graphql::Result<FraudSettings> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        Fraud::scoped(&state.db, scope).settings().await.gql().map(FraudSettings::from)
    }

    /// The review queue: the tenant's conversions with fraud flags (default: those not yet
    /// decided), oldest first, with their evidence. Owners and managers.
    #[graphql(
        guard = "Allow::STAFF",
        complexity = "first.unwrap_or(20).clamp(1, 100) as usize * child_complexity"
    )]
    async fn fraud_review(
        &self,
        ctx: &Context<'_>,
        filter: Option<FraudReviewFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, FraudReviewItem>> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let filter = filter.unwrap_or_default();
        let filter = ReviewFilter {
            action: filter.action.map(fraud::Action::from),
            rule: filter.rule.map(fraud::Rule::from),
            affiliate: filter
                .affiliate_id
                .map(|id| AffiliateId::parse(&id, "filter.affiliateId"))
                .transpose()
                .gql()?,
            state: filter.state.map(Into::into),
        };
        let request = pagination::request(after, first, ConversionId::parse, ConversionId::uuid).gql()?;
        let page = Review::scoped(&state.db, scope).queue(&filter, request).await.gql()?;
        let mut credited: Vec<AffiliateId> = page
            .items
            .iter()
            .flat_map(|item| item.conversion.credits.iter().map(|c| c.affiliate_id))
            .collect();
        credited.sort_unstable_by_key(|affiliate| affiliate.uuid());
        credited.dedup();
        let spamming =
            Fraud::scoped(&state.db, scope).click_spamming(&credited, Utc::now().date_naive()).await.gql()?;
        Ok(pagination::connection(page, request, |item| {
            let affiliate_flags = item
                .conversion
                .credits
                .iter()
                .filter_map(|credit| {
                    let state = spamming.get(&credit.affiliate_id).filter(|state| state.flagged)?;
                    Some(AffiliateFraudFlag {
                        affiliate_id: ID(credit.affiliate_id.to_string()),
                        flag: AffiliateFlagKind::ClickSpamming,
                        evidence: state.evidence.clone(),
                    })
                })
                .collect();
            (
                pagination::cursor(item.conversion.id),
                FraudReviewItem { affiliate_flags, ..FraudReviewItem::from(item) },
            )
        }))
    }

    /// Per affiliate credited in the UTC days `from` to `to` (both included, at most 400):
    /// its conversions, how many were flagged in all and per rule (with rates), how long its
    /// players took from click to conversion, and whether it is click spamming over the 7 days
    /// ending on `to`. Affiliates with no conversion in the period are left out. Owners and
    /// managers.
    #[graphql(guard = "Allow::STAFF")]
    async fn fraud_report(
        &self,
        ctx: &Context<'_>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> async_graphql::Result<Vec<FraudReportLine>> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let lines = Fraud::scoped(&state.db, scope).report(from, to).await.gql()?;
        Ok(lines.into_iter().map(FraudReportLine::from).collect())
    }
}

#[derive(Default)]
pub struct FraudMutation;

#[Object]
impl FraudMutation {
    /// Changes the tenant's fraud rules; they apply to conversions from now on. Owner only.
    #[graphql(guard = "Allow::OWNER")]
    async fn update_fraud_settings(
        &self,
        ctx: &Context<'_>,
        input: UpdateFraudSettingsInput,
    ) -> async_graphql::Result<FraudSettings> {
        let (state, principal) = (state(ctx), principal(ctx)?);
        let store = Fraud::scoped(&state.db, principal.scope());
        let settings = input.apply_to(store.settings().await.gql()?).gql()?;
        store.update(settings, principal.actor()).await.gql().map(FraudSettings::from)
    }

    /// Approves a conversion after review: its HELD commission becomes payable (PENDING for
    /// a pending conversion, APPROVED otherwise); a rejected conversion becomes approved and
    /// books the commission it was denied. Audited with the note. Owners and managers.
    #[graphql(guard = "Allow::STAFF")]
    async fn approve_conversion(
        &self,
        ctx: &Context<'_>,
        id: ID,
        note: Option<String>,
    ) -> async_graphql::Result<FraudReviewItem> {
        let note = review::note(note.as_deref(), false, "note").gql()?;
        decide(ctx, id, Decision::Approve, note).await
    }

    /// Rejects a conversion after review: it becomes rejected, its unpaid commission is
    /// voided and what was already paid is reversed into the open period. `reason` is
    /// required. Audited with the reason. Owners and managers.
    #[graphql(guard = "Allow::STAFF")]
    async fn reject_conversion(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: String,
    ) -> async_graphql::Result<FraudReviewItem> {
        let reason = review::note(Some(&reason), true, "reason").gql()?;
        decide(ctx, id, Decision::Reject, reason).await
    }
}

async fn decide(
    ctx: &Context<'_>,
    id: ID,
    decision: Decision,
    note: Option<String>,
) -> async_graphql::Result<FraudReviewItem> {
    let (state, principal) = (state(ctx), principal(ctx)?);
    let id = ConversionId::parse(&id, "id").gql()?;
    Review::scoped(&state.db, principal.scope())
        .decide(id, decision, note, principal.actor())
        .await
        .gql()
        .map(FraudReviewItem::from)
}
