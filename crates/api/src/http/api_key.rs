//! Tenant API keys for server-to-server calls: `clk_` + 40 random alphanumerics (≈238 bits),
//! stored as their SHA-256. Shown once, at creation.

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

pub struct GeneratedKey {
    pub secret: String,
    pub prefix: String,
    pub hash: String,
}

pub fn generate() -> GeneratedKey {
    let body: String = rand::rng().sample_iter(&Alphanumeric).take(40).map(char::from).collect();
    let secret = format!("clk_{body}");
    GeneratedKey { prefix: secret[..12].to_owned(), hash: hash(&secret), secret }
}

pub fn hash(presented: &str) -> String {
    hex::encode(Sha256::digest(presented.as_bytes()))
}
