//! Postback dialects: what another tracker's postbacks say, in Clickledger's own words.
//!
//! An operator moving here keeps its backend sending what it sent to its old tracker: the API
//! key carries a dialect, and the postback's name/value pairs are translated into native ones
//! before [`crate::postback::parse`] reads them. A translation is pure: parameter renames
//! (`subid` → `click_id`), plus, for trackers that describe a conversion by one status word, a
//! mapping of that word to an event and a status (`sale` → `ftd`, approved).
//!
//! Native names keep working alongside, so the operator can add what the old tracker lacked
//! (`player_id`, `currency`, `event`, fraud signals). When a dialect's parameter and the native
//! one it translates to are both sent, **the native one wins** and the dialect's is ignored:
//! the native name is the more explicit of the two, and an operator adding it on purpose
//! should not need to drop the old tracker's parameter first.
//!
//! Errors name the field as the sender named it: [`Translation::sender_errors`] maps the
//! native names in [`FieldError`]s back (`click_id` → `subid`).

use std::str::FromStr;

use crate::Error;
use crate::postback::FieldError;

/// Whose postback vocabulary an API key speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dialect {
    /// Clickledger's own names; nothing is translated.
    #[default]
    Clickledger,
    Keitaro,
    Voluum,
    Everflow,
    HasOffers,
    Binom,
}

/// The words of Keitaro's (and Binom's) conversion status, and what each one means here.
const STATUS_WORDS: [(&str, &str, &str); 4] = [
    ("lead", "registration", "approved"),
    ("sale", "ftd", "approved"),
    ("rejected", "ftd", "rejected"),
    ("rebill", "deposit", "approved"),
];

impl Dialect {
    pub const ALL: [Dialect; 6] = [
        Dialect::Clickledger,
        Dialect::Keitaro,
        Dialect::Voluum,
        Dialect::Everflow,
        Dialect::HasOffers,
        Dialect::Binom,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Clickledger => "clickledger",
            Dialect::Keitaro => "keitaro",
            Dialect::Voluum => "voluum",
            Dialect::Everflow => "everflow",
            Dialect::HasOffers => "hasoffers",
            Dialect::Binom => "binom",
        }
    }

    /// `(sent, native)` renames. Where several names translate to one native name, the first
    /// one sent wins (Keitaro's `payout`, then `revenue`); the first listed is the name an
    /// error about a missing field uses.
    pub fn renames(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Dialect::Clickledger => &[],
            Dialect::Keitaro => {
                &[("subid", "click_id"), ("tid", "txn_id"), ("payout", "amount"), ("revenue", "amount")]
            }
            Dialect::Voluum => &[("cid", "click_id"), ("txid", "txn_id"), ("payout", "amount")],
            Dialect::Everflow => &[("transaction_id", "click_id"), ("adv1", "player_id"), ("adv2", "txn_id")],
            Dialect::HasOffers => &[("transaction_id", "click_id"), ("adv_sub", "txn_id")],
            Dialect::Binom => &[
                ("cnv_id", "click_id"),
                ("txid", "txn_id"),
                ("payout", "amount"),
                ("cnv_currency", "currency"),
            ],
        }
    }

    /// The parameter holding a status word of [`STATUS_WORDS`] (`lead`, `sale`, `rejected`,
    /// `rebill`), which sets both the event and the status.
    pub fn status_word_field(self) -> Option<&'static str> {
        match self {
            Dialect::Keitaro => Some("status"),
            Dialect::Binom => Some("cnv_status"),
            _ => None,
        }
    }

    /// The parameter that names the event in native words (`registration`, `ftd`, …).
    pub fn event_field(self) -> Option<&'static str> {
        match self {
            Dialect::Voluum => Some("et"),
            Dialect::Everflow => Some("event_id"),
            _ => None,
        }
    }

    /// The event of a postback that names none: the other trackers count "a conversion",
    /// which for a casino or broker is the first deposit (Keitaro's and Binom's default status
    /// is `sale`, which means the same).
    pub fn default_event(self) -> Option<&'static str> {
        match self {
            Dialect::Clickledger => None,
            _ => Some("ftd"),
        }
    }

    /// Whether the answer is HasOffers' plain text (`success=true;`) rather than JSON.
    pub fn answers_plain_text(self) -> bool {
        self == Dialect::HasOffers
    }

    /// Every name this dialect reads in place of a native one; these never reach the parser.
    fn consumed(self) -> impl Iterator<Item = &'static str> {
        self.renames().iter().map(|(sent, _)| *sent).chain(self.status_word_field()).chain(self.event_field())
    }
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Dialect {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let lower = s.trim().to_ascii_lowercase();
        Dialect::ALL.into_iter().find(|d| d.as_str() == lower).ok_or_else(|| {
            Error::invalid(
                "dialect",
                "must be one of clickledger, keitaro, voluum, everflow, hasoffers, binom",
            )
        })
    }
}

