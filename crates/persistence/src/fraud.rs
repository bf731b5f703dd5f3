//! Each tenant's fraud settings: which rules run, how much each weighs, what each does.

use chrono::{DateTime, Utc};
use clickledger_domain::audit::AuditAction;
use clickledger_domain::fraud::FraudSettings;
use clickledger_domain::ids::TenantId;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, EntityTrait, TransactionTrait};

use crate::audit::{self, Actor, Change, Diff};
use crate::entities::fraud_settings;
use crate::{Db, Error, Result, Scope};

/// The fraud settings of the scope's tenant (staff only).
pub struct Fraud<'a> {
    pub(crate) db: &'a Db,
    pub(crate) scope: Scope,
}

impl<'a> Fraud<'a> {
    pub fn scoped(db: &'a Db, scope: Scope) -> Self {
        Fraud { db, scope }
    }

    pub async fn settings(&self) -> Result<FraudSettings> {
        crate::repo::require_staff_pub(&self.scope)?;
        stored_settings(self.db.reader(), self.scope.tenant()).await
    }

    /// Replaces the settings, after the domain's checks, and returns what is now stored. The
    /// audit log keeps each changed setting's old and new value.
    pub async fn update(&self, settings: FraudSettings, actor: Actor) -> Result<FraudSettings> {
        crate::repo::require_staff_pub(&self.scope)?;
        settings.validate()?;
        let tenant = self.scope.tenant();
        let txn = self.db.writer().begin().await?;
        let before = stored_settings(&txn, tenant).await?;
        save_settings(&txn, tenant, &settings, Utc::now()).await?;
        let mut diff = Diff::default();
        diff.field("multiAccounting", before.multi_accounting, settings.multi_accounting);
        diff.field("clickInjection", before.click_injection, settings.click_injection);
        diff.field("selfReferral", before.self_referral, settings.self_referral);
        diff.field("botTraffic", before.bot_traffic, settings.bot_traffic);
        diff.field("datacenterIp", before.datacenter_ip, settings.datacenter_ip);
        diff.field("vpnIp", before.vpn_ip, settings.vpn_ip);
        diff.field("blocklistedIp", before.blocklisted_ip, settings.blocklisted_ip);
        diff.field("velocity", before.velocity, settings.velocity);
        diff.field("registrationsPerHour", before.registrations_per_hour, settings.registrations_per_hour);
        diff.field("registrationFloorSecs", before.registration_floor_secs, settings.registration_floor_secs);
        diff.field("ftdFloorSecs", before.ftd_floor_secs, settings.ftd_floor_secs);
        diff.field("promoAbuse", before.promo_abuse, settings.promo_abuse);
        diff.field("promoClaimsLimit", before.promo_claims_limit, settings.promo_claims_limit);
        diff.field("promoWindowHours", before.promo_window_hours, settings.promo_window_hours);
        diff.field("clickSpamming", before.click_spamming, settings.click_spamming);
        diff.field(
            "bonusOnlyDepositFloor",
            before.bonus_only_deposit_floor,
            settings.bonus_only_deposit_floor,
        );
        let changed = diff.into_value();
        if changed.as_object().is_some_and(|fields| !fields.is_empty()) {
            let change = Change::new(AuditAction::FraudSettingsUpdated, tenant, changed);
            audit::record(&txn, tenant, actor, vec![change]).await?;
        }
        txn.commit().await?;
        self.settings().await
    }
}

/// A tenant's fraud settings; an unreadable row is an error, never silently the defaults.
pub(crate) async fn stored_settings<C: ConnectionTrait>(conn: &C, tenant: TenantId) -> Result<FraudSettings> {
    match fraud_settings::Entity::find_by_id(tenant.uuid()).one(conn).await? {
        None => Ok(FraudSettings::default()),
        Some(row) => serde_json::from_str(&row.settings)
            .map_err(|err| Error::Corrupt(format!("fraud settings of tenant {tenant}: {err}"))),
    }
}

/// Saves a tenant's settings (validated by the caller's domain type).
async fn save_settings<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    settings: &FraudSettings,
    now: DateTime<Utc>,
) -> Result<()> {
    let json = serde_json::to_string(settings).map_err(|err| Error::Corrupt(err.to_string()))?;
    let row = fraud_settings::ActiveModel {
        tenant_id: Set(tenant.uuid()),
        settings: Set(json),
        updated_at: Set(now),
    };
    let upsert = OnConflict::column(fraud_settings::Column::TenantId)
        .update_columns([fraud_settings::Column::Settings, fraud_settings::Column::UpdatedAt])
        .to_owned();
    fraud_settings::Entity::insert(row).on_conflict(upsert).exec_without_returning(conn).await?;
    Ok(())
}
