//! Typed, prefixed identifiers. Each entity has its own ID type, so an affiliate ID cannot be
//! passed where a campaign ID belongs, and the string form (`aff_0192…`) says what it names.
//! The value is a UUIDv7: time-ordered, so it doubles as a stable pagination cursor.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::Error;

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh, time-ordered ID.
            pub fn new() -> Self {
                $name(Uuid::now_v7())
            }

            pub const fn from_uuid(uuid: Uuid) -> Self {
                $name(uuid)
            }

            pub const fn uuid(self) -> Uuid {
                self.0
            }

            /// Parses the prefixed form; `field` names the input in the error.
            pub fn parse(raw: &str, field: &'static str) -> Result<Self, Error> {
                let hex = raw
                    .strip_prefix(concat!($prefix, "_"))
                    .ok_or_else(|| Error::invalid(field, concat!("expected an ID starting with `", $prefix, "_`")))?;
                if hex.len() != 32 {
                    return Err(Error::invalid(field, "malformed ID"));
                }
                Uuid::try_parse(hex)
                    .map($name)
                    .map_err(|_| Error::invalid(field, "malformed ID"))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}_{}", $prefix, self.0.simple())
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                Self::parse(s, "id")
            }
        }
    };
}

prefixed_id!(
    /// One operator's isolated account.
    TenantId, "ten");
prefixed_id!(
    /// A login: operator staff or an affiliate.
    UserId, "usr");
prefixed_id!(
    /// A partner who sends traffic.
    AffiliateId, "aff");
prefixed_id!(
    /// What is promoted.
    CampaignId, "cmp");
prefixed_id!(
    /// Affiliate × campaign, addressed by a short code.
    TrackingLinkId, "lnk");
prefixed_id!(
    /// A server-to-server credential of a tenant.
    ApiKeyId, "key");
prefixed_id!(
    /// An attributed (or unattributed) conversion.
    ConversionId, "cnv");
prefixed_id!(
    /// A browser recognised across clicks.
    VisitorId, "vis");
prefixed_id!(
    /// A commission plan (all of its versions).
    PlanId, "pln");
prefixed_id!(
    /// A commission plan assigned to a campaign, or to one affiliate on a campaign.
    PlanAssignmentId, "asg");
prefixed_id!(
    /// One append-only commission ledger entry.
    LedgerEntryId, "led");
prefixed_id!(
    /// An affiliate's statement for a closed period.
    StatementId, "stm");
prefixed_id!(
    /// An affiliate's outbound postback (webhook) endpoint.
    EndpointId, "ep");
prefixed_id!(
    /// One message owed to an endpoint; its string form is the Standard Webhooks `webhook-id`.
    DeliveryId, "msg");
prefixed_id!(
    /// One entry of a tenant's audit log.
    AuditEntryId, "aud");

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn display_carries_the_prefix() {
        let id = AffiliateId::new();
        assert!(id.to_string().starts_with("aff_"));
        assert_eq!(id.to_string().len(), 4 + 32);
    }

    #[test]
    fn a_campaign_id_is_not_an_affiliate_id() {
        let campaign = CampaignId::new().to_string();
        let err = AffiliateId::parse(&campaign, "affiliateId").unwrap_err();
        assert_eq!(err.field(), "affiliateId");
    }

    proptest! {
        #[test]
        fn round_trips(bits in any::<u128>()) {
            let id = TenantId::from_uuid(Uuid::from_u128(bits));
            prop_assert_eq!(TenantId::parse(&id.to_string(), "id").unwrap(), id);
        }

        #[test]
        fn parsing_never_panics(raw in ".{0,64}") {
            let _ = ConversionId::parse(&raw, "id");
        }
    }
}