/// A postback in native names, and where each translated name came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    dialect: Dialect,
    /// The pairs for [`crate::postback::parse`]: everything received but the dialect's own
    /// names, in order, then what those translated to.
    pub params: Vec<(String, String)>,
    /// `(native, sent)`: the native names this translation produced, and from which name.
    origins: Vec<(&'static str, &'static str)>,
    /// Native names the sender gave itself (with a value).
    given: Vec<&'static str>,
}

impl Translation {
    /// The name the sender used (or would have used) for native field `native`: the name it
    /// was translated from; else, when the sender did not give it natively either, the
    /// dialect's name for it; else `native` itself.
    pub fn sender_name(&self, native: &'static str) -> &'static str {
        if let Some((_, sent)) = self.origins.iter().find(|(n, _)| *n == native) {
            return sent;
        }
        if self.given.contains(&native) {
            return native;
        }
        let dialect = self.dialect;
        let from_rename = dialect.renames().iter().find(|(_, n)| *n == native).map(|(sent, _)| *sent);
        let from_field = match native {
            "event" => dialect.status_word_field().or(dialect.event_field()),
            "status" => dialect.status_word_field(),
            _ => None,
        };
        from_rename.or(from_field).unwrap_or(native)
    }

    /// The parser's errors, each naming its field as the sender named it.
    pub fn sender_errors(&self, errors: Vec<FieldError>) -> Vec<FieldError> {
        errors
            .into_iter()
            .map(|error| {
                let field = self.sender_name(error.field);
                if field == error.field {
                    return error;
                }
                // "click_id or player_id is required" names the field in its message too.
                let message = error.message.replace(error.field, field);
                FieldError { field, message }
            })
            .collect()
    }
}

/// The last non-empty value of `name` (the parser, too, lets the last value win and reads an
/// empty one as absent).
fn value_of<'a>(received: &'a [(String, String)], name: &str) -> Option<&'a str> {
    received.iter().rev().find(|(n, v)| n == name && !v.trim().is_empty()).map(|(_, v)| v.as_str())
}

