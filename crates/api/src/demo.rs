//! The demo tenant a newcomer logs into on first start. Seeded once per database: the marker
//! lives in instance settings, so deleting the demo tenant does not bring it back. The server
//! seeds it only once it is serving, so the one-time credentials reach the banner.

use clickledger_domain::password::Password;
use clickledger_persistence::audit::Actor;
use clickledger_persistence::directory::{Directory, NewTenant};
use clickledger_persistence::repo::{
    Affiliates, ApiKeys, Campaigns, NewAffiliate, NewApiKey, NewCampaign, NewTrackingLink, TrackingLinks,
};
use clickledger_persistence::{Db, Scope, settings};
use rand::Rng;
use rand::distr::Alphanumeric;

use crate::http::api_key;

pub const DEMO_SLUG: &str = "demo";
pub const DEMO_EMAIL: &str = "owner@demo.clickledger.dev";
pub const DEMO_AFFILIATE_EMAIL: &str = "affiliate@demo.clickledger.dev";
const SEEDED_MARKER: &str = "demo_seeded";

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
            },
            Actor::Host,
        )
        .await?;
    settings::get_or_init(db, SEEDED_MARKER, || chrono::Utc::now().to_rfc3339()).await?;
    Ok(Some(DemoCredentials { password, affiliate_password, api_key: issued.secret, link_code: link.code }))
}

pub fn random_password() -> String {
    rand::rng().sample_iter(&Alphanumeric).take(16).map(char::from).collect()
}
