use clickledger_domain::ids::{AffiliateId, TenantId, UserId};
use clickledger_domain::role::Role;
use clickledger_persistence::audit::Actor;
use clickledger_persistence::{Scope, Viewer};

/// An authenticated caller, established once per request (HTTP) or connection (WebSocket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub user: UserId,
    pub tenant: TenantId,
    pub role: Role,
    /// Set exactly when `role` is `Affiliate`.
    pub affiliate: Option<AffiliateId>,
    /// The user's session epoch the token was issued under (see `persistence::sessions`).
    pub session_epoch: i64,
}

impl Principal {
    /// Who the audit log says did what this principal does.
    pub fn actor(&self) -> Actor {
        Actor::User(self.user)
    }

    /// The repository scope this principal may read and write through.
    pub fn scope(&self) -> Scope {
        match (self.role, self.affiliate) {
            (Role::Affiliate, Some(affiliate)) => Scope::new(self.tenant, Viewer::Affiliate(affiliate)),
            // An affiliate token without an affiliate is malformed; give it nothing rather than
            // staff rights. (`JwtKeys::verify` never produces one.)
            (Role::Affiliate, None) => {
                Scope::new(self.tenant, Viewer::Affiliate(AffiliateId::from_uuid(uuid::Uuid::nil())))
            }
            _ => Scope::staff(self.tenant),
        }
    }
}

/// What the request presented: nothing, a valid token, or a token that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authentication {
    Anonymous,
    Authenticated(Principal),
    Invalid,
}

impl Authentication {
    pub fn principal(&self) -> Result<&Principal, crate::Error> {
        match self {
            Authentication::Authenticated(principal) => Ok(principal),
            Authentication::Anonymous | Authentication::Invalid => Err(crate::Error::Unauthenticated),
        }
    }
}