/// Translates `received` (name/value pairs as they arrived) from `dialect` into native names.
/// The only error is a status word the dialect does not know, named as sent.
pub fn translate(dialect: Dialect, received: &[(String, String)]) -> Result<Translation, Vec<FieldError>> {
    let consumed: Vec<&'static str> = dialect.consumed().collect();
    let mut params: Vec<(String, String)> =
        received.iter().filter(|(name, _)| !consumed.contains(&name.as_str())).cloned().collect();
    // Native names this dialect produces, sent natively (the native one wins).
    let candidates = dialect.renames().iter().map(|(_, native)| *native).chain(["event", "status"]);
    let given: Vec<&'static str> = candidates.filter(|native| value_of(&params, native).is_some()).collect();
    let mut origins: Vec<(&'static str, &'static str)> = Vec::new();
    let mut produce =
        |params: &mut Vec<(String, String)>, native: &'static str, sent: &'static str, value: &str| {
            if !given.contains(&native) && !origins.iter().any(|(n, _)| *n == native) {
                params.push((native.to_owned(), value.to_owned()));
                origins.push((native, sent));
            }
        };
    for &(sent, native) in dialect.renames() {
        if let Some(value) = value_of(received, sent) {
            produce(&mut params, native, sent, value);
        }
    }
    if let Some(field) = dialect.status_word_field()
        && let Some(word) = value_of(received, field)
    {
        let lower = word.trim().to_ascii_lowercase();
        let Some(&(_, event, status)) = STATUS_WORDS.iter().find(|(w, _, _)| *w == lower) else {
            return Err(vec![FieldError {
                field,
                message: "must be one of lead, sale, rejected, rebill".into(),
            }]);
        };
        produce(&mut params, "event", field, event);
        produce(&mut params, "status", field, status);
    }
    if let Some(field) = dialect.event_field()
        && let Some(event) = value_of(received, field)
    {
        produce(&mut params, "event", field, event);
    }
    if let Some(event) = dialect.default_event()
        && !given.contains(&"event")
        && !origins.iter().any(|(n, _)| *n == "event")
    {
        params.push(("event".to_owned(), event.to_owned()));
    }
    Ok(Translation { dialect, params, origins, given })
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    use super::*;
    use crate::conversion::{ConversionStatus, EventKind};
    use crate::postback::{Postback, Subject, parse};

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn read(dialect: Dialect, list: &[(&str, &str)]) -> Result<Postback, Vec<FieldError>> {
        let translation = translate(dialect, &pairs(list))?;
        let now = Utc.with_ymd_and_hms(2026, 12, 7, 0, 0, 0).unwrap();
        parse(translation.params.iter().map(|(k, v)| (k.as_str(), v.as_str())), now)
            .map_err(|errors| translation.sender_errors(errors))
    }

    fn click(postback: &Postback) -> Option<&str> {
        postback.subject.click_id()
    }

    fn amount(postback: &Postback) -> Option<String> {
        postback.amount.map(|m| format!("{} {}", m.amount, m.currency.code()))
    }

    fn fields(errors: &[FieldError]) -> Vec<&'static str> {
        errors.iter().map(|e| e.field).collect()
    }

    #[test]
    fn dialect_names_round_trip() {
        for dialect in Dialect::ALL {
            assert_eq!(dialect.as_str().parse::<Dialect>().unwrap(), dialect);
            assert_eq!(dialect.as_str().to_uppercase().parse::<Dialect>().unwrap(), dialect);
        }
        assert!("keitaro2".parse::<Dialect>().is_err());
        assert_eq!(Dialect::default(), Dialect::Clickledger);
    }

    #[test]
    fn keitaro_lead_sale_rejected_rebill() {
        let lead = read(Dialect::Keitaro, &[("subid", "c1"), ("status", "lead")]).unwrap();
        assert_eq!(
            (lead.event, lead.status, click(&lead)),
            (EventKind::Registration, ConversionStatus::Approved, Some("c1"))
        );
        let sale = read(
            Dialect::Keitaro,
            &[("subid", "c1"), ("status", "sale"), ("tid", "t1"), ("payout", "25.5"), ("currency", "EUR")],
        )
        .unwrap();
        assert_eq!((sale.event, sale.status), (EventKind::Ftd, ConversionStatus::Approved));
        assert_eq!((sale.txn_id.as_deref(), amount(&sale)), (Some("t1"), Some("25.5 EUR".into())));
        let rejected = read(
            Dialect::Keitaro,
            &[
                ("subid", "c1"),
                ("status", "REJECTED"),
                ("tid", "t1"),
                ("payout", "25.5"),
                ("currency", "EUR"),
            ],
        )
        .unwrap();
        assert_eq!((rejected.event, rejected.status), (EventKind::Ftd, ConversionStatus::Rejected));
        assert_eq!(rejected.dedupe_key(), sale.dedupe_key(), "the rejection is of that very sale");
        let rebill = read(
            Dialect::Keitaro,
            &[("subid", "c1"), ("status", "rebill"), ("tid", "t2"), ("revenue", "10"), ("currency", "usd")],
        )
        .unwrap();
        assert_eq!(
            (rebill.event, rebill.status, amount(&rebill)),
            (EventKind::Deposit, ConversionStatus::Approved, Some("10 USD".into()))
        );
        // Keitaro's default status is `sale`.
        let unsaid =
            read(Dialect::Keitaro, &[("subid", "c1"), ("tid", "t3"), ("payout", "1"), ("currency", "EUR")])
                .unwrap();
        assert_eq!((unsaid.event, unsaid.status), (EventKind::Ftd, ConversionStatus::Approved));
    }

    #[test]
    fn voluum_everflow_hasoffers_binom() {
        let voluum =
            read(Dialect::Voluum, &[("cid", "c1"), ("txid", "t1"), ("payout", "5"), ("currency", "EUR")])
                .unwrap();
        assert_eq!(
            (voluum.event, click(&voluum), voluum.txn_id.as_deref()),
            (EventKind::Ftd, Some("c1"), Some("t1"))
        );
        let voluum = read(Dialect::Voluum, &[("cid", "c1"), ("et", "registration")]).unwrap();
        assert_eq!(voluum.event, EventKind::Registration);

        let everflow = read(
            Dialect::Everflow,
            &[
                ("transaction_id", "c1"),
                ("adv1", "p1"),
                ("adv2", "t1"),
                ("amount", "9"),
                ("currency", "EUR"),
                ("adv3", "x"),
            ],
        )
        .unwrap();
        assert_eq!(everflow.subject, Subject::Click { click_id: "c1".into(), player_id: Some("p1".into()) });
        assert_eq!((everflow.event, everflow.txn_id.as_deref()), (EventKind::Ftd, Some("t1")));
        let everflow = read(
            Dialect::Everflow,
            &[
                ("transaction_id", "c1"),
                ("event_id", "deposit"),
                ("adv2", "t2"),
                ("amount", "9"),
                ("currency", "EUR"),
            ],
        )
        .unwrap();
        assert_eq!(everflow.event, EventKind::Deposit);
        let numeric = read(Dialect::Everflow, &[("transaction_id", "c1"), ("event_id", "7")]).unwrap_err();
        assert_eq!(fields(&numeric), vec!["event_id"]);

        let hasoffers = read(
            Dialect::HasOffers,
            &[
                ("transaction_id", "c1"),
                ("adv_sub", "t1"),
                ("amount", "3"),
                ("currency", "EUR"),
                ("status", "pending"),
            ],
        )
        .unwrap();
        assert_eq!(
            (hasoffers.event, hasoffers.status, hasoffers.txn_id.as_deref()),
            (EventKind::Ftd, ConversionStatus::Pending, Some("t1"))
        );

        let binom = read(Dialect::Binom, &[("cnv_id", "c1"), ("cnv_status", "lead")]).unwrap();
        assert_eq!((binom.event, click(&binom)), (EventKind::Registration, Some("c1")));
        let binom = read(
            Dialect::Binom,
            &[
                ("cnv_id", "c1"),
                ("cnv_status", "sale"),
                ("txid", "t1"),
                ("payout", "2.5"),
                ("cnv_currency", "EUR"),
            ],
        )
        .unwrap();
        assert_eq!((binom.event, amount(&binom)), (EventKind::Ftd, Some("2.5 EUR".into())));
        let hold = read(Dialect::Binom, &[("cnv_id", "c1"), ("cnv_status", "hold")]).unwrap_err();
        assert_eq!(fields(&hold), vec!["cnv_status"]);
    }

    #[test]
    fn errors_name_the_field_as_sent() {
        let missing =
            read(Dialect::Keitaro, &[("status", "sale"), ("payout", "x"), ("currency", "EUR")]).unwrap_err();
        assert_eq!(fields(&missing), vec!["payout", "subid", "tid"]);
        assert!(missing.iter().any(|e| e.message == "subid or player_id is required"), "{missing:?}");
        let bad_word = read(Dialect::Keitaro, &[("subid", "c1"), ("status", "approved")]).unwrap_err();
        assert_eq!(fields(&bad_word), vec!["status"]);
        let bad_event = read(Dialect::Voluum, &[("cid", "c1"), ("et", "signupx")]).unwrap_err();
        assert_eq!(fields(&bad_event), vec!["et"]);
        // A native name the sender used is named as is.
        let native = read(
            Dialect::Keitaro,
            &[
                ("click_id", "c1"),
                ("txn_id", &"t".repeat(200)),
                ("status", "sale"),
                ("amount", "1"),
                ("currency", "EUR"),
            ],
        )
        .unwrap_err();
        assert_eq!(fields(&native), vec!["txn_id"]);
        let long = read(Dialect::HasOffers, &[("transaction_id", &"c".repeat(200))]).unwrap_err();
        assert_eq!(fields(&long), vec!["transaction_id", "adv_sub", "amount"]);
    }

    #[test]
    fn native_names_win_and_fill_in() {
        // Keitaro's `sale` would be an FTD; the operator says it is a deposit.
        let postback = read(
            Dialect::Keitaro,
            &[
                ("subid", "c1"),
                ("click_id", "c2"),
                ("status", "sale"),
                ("event", "deposit"),
                ("tid", "t1"),
                ("payout", "1"),
                ("amount", "2"),
                ("currency", "EUR"),
                ("player_id", "p1"),
            ],
        )
        .unwrap();
        assert_eq!(postback.subject, Subject::Click { click_id: "c2".into(), player_id: Some("p1".into()) });
        assert_eq!(
            (postback.event, postback.amount.map(|m| m.amount)),
            (EventKind::Deposit, Some(Decimal::from(2)))
        );
        // An empty native value is absent, so the dialect's fills it.
        let postback =
            read(Dialect::Voluum, &[("cid", "c1"), ("click_id", ""), ("et", "registration")]).unwrap();
        assert_eq!(click(&postback), Some("c1"));
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z_]{1,12}",
            proptest::sample::select(vec![
                "click_id",
                "player_id",
                "event",
                "txn_id",
                "amount",
                "currency",
                "status",
                "subid",
                "tid",
                "payout",
                "revenue",
                "cid",
                "txid",
                "et",
                "transaction_id",
                "adv1",
                "adv2",
                "adv_sub",
                "event_id",
                "cnv_id",
                "cnv_status",
                "cnv_currency",
                "key",
                "timestamp",
                "signature",
            ])
            .prop_map(str::to_owned),
        ]
    }

    fn received() -> impl Strategy<Value = Vec<(String, String)>> {
        proptest::collection::vec((name(), prop_oneof!["[a-zA-Z0-9 ]{0,8}", Just("sale".to_owned())]), 0..12)
    }

    fn dialect() -> impl Strategy<Value = Dialect> {
        proptest::sample::select(Dialect::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn clickledger_is_the_identity(received in received()) {
            let translation = translate(Dialect::Clickledger, &received).unwrap();
            prop_assert_eq!(&translation.params, &received);
            for field in ["click_id", "event", "status", "amount"] {
                prop_assert_eq!(translation.sender_name(field), field);
            }
        }

        /// Whatever a dialect reads, a native value that was sent reaches the parser unchanged
        /// and is the last word on its name.
        #[test]
        fn native_values_survive(dialect in dialect(), received in received()) {
            let Ok(translation) = translate(dialect, &received) else { return Ok(()) };
            let consumed: Vec<&str> = dialect.consumed().collect();
            for (name, _) in &received {
                // Keitaro's `status` is read as a status word, then produced as a native status.
                let produced = translation.origins.iter().any(|(native, _)| native == name);
                if consumed.contains(&name.as_str()) && !produced {
                    prop_assert!(!translation.params.iter().any(|(n, _)| n == name), "{} leaked", name);
                    continue;
                }
                if consumed.contains(&name.as_str()) {
                    continue;
                }
                if let Some(sent) = value_of(&received, name) {
                    prop_assert_eq!(value_of(&translation.params, name), Some(sent), "{}", name);
                }
            }
        }

        /// A renamed parameter alone arrives under its native name, and errors about it name it
        /// as sent.
        #[test]
        fn renames_translate(dialect in dialect(), value in "[a-zA-Z0-9]{1,10}", received in received()) {
            for &(sent, native) in dialect.renames() {
                let mut list: Vec<(String, String)> = received
                    .iter()
                    .filter(|(n, _)| n != native && !dialect.renames().iter().any(|(s, nat)| nat == &native && s == n))
                    .cloned()
                    .collect();
                list.push((sent.to_owned(), value.clone()));
                let Ok(translation) = translate(dialect, &list) else { continue };
                prop_assert_eq!(value_of(&translation.params, native), Some(value.as_str()));
                prop_assert_eq!(translation.sender_name(native), sent);
            }
        }

        /// Translated postbacks always name an event under a dialect, so the only "required"
        /// error left is what the sender really left out.
        #[test]
        fn a_dialect_always_names_an_event(dialect in dialect(), received in received()) {
            prop_assume!(dialect != Dialect::Clickledger);
            if let Ok(translation) = translate(dialect, &received) {
                prop_assert!(value_of(&translation.params, "event").is_some());
            }
        }
    }
}
