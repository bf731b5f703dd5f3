//! Tenant API keys for server-to-server calls: `clk_` + 40 random alphanumerics (≈238 bits),
//! stored as their SHA-256. Shown once, at creation. Each key has a signing secret of its
//! own too (`clsig_` + 64 hex digits, 256 bits), the HMAC key of signed postbacks; shown once,
//! at creation and at each rotation.

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

pub struct GeneratedKey {
    pub secret: String,
    pub prefix: String,
    pub hash: String,
    pub signing_secret: String,
}

pub fn generate() -> GeneratedKey {
    let body: String = rand::rng().sample_iter(&Alphanumeric).take(40).map(char::from).collect();
    let secret = format!("clk_{body}");
    GeneratedKey {
        prefix: secret[..12].to_owned(),
        hash: hash(&secret),
        secret,
        signing_secret: signing_secret(),
    }
}

/// A new signing secret. `rand::rng()` is a CSPRNG (ChaCha12, seeded and reseeded from the
/// operating system).
pub fn signing_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    format!("clsig_{}", hex::encode(bytes))
}

pub fn hash(presented: &str) -> String {
    hex::encode(Sha256::digest(presented.as_bytes()))
}
