//! The start-up banner: where the server listens and, on the demo's first start, its one-time
//! credentials. With text logs it goes to standard output, where a newcomer looks. With JSON
//! logs standard output is a stream of JSON events for a log pipeline, so the banner becomes
//! one event there, without secrets, and the human-readable text (with the credentials) goes
//! to standard error.

use std::io::Write;

use crate::config::LogFormat;
use crate::demo::{self, DemoCredentials};

pub fn announce(
    format: LogFormat,
    listen: &str,
    public_url: &str,
    demo: Option<&DemoCredentials>,
    no_demo: bool,
) {
    let text = text(listen, public_url, demo, no_demo);
    match format {
        LogFormat::Text => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
        LogFormat::Json => {
            tracing::info!(
                listen = %format!("http://{listen}"),
                graphiql = %format!("http://{listen}/graphql"),
                dashboard = %format!("http://{listen}/dashboard"),
                tracking_url = %format!("{public_url}/c/{{code}}"),
                demo_seeded = demo.is_some(),
                "clickledger listening"
            );
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(text.as_bytes());
            let _ = err.flush();
        }
    }
}

fn text(listen: &str, public_url: &str, demo: Option<&DemoCredentials>, no_demo: bool) -> String {
    let mut lines = vec![
        format!("Clickledger listening on http://{listen}"),
        format!("  Dashboard:     http://{listen}/dashboard"),
        format!("  GraphiQL:      http://{listen}/graphql"),
        format!("  Tracking URL:  {public_url}/c/{{code}}"),
    ];
    match demo {
        Some(creds) => {
            lines.push(format!(
                "  Demo tenant `{}` created. Save these, they are shown once:",
                demo::DEMO_SLUG
            ));
            lines.push(format!("    owner      {} / {}", demo::DEMO_EMAIL, creds.password));
            lines.push(format!(
                "    affiliate  {} / {}",
                demo::DEMO_AFFILIATE_EMAIL,
                creds.affiliate_password
            ));
            lines.push(format!("    API key    {}", creds.api_key));
            lines.push(format!("    link       {public_url}/c/{}", creds.link_code));
        }
        None if !no_demo => {
            lines.push(format!(
                "  Demo tenant `{slug}`: owner {email} (password shown at first start; \
                 `clickledger user reset-password --tenant {slug} --email {email}` sets a new one)",
                slug = demo::DEMO_SLUG,
                email = demo::DEMO_EMAIL,
            ));
        }
        None => {}
    }
    lines.join("\n") + "\n"
}
