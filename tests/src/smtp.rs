//! A real SMTP server on loopback for e-mail tests: Debian's python3-aiosmtpd (installed by
//! `.ci/run`), with a handler that writes each message's recipients, subject and decoded
//! plain-text part to a directory.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const SINK: &str = r#"
import email, email.policy, itertools, pathlib, sys, time
from aiosmtpd.controller import Controller

class Sink:
    counter = itertools.count()
    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        n = next(self.counter)
        out = pathlib.Path(sys.argv[2])
        text = "To: %s\nSubject: %s\nHTML: %s\n\n%s" % (
            ",".join(envelope.rcpt_tos), message["subject"], "yes" if html is not None else "no",
            body.get_content() if body is not None else "")
        (out / ("%04d.tmp" % n)).write_text(text)
        (out / ("%04d.tmp" % n)).rename(out / ("%04d.txt" % n))
        return "250 OK"

controller = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"#;

#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub has_html: bool,
    pub text: String,
}

pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    _child: Child,
}

impl SmtpSink {
    /// `None` when no Python with aiosmtpd is installed (outside CI, the caller may skip).
    pub async fn start() -> Option<SmtpSink> {
        let python = ["/usr/bin/python3", "python3"].into_iter().find(|python| {
            std::process::Command::new(python)
                .args(["-c", "import aiosmtpd"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })?;
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let dir = tempfile::tempdir().ok()?;
        let mut child = Command::new(python)
            .args(["-c", SINK, &port.to_string(), &dir.path().display().to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .ok()?;
        let mut lines = BufReader::new(child.stdout.take()?).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await;
        if !matches!(ready, Ok(Ok(Some(ref line))) if line == "ready") {
            return None;
        }
        Some(SmtpSink { port, dir, _child: child })
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn messages(&self) -> Vec<Mail> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "txt"));
        files.sort();
        files
            .into_iter()
            .filter_map(|path| {
                let raw = std::fs::read_to_string(path).ok()?;
                let (head, text) = raw.split_once("\n\n")?;
                let field = |name: &str| {
                    head.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or("").to_owned()
                };
                Some(Mail {
                    to: field("To:"),
                    subject: field("Subject:"),
                    has_html: field("HTML:") == "yes",
                    text: text.to_owned(),
                })
            })
            .collect()
    }

    /// Waits until `count` messages have arrived.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Mail> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let messages = self.messages();
            if messages.len() >= count || tokio::time::Instant::now() >= deadline {
                assert_eq!(messages.len(), count, "e-mails received: {messages:?}");
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
