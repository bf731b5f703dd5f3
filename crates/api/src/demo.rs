//! The demo tenant a newcomer logs into on first start. Seeded once per database: the marker
//! lives in instance settings, so deleting the demo tenant does not bring it back. The server
//! seeds it only once it is serving, so the one-time credentials reach the banner.

use clickledger_domain::commission::{CpaRules, PerLotRules, Plan, RevShareRules, RevShareTier, TierBasis};
use clickledger_domain::money::Currency;
use clickledger_domain::password::Password;
use clickledger_persistence::audit::Actor;
use clickledger_persistence::commission::{NewAssignment, Plans};
use clickledger_persistence::directory::{Directory, NewTenant};
use clickledger_persistence::repo::{
    Affiliates, ApiKeys, Campaigns, NewAffiliate, NewApiKey, NewCampaign, NewTrackingLink, TrackingLinks,
};
use clickledger_persistence::{Db, Scope, settings};
use rand::Rng;
use rand::distr::Alphanumeric;
use rust_decimal::Decimal;

use crate::http::api_key;

pub const DEMO_SLUG: &str = "demo";
pub const DEMO_EMAIL: &str = "owner@demo.clickledger.dev";
pub const DEMO_AFFILIATE_EMAIL: &str = "affiliate@demo.clickledger.dev";
pub const DEMO_PARTNER_EMAIL: &str = "partners@northwind.example";
const SEEDED_MARKER: &str = "demo_seeded";
/// The instance setting that keeps the demo's API key, sealed.
pub const DEMO_API_KEY_SETTING: &str = "demo_api_key";

/// What a newcomer needs to try the demo; only returned on the start that created it.
pub struct DemoCredentials {
    pub password: String,
    pub affiliate_password: String,
    pub api_key: String,
    pub link_code: String,
}

pub async fn seed_once(db: &Db) -> Result<Option<DemoCredentials>, crate::Error> {
    // Only a database's very first start gets the demo: not one that already has tenants
    // (started with --no-demo before, or made with `clickledger tenant create`), and never twice.
    if settings::get(db, SEEDED_MARKER).await?.is_some() || Directory::new(db).tenant_count().await? > 0 {
        return Ok(None);
    }
    let password = random_password();
    let signed_up = Directory::new(db)
        .sign_up(NewTenant {
            name: "Demo Operator".into(),
            slug: DEMO_SLUG.into(),
            owner_email: DEMO_EMAIL.into(),
            owner_name: "Demo Owner".into(),
            owner_password_hash: Password::parse(&password)?.hash(),
        })
        .await;
    let tenant = match signed_up {
        Ok((tenant, _)) => tenant,
        // Another replica starting at the same moment seeded it; its banner has the password.
        Err(clickledger_persistence::Error::Conflict { .. }) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    let scope = Scope::staff(tenant.id);
    let affiliate_password = random_password();
    let affiliate = Affiliates::scoped(db, scope)
        .create(NewAffiliate {
            name: "Demo Affiliate".into(),
            email: DEMO_AFFILIATE_EMAIL.into(),
            parent_id: None,
            password_hash: Some(Password::parse(&affiliate_password)?.hash()),
        })
        .await?;
    // A partner without a login, so the operator's rankings have more than one row.
    let partner = Affiliates::scoped(db, scope)
        .create(NewAffiliate {
            name: "Northwind Media".into(),
            email: DEMO_PARTNER_EMAIL.into(),
            parent_id: None,
            password_hash: None,
        })
        .await?;
    let casino = Campaigns::scoped(db, scope)
        .create(NewCampaign {
            name: "Demo Casino — Welcome Bonus".into(),
            landing_url: "https://example.com/welcome?click_id={click_id}&sub1={sub1}".into(),
            fallback_url: None,
            attribution_model: "LAST_CLICK".into(),
            lookback_days: 30,
        })
        .await?;
    let forex = Campaigns::scoped(db, scope)
        .create(NewCampaign {
            name: "Demo Forex — CFD Trading".into(),
            landing_url: "https://example.com/trade?click_id={click_id}&sub1={sub1}".into(),
            fallback_url: None,
            attribution_model: "LAST_CLICK".into(),
            lookback_days: 30,
        })
        .await?;
    let links = TrackingLinks::scoped(db, scope);
    let link = links.create(NewTrackingLink { affiliate_id: affiliate.id, campaign_id: casino.id }).await?;
    links.create(NewTrackingLink { affiliate_id: affiliate.id, campaign_id: forex.id }).await?;
    links.create(NewTrackingLink { affiliate_id: partner.id, campaign_id: casino.id }).await?;
    links.create(NewTrackingLink { affiliate_id: partner.id, campaign_id: forex.id }).await?;
    // One hybrid plan, every campaign's default, so the demo's numbers show commission.
    let plan = Plans::scoped(db, scope)
        .create("Demo hybrid".into(), demo_plan(), chrono::Utc::now(), Actor::Host)
        .await?;
    for campaign in [casino.id, forex.id] {
        Plans::scoped(db, scope)
            .assign(
                NewAssignment {
                    plan_id: plan.id,
                    campaign_id: campaign,
                    affiliate_id: None,
                    effective_from: chrono::Utc::now(),
                },
                Actor::Host,
            )
            .await?;
    }
    let issued = api_key::generate();
    ApiKeys::scoped(db, scope)
        .create(
            NewApiKey {
                name: "Demo integration".into(),
                prefix: issued.prefix,
                secret_hash: issued.hash,
                signing_secret: issued.signing_secret,
                postbacks_per_minute: None,
                signature_required: false,
                dialect: Default::default(),
                custom_dialect: None,
            },
            Actor::Host,
        )
        .await?;
    // Kept (sealed) for `clickledger simulate`, which sends its postbacks with it.
    settings::get_or_init_secret(db, DEMO_API_KEY_SETTING, || issued.secret.clone()).await?;
    settings::get_or_init(db, SEEDED_MARKER, || chrono::Utc::now().to_rfc3339()).await?;
    Ok(Some(DemoCredentials { password, affiliate_password, api_key: issued.secret, link_code: link.code }))
}

/// CPL, CPA on a first deposit of at least 50, a revenue share tiered by net revenue, and
/// a rate per lot traded: every kind of event the simulator sends earns something.
fn demo_plan() -> Plan {
    Plan {
        currency: Currency::USD,
        cpa: Some(CpaRules {
            amount: Decimal::new(40, 0),
            min_first_deposit: Some(Decimal::new(50, 0)),
            ..Default::default()
        }),
        cpl: Some(Decimal::new(2, 0)),
        revshare: Some(RevShareRules {
            tier_by: TierBasis::NetRevenue,
            tiers: vec![
                RevShareTier { from: Decimal::ZERO, percent: Decimal::new(25, 0) },
                RevShareTier { from: Decimal::new(10_000, 0), percent: Decimal::new(35, 0) },
            ],
            negative_carryover: true,
        }),
        per_lot: Some(PerLotRules { default_rate: Decimal::new(5, 0), ..Default::default() }),
        kpi: Vec::new(),
        overrides: Vec::new(),
    }
}

pub fn random_password() -> String {
    rand::rng().sample_iter(&Alphanumeric).take(16).map(char::from).collect()
}
