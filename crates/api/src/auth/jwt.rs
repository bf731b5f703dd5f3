//! Session tokens: HS256 JWTs whose issuer, audience, expiry, not-before and algorithm are all
//! checked (jsonwebtoken leaves some of these off by default).

use chrono::{DateTime, Utc};
use clickledger_domain::ids::{AffiliateId, TenantId, UserId};
use clickledger_domain::role::Role;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

use super::Principal;

const ISSUER: &str = "clickledger";
const AUDIENCE: &str = "clickledger-api";

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub tid: String,
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aff: Option<String>,
    /// The user's session epoch when the token was issued; the token is honoured only while
    /// the user's stored epoch is still this one. Tokens from before epochs existed read as 0.
    #[serde(default)]
    pub sep: i64,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: chrono::Duration,
}

impl JwtKeys {
    pub fn new(secret: &[u8], ttl_minutes: u32) -> Self {
        super::hs256::install();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = 5;
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl: chrono::Duration::minutes(i64::from(ttl_minutes)),
        }
    }

    pub fn issue(&self, principal: &Principal) -> Result<String, crate::Error> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: principal.user.to_string(),
            tid: principal.tenant.to_string(),
            role: principal.role.as_str().to_owned(),
            aff: principal.affiliate.map(|id| id.to_string()),
            sep: principal.session_epoch,
            iat: now,
            nbf: now,
            exp: now + self.ttl.num_seconds(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|err| crate::Error::Internal(format!("cannot sign token: {err}")))
    }

    /// The principal a token names and when the token expires, if it is genuine and
    /// current. Whether its session still stands is the database's to say
    /// (`http::verify_session`).
    pub fn verify(&self, token: &str) -> Option<Verified> {
        let claims = decode::<Claims>(token, &self.decoding, &self.validation).ok()?.claims;
        let principal = Principal {
            user: UserId::parse(&claims.sub, "sub").ok()?,
            tenant: TenantId::parse(&claims.tid, "tid").ok()?,
            role: claims.role.parse::<Role>().ok()?,
            affiliate: match claims.aff {
                Some(aff) => Some(AffiliateId::parse(&aff, "aff").ok()?),
                None => None,
            },
            session_epoch: claims.sep,
        };
        Some(Verified { principal, expires_at: DateTime::from_timestamp(claims.exp, 0)? })
    }
}

/// A genuine, unexpired token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub principal: Principal,
    pub expires_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal() -> Principal {
        Principal {
            user: UserId::new(),
            tenant: TenantId::new(),
            role: Role::Manager,
            affiliate: None,
            session_epoch: 7,
        }
    }

    #[test]
    fn round_trips_with_the_session_epoch_and_expiry() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef", 10);
        let p = principal();
        let verified = keys.verify(&keys.issue(&p).unwrap()).unwrap();
        assert_eq!(verified.principal, p);
        let lifetime = verified.expires_at - Utc::now();
        assert!(lifetime > chrono::Duration::minutes(9) && lifetime <= chrono::Duration::minutes(10));
    }

    #[test]
    fn a_token_from_before_session_epochs_has_epoch_zero() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let keys = JwtKeys::new(secret, 10);
        let now = Utc::now().timestamp();
        let claims = serde_json::json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": UserId::new().to_string(),
            "tid": TenantId::new().to_string(), "role": "owner", "iat": now, "nbf": now, "exp": now + 60,
        });
        let token =
            encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret)).unwrap();
        assert_eq!(keys.verify(&token).unwrap().principal.session_epoch, 0);
    }

    #[test]
    fn refuses_other_secret_expired_and_foreign_audience() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef", 10);
        let other = JwtKeys::new(b"ffffffffffffffffffffffffffffffff", 10);
        assert_eq!(keys.verify(&other.issue(&principal()).unwrap()), None);

        let now = Utc::now().timestamp();
        let forge = |aud: &str, nbf: i64, exp: i64, alg: Algorithm| {
            let claims = Claims {
                iss: ISSUER.into(),
                aud: aud.into(),
                sub: UserId::new().to_string(),
                tid: TenantId::new().to_string(),
                role: "owner".into(),
                aff: None,
                sep: 0,
                iat: now,
                nbf,
                exp,
            };
            encode(&Header::new(alg), &claims, &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"))
                .unwrap()
        };
        assert!(keys.verify(&forge(AUDIENCE, now, now + 60, Algorithm::HS256)).is_some());
        assert_eq!(keys.verify(&forge("someone-else", now, now + 60, Algorithm::HS256)), None);
        assert_eq!(keys.verify(&forge(AUDIENCE, now - 120, now - 60, Algorithm::HS256)), None);
        assert_eq!(keys.verify(&forge(AUDIENCE, now + 600, now + 1200, Algorithm::HS256)), None);
        // Another algorithm in the header: refused (the provider knows HS256 alone).
        let token = forge(AUDIENCE, now, now + 60, Algorithm::HS256);
        let (_, rest) = token.split_once('.').unwrap();
        let header = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            r#"{"alg":"HS512","typ":"JWT"}"#,
        );
        assert_eq!(keys.verify(&format!("{header}.{rest}")), None);
    }
}
