//! Whether a click's user agent is a known bot's, by the patterns the `isbot` crate maintains
//! (crawlers, spiders, monitors, HTTP libraries, headless browsers). A click without a user
//! agent is not counted as a bot's: nothing is known of it.

use std::sync::LazyLock;

/// Compiled once: one combined regular expression.
static BOTS: LazyLock<isbot::Bots> = LazyLock::new(isbot::Bots::default);

pub fn is_bot(user_agent: &str) -> bool {
    BOTS.is_bot(user_agent)
}

#[cfg(test)]
mod tests {
    use super::is_bot;

    #[test]
    fn crawlers_and_scripts_are_bots_and_browsers_are_not() {
        assert!(is_bot("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"));
        assert!(is_bot("curl/8.5.0"));
        assert!(is_bot("python-requests/2.31"));
        assert!(!is_bot(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
        ));
        assert!(!is_bot(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
        ));
    }
}
