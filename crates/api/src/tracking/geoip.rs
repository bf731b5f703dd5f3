//! A click's country from its address, through a MaxMind-format database (GeoLite2-Country or
//! -City, `--geoip-db`). Looked up by the click writer, once per batch, so the redirect never
//! waits on it.

use std::net::IpAddr;
use std::path::Path;

use maxminddb::{Reader, geoip2};

pub struct GeoIp {
    reader: Reader<Vec<u8>>,
}

impl GeoIp {
    /// Reads the whole database into memory; a missing or malformed file is an error that
    /// names the flag, so the server refuses to start rather than count no countries.
    pub fn open(path: &Path) -> Result<GeoIp, String> {
        let reader = Reader::open_readfile(path).map_err(|err| {
            format!("--geoip-db {}: not a readable MaxMind database: {err}", path.display())
        })?;
        let kind = &reader.metadata().database_type;
        if !(kind.contains("Country") || kind.contains("City")) {
            return Err(format!(
                "--geoip-db {}: a {kind} database has no countries; give a Country or City database",
                path.display()
            ));
        }
        Ok(GeoIp { reader })
    }

    /// The ISO 3166-1 alpha-2 code of the country `ip` is in, if the database knows it.
    pub fn country(&self, ip: &str) -> Option<String> {
        let ip: IpAddr = ip.parse().ok()?;
        let found = self.reader.lookup(ip).ok()?;
        let record: geoip2::Country = found.decode().ok()??;
        record.country.iso_code.map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> GeoIp {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/GeoIP2-Country-Test.mmdb");
        GeoIp::open(Path::new(path)).unwrap()
    }

    #[test]
    fn addresses_in_the_test_database_have_their_country() {
        let geo = fixture();
        assert_eq!(geo.country("81.2.69.160").as_deref(), Some("GB"));
        assert_eq!(geo.country("89.160.20.112").as_deref(), Some("SE"));
        assert_eq!(geo.country("2001:218::1").as_deref(), Some("JP"));
        assert_eq!(geo.country("127.0.0.1"), None);
        assert_eq!(geo.country("not an address"), None);
    }

    #[test]
    fn a_bad_file_names_the_flag() {
        let missing = GeoIp::open(Path::new("/nonexistent/geo.mmdb")).err().unwrap();
        assert!(missing.starts_with("--geoip-db /nonexistent/geo.mmdb"), "{missing}");
        let not_a_database =
            GeoIp::open(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))).err().unwrap();
        assert!(not_a_database.contains("--geoip-db"), "{not_a_database}");
    }
}
