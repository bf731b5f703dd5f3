use clickledger_domain::ids::{AffiliateId, TenantId};

/// Who is looking, inside a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Viewer {
    /// Owner or manager: sees every row of the tenant.
    Staff,
    /// An affiliate: sees itself, its sub-affiliates and its own links, nothing else.
    Affiliate(AffiliateId),
}

/// The only way into a repository. Built by the API layer from an authenticated principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scope {
    tenant: TenantId,
    viewer: Viewer,
}

impl Scope {
    pub fn new(tenant: TenantId, viewer: Viewer) -> Self {
        Scope { tenant, viewer }
    }

    pub fn staff(tenant: TenantId) -> Self {
        Scope { tenant, viewer: Viewer::Staff }
    }

    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    pub fn viewer(&self) -> Viewer {
        self.viewer
    }
}
