//! The key that seals stored secrets: configured, or kept in a file beside the database.

use std::io::Write;
use std::path::Path;

use clickledger_persistence::sealed::KeyRing;

use crate::cli::anyhow_like;
use crate::config::DatabaseArgs;

/// The key ring `args` configure: `--secret-key` (with `--previous-secret-keys`), else the key
/// in `--secret-key-file`, generated there on first use.
pub fn key_ring(args: &DatabaseArgs) -> anyhow_like::Result<KeyRing> {
    let previous: Vec<[u8; 32]> = args.previous_secret_keys.iter().map(|key| key.0).collect();
    if let Some(key) = args.secret_key {
        return Ok(KeyRing::new(&key.0, &previous));
    }
    let key = read_or_create(&args.secret_key_file)?;
    Ok(KeyRing::new(&key, &previous))
}

fn read_or_create(path: &Path) -> anyhow_like::Result<[u8; 32]> {
    let named = |err: std::io::Error| format!("--secret-key-file {}: {err}", path.display());
    if !path.exists() && publish_new_key(path).map_err(named)? {
        tracing::warn!(
            path = %path.display(),
            "no --secret-key / CLICKLEDGER_SECRET_KEY given: generated a secret key into this file; \
             keep it apart from database backups, and give every replica the same --secret-key"
        );
    }
    let text = std::fs::read_to_string(path).map_err(named)?;
    Ok(KeyRing::parse_key(&text)
        .map_err(|problem| format!("--secret-key-file {}: {problem}", path.display()))?)
}

/// Writes a new key to a file of its own, readable by its owner alone, then links it into
/// place only if `path` is still absent: a process starting at the same moment either sees
/// no file or a whole one, and both end up with the first one's key. Whether this one won.
fn publish_new_key(path: &Path) -> std::io::Result<bool> {
    let draft = path.with_extension(format!("new-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&draft).and_then(|mut file| {
        file.write_all(format!("{}\n", KeyRing::generate_key()).as_bytes())?;
        file.sync_all()
    });
    let published = written.and_then(|()| std::fs::hard_link(&draft, path));
    let _ = std::fs::remove_file(&draft);
    match published {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(err) => Err(err),
    }
}
