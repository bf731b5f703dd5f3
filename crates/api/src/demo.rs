//! The demo tenant a newcomer logs into on first start. Seeded once per database: the marker
//! lives in instance settings, so deleting the demo tenant does not bring it back.

use clickledger_domain::password::Password;
use clickledger_persistence::directory::{Directory, NewTenant};
use clickledger_persistence::repo::{
    Affiliates, ApiKeys, Campaigns, NewAffiliate, NewCampaign, NewTrackingLink, TrackingLinks,
};
use clickledger_persistence::{Db, Scope, settings};
use rand::Rng;
use rand::distr::Alphanumeric;

use crate::http::api_key;

pub const DEMO_SLUG: &str = "demo";
pub const DEMO_EMAIL: &str = "owner@demo.clickledger.dev";

/// What a newcomer needs to try the demo; only returned on the start that created it.
pub struct DemoCredentials {
    pub password: String,
    pub affiliate_password: String,
    pub api_key: String,
    pub link_code: String,
}

pub async fn seed_once(db: &Db) -> Result<Option<DemoCredentials>, crate::Error> {
    // Only a database's very first start gets the demo: not one that already has tenants
    // (started with --no-demo before), and never twice.
    let empty = Directory::new(db).tenant_count().await? == 0;
    let (_, first_time) =
        settings::get_or_init(db, "demo_seeded", || chrono::Utc::now().to_rfc3339()).await?;
    if !first_time || !empty {
        return Ok(None);
    }
    let password = random_password();
    let (tenant, _) = Directory::new(db)
        .sign_up(NewTenant {
            name: "Demo Operator".into(),
            slug: DEMO_SLUG.into(),
            owner_email: DEMO_EMAIL.into(),
            owner_name: "Demo Owner".into(),
            owner_password_hash: Password::parse(&password)?.hash(),
        })
        .await?;
    let scope = Scope::staff(tenant.id);
    let affiliate_password = random_password();
    let affiliate = Affiliates::scoped(db, scope)
        .create(NewAffiliate {
            name: "Demo Affiliate".into(),
            email: "affiliate@demo.clickledger.dev".into(),
            parent_id: None,
            password_hash: Some(Password::parse(&affiliate_password)?.hash()),
        })
        .await?;
    let campaign = Campaigns::scoped(db, scope)
        .create(NewCampaign {
            name: "Demo Casino — Welcome Bonus".into(),
            landing_url: "https://example.com/welcome?click_id={click_id}&sub1={sub1}".into(),
            fallback_url: None,
            attribution_model: "LAST_CLICK".into(),
            lookback_days: 30,
        })
        .await?;
    let link = TrackingLinks::scoped(db, scope)
        .create(NewTrackingLink { affiliate_id: affiliate.id, campaign_id: campaign.id })
        .await?;
    let issued = api_key::generate();
    ApiKeys::scoped(db, scope).create("Demo integration".into(), issued.prefix, issued.hash).await?;
    Ok(Some(DemoCredentials { password, affiliate_password, api_key: issued.secret, link_code: link.code }))
}

fn random_password() -> String {
    rand::rng().sample_iter(&Alphanumeric).take(16).map(char::from).collect()
}
