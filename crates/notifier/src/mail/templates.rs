//! The messages we send, each as plain text and HTML. Values are HTML-escaped in the HTML
//! part; links are ours (built from the configured public URL), never user input.

use clickledger_persistence::mail::Message;

pub fn escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html_page(title: &str, paragraphs: &[String], link: Option<(&str, &str)>) -> String {
    let mut body = String::new();
    for paragraph in paragraphs {
        body.push_str(&format!("<p>{}</p>\n", escape(paragraph)));
    }
    if let Some((label, href)) = link {
        body.push_str(&format!("<p><a href=\"{}\">{}</a></p>\n", escape(href), escape(label)));
    }
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n{body}<p>— Clickledger</p>\n</body></html>\n",
        escape(title)
    )
}

fn text_page(paragraphs: &[String], link: Option<&str>) -> String {
    let mut text = paragraphs.join("\n\n");
    if let Some(link) = link {
        text.push_str("\n\n");
        text.push_str(link);
    }
    text.push_str("\n\n— Clickledger\n");
    text
}

fn message(kind: &str, subject: String, paragraphs: Vec<String>, link: Option<(&str, &str)>) -> Message {
    Message {
        kind: kind.to_owned(),
        text: text_page(&paragraphs, link.map(|(_, href)| href)),
        html: html_page(&subject, &paragraphs, link),
        subject,
    }
}

/// How to sign in once the password is set: the tenant's slug (which `login` asks for), the
/// e-mail address, and where.
pub struct SignIn<'a> {
    pub tenant_slug: &'a str,
    pub email: &'a str,
    /// The portal's address: the dashboard.
    pub url: &'a str,
}

impl SignIn<'_> {
    /// The same sentence in the e-mail and on the set-password page.
    pub fn sentence(&self) -> String {
        format!(
            "Sign in at {} with tenant \"{}\", e-mail {} and your password.",
            self.url, self.tenant_slug, self.email
        )
    }
}

pub fn invitation(
    tenant: &str,
    affiliate: &str,
    link: &str,
    valid_days: i64,
    sign_in: &SignIn<'_>,
) -> Message {
    message(
        "invitation",
        format!("{tenant} invites you to its affiliate portal"),
        vec![
            format!("Hello {affiliate},"),
            format!(
                "{tenant} has invited you to its affiliate portal. Choose a password with the link at the end of this e-mail; it works once and expires in {valid_days} days."
            ),
            format!("Then: {}", sign_in.sentence()),
        ],
        Some(("Set your password", link)),
    )
}

pub fn password_reset(tenant: &str, name: &str, link: &str, valid_minutes: i64) -> Message {
    message(
        "password_reset",
        format!("Reset your {tenant} password"),
        vec![
            format!("Hello {name},"),
            "Someone (hopefully you) asked to reset your password. Choose a new one here:".to_owned(),
            format!(
                "The link works once and expires in {valid_minutes} minutes. If you did not ask for this, ignore this e-mail."
            ),
        ],
        Some(("Choose a new password", link)),
    )
}

pub fn fraud_alert(tenant: &str, affiliate: &str, rule: &str, detail: &str) -> Message {
    message(
        "fraud_alert",
        format!("Fraud alert: {affiliate} ({rule})"),
        vec![
            format!("A fraud rule fired in {tenant}."),
            format!("Affiliate: {affiliate}"),
            format!("Rule: {rule}"),
            detail.to_owned(),
        ],
        None,
    )
}

pub fn endpoint_disabled(url_template: &str, affiliate: &str, reason: &str) -> Message {
    message(
        "endpoint_disabled",
        "A postback endpoint was disabled".to_owned(),
        vec![
            format!("The postback endpoint {url_template} of affiliate {affiliate} was disabled: {reason}."),
            "Deliveries for it wait until it is enabled again (updatePostbackEndpoint with enabled: true)."
                .to_owned(),
        ],
        None,
    )
}

/// One line per figure, e.g. ("conversions", "42").
pub fn daily_digest(tenant: &str, day: &str, figures: &[(&str, String)]) -> Message {
    let mut paragraphs = vec![format!("{tenant}, {day}:")];
    paragraphs.extend(figures.iter().map(|(name, value)| format!("{name}: {value}")));
    message("daily_digest", format!("{tenant}: daily digest for {day}"), paragraphs, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_parts_escape_values_and_text_parts_carry_the_link() {
        let sign_in = SignIn { tenant_slug: "acme", email: "bob@co.test", url: "https://x.test/graphql" };
        let m = invitation("Acme <Casino>", "Bob & Co", "https://x.test/set-password?token=abc", 7, &sign_in);
        for part in [&m.text, &m.html] {
            assert!(part.contains("tenant &quot;acme&quot;") || part.contains("tenant \"acme\""), "{part}");
            assert!(part.contains("https://x.test/graphql") && part.contains("bob@co.test"), "{part}");
        }
        assert!(m.html.contains("Acme &lt;Casino&gt;"));
        assert!(m.html.contains("Bob &amp; Co"));
        assert!(m.html.contains("href=\"https://x.test/set-password?token=abc\""));
        assert!(m.text.contains("https://x.test/set-password?token=abc"));
        assert_eq!(m.kind, "invitation");
        for m in [
            password_reset("T", "N", "https://l", 60),
            fraud_alert("T", "A", "click_flood", "120 clicks a minute"),
            endpoint_disabled("https://t/pb", "aff_1", "410 Gone"),
            daily_digest("T", "2026-11-24", &[("conversions", "3".into())]),
        ] {
            assert!(!m.subject.is_empty() && !m.text.is_empty() && m.html.starts_with("<!doctype html>"));
        }
    }
}
