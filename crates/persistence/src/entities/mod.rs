//! sea-orm entities: the storage shape, nothing more. They stay private to this crate; what
//! leaves it are the records in `crate::records`, already scoped to a tenant.

pub mod affiliates;
pub mod api_keys;
pub mod campaigns;
pub mod instance_settings;
pub mod tenants;
pub mod tracking_links;
pub mod users;
