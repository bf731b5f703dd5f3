//! What a user agent says about a click: whether it is a known bot's (the patterns the `isbot`
//! crate maintains: crawlers, spiders, monitors, HTTP libraries, headless browsers) and its
//! device type, OS and browser (the `woothee` parser). Each parser costs microseconds a call,
//! more than the rest of a redirect, while real traffic repeats a few thousand user agents; so
//! verdicts are kept in a bounded cache, and a flood of distinct ones evicts the rarest, never
//! grows memory.

use std::sync::{Arc, LazyLock};

use crate::reporting::Device;

/// What is known of one user agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAgent {
    pub is_bot: bool,
    pub device: Device,
}

/// Distinct user agents remembered at once.
const CAPACITY: u64 = 10_000;

/// Compiled once: one combined regular expression.
static BOTS: LazyLock<isbot::Bots> = LazyLock::new(isbot::Bots::default);

static VERDICTS: LazyLock<moka::sync::Cache<String, Arc<UserAgent>>> =
    LazyLock::new(|| moka::sync::Cache::new(CAPACITY));

/// The verdict on `user_agent`, worked out once per distinct user agent while it stays in the
/// cache.
pub fn classify(user_agent: &str) -> Arc<UserAgent> {
    if let Some(known) = VERDICTS.get(user_agent) {
        return known;
    }
    let verdict = Arc::new(UserAgent { is_bot: BOTS.is_bot(user_agent), device: Device::parse(user_agent) });
    VERDICTS.insert(user_agent.to_owned(), verdict.clone());
    verdict
}

#[cfg(test)]
mod tests {
    use super::classify;

    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
    const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";

    #[test]
    fn crawlers_and_scripts_are_bots_and_browsers_are_not() {
        assert!(classify("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)").is_bot);
        assert!(classify("curl/8.5.0").is_bot);
        assert!(classify("python-requests/2.31").is_bot);
        assert!(!classify(CHROME).is_bot);
        assert!(!classify(IPHONE).is_bot);
    }

    #[test]
    fn a_cached_verdict_is_the_one_worked_out_afresh() {
        for user_agent in [CHROME, IPHONE, "curl/8.5.0", "", "\u{1F600}"] {
            let first = classify(user_agent);
            let again = classify(user_agent);
            assert_eq!(first, again);
            assert_eq!(first.device, crate::reporting::Device::parse(user_agent), "{user_agent}");
        }
        let phone = classify(IPHONE);
        assert_eq!((phone.device.device_type.as_str(), phone.device.os.as_str()), ("smartphone", "iPhone"));
    }
}
