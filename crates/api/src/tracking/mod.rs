//! The click path: `GET /c/{code}` answers a redirect in microseconds; the click row is
//! written behind it, in batches.

mod batcher;
mod geoip;
mod links;
mod redirect;
mod velocity;

pub use batcher::ClickBatcher;
pub use geoip::GeoIp;
pub use links::{InvalidateOnDrop, LinkCache};
pub use redirect::{click, legacy_click};
pub use velocity::ClickVelocity;
