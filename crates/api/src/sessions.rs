//! Revocable sessions.
//!
//! A session token carries its user's session epoch (`persistence::sessions`). **Requests**
//! are checked against the database every time: the read of the user that already checked
//! it was active now also compares the epoch, so there is no extra query, no cache to go
//! stale and nothing to tell other replicas; a password change or a suspension stops every
//! older token on the very next request, on every replica.
//!
//! **Open WebSocket connections** outlive their `connection_init`, so each is watched
//! ([`watch`]): it ends when its token expires, and it is re-checked when its user's sessions
//! are ended, which this replica hears from the mutation that did it ([`Sessions::ended`])
//! and, with PostgreSQL, every replica hears from the database ([`Sessions::spawn_listener`]).
//! A re-check every [`RECHECK_EVERY`] covers what no one announces (a password reset from
//! the command line against SQLite, a notification lost with its connection).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clickledger_domain::ids::{AffiliateId, UserId};
use clickledger_domain::status::ActiveStatus;
use clickledger_persistence::repo::Users;
use clickledger_persistence::sessions::{Revoked, SessionListener};
use clickledger_persistence::{Db, Scope};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::auth::Principal;

/// How often an open connection re-checks its session when nothing announced a change.
pub const RECHECK_EVERY: Duration = Duration::from_secs(60);

/// Why a session no longer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a genuine, unexpired token, or its user is gone.
    Invalid,
    /// Ended by a new password (or a suspension since lifted): sign in again.
    Revoked,
    /// The account is suspended.
    Suspended,
    /// The database did not answer.
    Unavailable,
}

/// Whether `principal`'s session still stands: its user exists, is active and still has the
/// token's session epoch. One read by primary key.
pub async fn check(db: &Db, principal: &Principal) -> Result<(), Refusal> {
    let users = Users::scoped(db, Scope::staff(principal.tenant));
    match users.get(principal.user).await {
        Ok(user) if user.status != ActiveStatus::Active => Err(Refusal::Suspended),
        Ok(user) if user.session_epoch != principal.session_epoch => Err(Refusal::Revoked),
        Ok(_) => Ok(()),
        Err(clickledger_persistence::Error::NotFound) => Err(Refusal::Invalid),
        Err(err) => {
            tracing::warn!(error = %err, "could not check a session");
            Err(Refusal::Unavailable)
        }
    }
}

/// Whose sessions were ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    User(UserId),
    /// The login of this affiliate.
    Affiliate(AffiliateId),
    /// Anyone's, perhaps: re-check every session.
    Anyone,
}

impl Ended {
    fn concerns(self, principal: &Principal) -> bool {
        match self {
            Ended::User(user) => principal.user == user,
            Ended::Affiliate(affiliate) => principal.affiliate == Some(affiliate),
            Ended::Anyone => true,
        }
    }
}

/// This replica's open connections hear here whose sessions were ended.
pub struct Sessions {
    ended: broadcast::Sender<Ended>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions { ended: broadcast::Sender::new(1024) }
    }
}

impl Sessions {
    /// Subscribe before checking a session, so that nothing ended in between is missed.
    pub fn subscribe(&self) -> broadcast::Receiver<Ended> {
        self.ended.subscribe()
    }

    /// Tells this replica's open connections (other replicas hear it from the database).
    pub fn ended(&self, ended: Ended) {
        // No receiver: no open connection to tell.
        let _ = self.ended.send(ended);
    }

    /// With PostgreSQL: passes on every replica's revocations until aborted.
    pub fn spawn_listener(self: &Arc<Self>, db: Db) -> Option<JoinHandle<()>> {
        if db.backend() != clickledger_persistence::Backend::Postgres {
            return None;
        }
        let sessions = self.clone();
        Some(tokio::spawn(async move {
            loop {
                match SessionListener::connect(&db).await {
                    Ok(Some(mut listener)) => {
                        // Revocations announced before the listener was up were missed.
                        sessions.ended(Ended::Anyone);
                        while let Ok(revoked) = listener.next().await {
                            sessions.ended(match revoked {
                                Revoked::User(user) => Ended::User(user),
                                Revoked::Anyone => Ended::Anyone,
                            });
                        }
                    }
                    Ok(None) => return,
                    Err(err) => {
                        tracing::warn!(error = %err, "session revocation listener failed; reconnecting")
                    }
                }
                sessions.ended(Ended::Anyone);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }))
    }
}

/// Why an open connection's session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    Expired,
    Refused(Refusal),
}

/// Follows the session of an open connection until it ends: at `expires_at`, or when a
/// re-check (on an announcement concerning it, or every [`RECHECK_EVERY`]) refuses it. A
/// database that does not answer does not end it; the next re-check tries again.
pub async fn watch(
    db: Db,
    principal: Principal,
    expires_at: DateTime<Utc>,
    mut ended: broadcast::Receiver<Ended>,
) -> Closed {
    let left = (expires_at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    let expiry = tokio::time::sleep(left);
    tokio::pin!(expiry);
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + RECHECK_EVERY, RECHECK_EVERY);
    let mut announcements = true;
    loop {
        let recheck = tokio::select! {
            () = &mut expiry => return Closed::Expired,
            _ = every.tick() => true,
            heard = ended.recv(), if announcements => match heard {
                Ok(ended) => ended.concerns(&principal),
                // Missed some: any of them may have been this session's.
                Err(broadcast::error::RecvError::Lagged(_)) => true,
                Err(broadcast::error::RecvError::Closed) => {
                    announcements = false;
                    false
                }
            },
        };
        if recheck {
            match check(&db, &principal).await {
                Ok(()) | Err(Refusal::Unavailable) => {}
                Err(refusal) => return Closed::Refused(refusal),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clickledger_domain::ids::TenantId;
    use clickledger_domain::role::Role;

    use super::*;

    #[test]
    fn an_announcement_concerns_its_user_or_affiliate_only() {
        let affiliate = AffiliateId::new();
        let principal = Principal {
            user: UserId::new(),
            tenant: TenantId::new(),
            role: Role::Affiliate,
            affiliate: Some(affiliate),
            session_epoch: 0,
        };
        assert!(Ended::User(principal.user).concerns(&principal));
        assert!(Ended::Affiliate(affiliate).concerns(&principal));
        assert!(Ended::Anyone.concerns(&principal));
        assert!(!Ended::User(UserId::new()).concerns(&principal));
        assert!(!Ended::Affiliate(AffiliateId::new()).concerns(&principal));
    }
}
