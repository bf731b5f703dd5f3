//! The audit log and session epochs at the repository level, on a real database (SQLite
//! always, PostgreSQL when `TEST_DATABASE_URL` is set).

use clickledger_domain::audit::{AuditAction, AuditSubject};
use clickledger_domain::role::Role;
use clickledger_domain::status::ActiveStatus;
use clickledger_persistence::audit::{Actor, AuditLog};
use clickledger_persistence::directory::Directory;
use clickledger_persistence::repo::{Affiliates, ApiKeys, NewAffiliate, NewApiKey, Users};
use clickledger_persistence::test_support::{fresh_db, tenant};
use clickledger_persistence::{Db, Error, PageRequest, Scope, Viewer};

async fn owner_of(db: &Db, scope: Scope) -> clickledger_persistence::records::User {
    let page = Users::scoped(db, scope).staff(PageRequest::default()).await.unwrap();
    page.items.into_iter().find(|u| u.role == Role::Owner).expect("the tenant's owner")
}

async fn actions(db: &Db, scope: Scope) -> Vec<AuditAction> {
    let page = AuditLog::scoped(db, scope).list(PageRequest { after: None, first: Some(100) }).await.unwrap();
    page.items.iter().map(|e| e.action).collect()
}

#[tokio::test]
async fn changes_are_logged_with_their_actor_and_refused_or_empty_ones_are_not() {
    let t = fresh_db("audit").await;
    let (a, b) = (tenant(&t.db, "alpha").await, tenant(&t.db, "beta").await);
    let staff = Scope::staff(a.id);
    let owner = owner_of(&t.db, staff).await;
    let me = Actor::User(owner.id);
    let users = Users::scoped(&t.db, staff);

    let manager =
        users.create_staff("m@alpha.test".into(), "M".into(), "x".into(), Role::Manager, me).await.unwrap();
    assert_eq!(manager.session_epoch, 0);
    let new_key = NewApiKey {
        name: "k".into(),
        prefix: "ck_abc".into(),
        secret_hash: "hash".into(),
        signing_secret: "clsig_x".into(),
        postbacks_per_minute: None,
        signature_required: false,
        dialect: Default::default(),
        custom_dialect: None,
    };
    let key = ApiKeys::scoped(&t.db, staff).create(new_key, me).await.unwrap();
    ApiKeys::scoped(&t.db, staff).revoke(key.id, me).await.unwrap();
    // Revoking again changes nothing, and logs nothing.
    ApiKeys::scoped(&t.db, staff).revoke(key.id, me).await.unwrap();

    // Refused: suspending oneself, a repeat, an affiliate's login, another tenant's user.
    let refused = users.set_status(owner.id, ActiveStatus::Suspended, me).await;
    assert!(matches!(refused, Err(Error::Invalid(_))), "{refused:?}");
    users.set_status(manager.id, ActiveStatus::Suspended, me).await.unwrap();
    let suspended = users.set_status(manager.id, ActiveStatus::Suspended, me).await.unwrap();
    assert_eq!(suspended.status, ActiveStatus::Suspended);
    assert_eq!(suspended.session_epoch, 1, "a suspension ends the sessions once");
    let other = owner_of(&t.db, Scope::staff(b.id)).await;
    assert!(matches!(users.set_status(other.id, ActiveStatus::Suspended, me).await, Err(Error::NotFound)));
    let partner = Affiliates::scoped(&t.db, staff)
        .create(NewAffiliate {
            name: "P".into(),
            email: "p@partner.test".into(),
            parent_id: None,
            password_hash: Some("x".into()),
        })
        .await
        .unwrap();
    let partner_scope = Scope::new(a.id, Viewer::Affiliate(partner.id));
    let partner_login =
        Directory::new(&t.db).find_login("alpha", "p@partner.test").await.unwrap().expect("its login").user;
    let refused = users.set_status(partner_login.id, ActiveStatus::Suspended, me).await;
    assert!(matches!(refused, Err(Error::Invalid(_))), "{refused:?}");
    // Suspending the affiliate ends its login's sessions; reactivating does not restore them.
    Affiliates::scoped(&t.db, staff).set_status(partner.id, ActiveStatus::Suspended, me).await.unwrap();
    Affiliates::scoped(&t.db, staff).set_status(partner.id, ActiveStatus::Active, me).await.unwrap();
    let partner_login = users.get(partner_login.id).await.unwrap();
    assert_eq!((partner_login.status, partner_login.session_epoch), (ActiveStatus::Active, 1));
    users.set_status(manager.id, ActiveStatus::Active, Actor::Host).await.unwrap();

    let log = AuditLog::scoped(&t.db, staff).list(PageRequest::default()).await.unwrap();
    let seen: Vec<_> = log.items.iter().map(|e| (e.action, e.subject_type, e.subject_id.clone())).collect();
    assert_eq!(
        seen,
        vec![
            (AuditAction::UserCreated, AuditSubject::User, manager.id.to_string()),
            (AuditAction::ApiKeyCreated, AuditSubject::ApiKey, key.id.to_string()),
            (AuditAction::ApiKeyRevoked, AuditSubject::ApiKey, key.id.to_string()),
            (AuditAction::UserSuspended, AuditSubject::User, manager.id.to_string()),
            (AuditAction::AffiliateSuspended, AuditSubject::Affiliate, partner.id.to_string()),
            (AuditAction::AffiliateActivated, AuditSubject::Affiliate, partner.id.to_string()),
            (AuditAction::UserActivated, AuditSubject::User, manager.id.to_string()),
        ]
    );
    let by_owner = Some((owner.id, "owner@alpha.test".to_owned()));
    assert!(log.items[..6].iter().all(|e| e.actor == by_owner), "{:?}", log.items);
    assert_eq!(log.items[6].actor, None, "the host has no user");
    assert_eq!(
        log.items[1].details,
        serde_json::json!({ "name": "k", "prefix": "ck_abc", "dialect": "clickledger" })
    );
    assert_eq!(log.items[3].details["to"], "SUSPENDED");
    assert!(log.items.windows(2).all(|w| w[0].id < w[1].id), "oldest first");

    // Keyset pages, and nothing of A for B or for A's affiliate.
    let first =
        AuditLog::scoped(&t.db, staff).list(PageRequest { after: None, first: Some(3) }).await.unwrap();
    assert!(first.has_next);
    let after = Some(first.items[2].id.uuid());
    let rest = AuditLog::scoped(&t.db, staff).list(PageRequest { after, first: Some(100) }).await.unwrap();
    assert_eq!(first.items.len() + rest.items.len(), 7);
    assert!(!rest.has_next);
    assert!(actions(&t.db, Scope::staff(b.id)).await.is_empty());
    assert!(matches!(
        AuditLog::scoped(&t.db, partner_scope).list(PageRequest::default()).await,
        Err(Error::Forbidden)
    ));
}
