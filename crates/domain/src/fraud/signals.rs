//! What a postback may tell about the player's device, identity and payment, for fraud rules.
//! The operator hashes personal data before sending it; Clickledger only compares the hashes
//! and never needs the raw values.

use std::net::IpAddr;
use std::str::FromStr;

use rust_decimal::Decimal;

use crate::Error;
use crate::postback::{FieldError, MAX_ID_LEN, decimal, keep, text};

/// The longest user agent kept; browsers send a few hundred characters at most.
pub const MAX_USER_AGENT_LEN: usize = 512;

/// The optional fraud signals of one postback.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signals {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub device_id: Option<String>,
    pub fingerprint: Option<String>,
    pub email_hash: Option<String>,
    pub phone_hash: Option<String>,
    /// The operator's hash of a card or wallet.
    pub payment_hash: Option<String>,
    pub promo_code: Option<String>,
    pub bonus_amount: Option<Decimal>,
}

/// A signal that, shared by two players of one tenant, links them into one cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClusterSignal {
    DeviceId,
    Fingerprint,
    PaymentHash,
    EmailHash,
    PhoneHash,
}

impl ClusterSignal {
    pub const ALL: [ClusterSignal; 5] = [
        ClusterSignal::DeviceId,
        ClusterSignal::Fingerprint,
        ClusterSignal::PaymentHash,
        ClusterSignal::EmailHash,
        ClusterSignal::PhoneHash,
    ];

    /// The postback parameter, and the name stored with the value.
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterSignal::DeviceId => "device_id",
            ClusterSignal::Fingerprint => "fingerprint",
            ClusterSignal::PaymentHash => "payment_hash",
            ClusterSignal::EmailHash => "email_hash",
            ClusterSignal::PhoneHash => "phone_hash",
        }
    }
}

impl FromStr for ClusterSignal {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        ClusterSignal::ALL
            .into_iter()
            .find(|signal| signal.as_str() == s)
            .ok_or_else(|| Error::invalid("signal", format!("unknown cluster signal `{s}`")))
    }
}

impl Signals {
    /// The cluster signals this postback carries, with their values.
    pub fn cluster_values(&self) -> Vec<(ClusterSignal, &str)> {
        ClusterSignal::ALL
            .into_iter()
            .filter_map(|signal| {
                let value = match signal {
                    ClusterSignal::DeviceId => &self.device_id,
                    ClusterSignal::Fingerprint => &self.fingerprint,
                    ClusterSignal::PaymentHash => &self.payment_hash,
                    ClusterSignal::EmailHash => &self.email_hash,
                    ClusterSignal::PhoneHash => &self.phone_hash,
                };
                value.as_deref().map(|value| (signal, value))
            })
            .collect()
    }
}

/// Reads the signals among a postback's parameters; a bad one is an error naming it.
pub(crate) fn parse<'a>(param: impl Fn(&str) -> Option<&'a str>, errors: &mut Vec<FieldError>) -> Signals {
    let hash = |errors: &mut Vec<FieldError>, field: &'static str| {
        keep(errors, text(param(field), field, MAX_ID_LEN))
    };
    let ip = keep(
        errors,
        param("ip")
            .map(|raw| {
                IpAddr::from_str(raw).map_err(|_| Error::invalid("ip", "must be an IPv4 or IPv6 address"))
            })
            .transpose(),
    );
    let signals = Signals {
        ip,
        user_agent: keep(errors, text(param("user_agent"), "user_agent", MAX_USER_AGENT_LEN)),
        device_id: hash(errors, "device_id"),
        fingerprint: hash(errors, "fingerprint"),
        email_hash: hash(errors, "email_hash"),
        phone_hash: hash(errors, "phone_hash"),
        payment_hash: hash(errors, "payment_hash"),
        promo_code: hash(errors, "promo_code"),
        bonus_amount: keep(errors, decimal(param("bonus_amount"), "bonus_amount")),
    };
    if signals.bonus_amount.is_some_and(|b| b.is_sign_negative() && !b.is_zero()) {
        errors.push(FieldError { field: "bonus_amount".into(), message: "must not be negative".into() });
    }
    signals
}
