//! Host-side commands for the operator of the server (whoever can reach its database):
//! create a tenant when sign-up is disabled, and set a new password for a user who lost
//! theirs (the demo's one-time password included). Each prints the password it set, once.

use clickledger_domain::password::Password;
use clickledger_domain::validate;
use clickledger_persistence::Db;
use clickledger_persistence::directory::{Directory, NewTenant};

use crate::cli::anyhow_like;
use crate::demo::random_password;

pub struct NewTenantArgs<'a> {
    pub slug: &'a str,
    pub owner_email: &'a str,
    pub name: Option<&'a str>,
}

pub async fn create_tenant(db: &Db, args: NewTenantArgs<'_>) -> anyhow_like::Result<String> {
    let slug = validate::slug(args.slug, "slug")?;
    let owner_email = validate::email(args.owner_email, "owner-email")?;
    let name = validate::name(args.name.unwrap_or(&slug), "name")?;
    let password = random_password();
    let hash = Password::parse(&password)?.hash();
    let created = Directory::new(db)
        .sign_up(NewTenant {
            name,
            slug: slug.clone(),
            owner_email: owner_email.clone(),
            owner_name: owner_email.clone(),
            owner_password_hash: hash,
        })
        .await;
    let (tenant, _) = match created {
        Ok(created) => created,
        Err(clickledger_persistence::Error::Conflict { .. }) => {
            return Err(format!("a tenant with slug `{slug}` already exists").into());
        }
        Err(err) => return Err(err.into()),
    };
    Ok(format!(
        "Tenant `{slug}` created ({}). Its owner signs in with (shown once):\n  tenant    {slug}\n  e-mail    {owner_email}\n  password  {password}\n",
        tenant.id
    ))
}

pub async fn reset_password(db: &Db, tenant: &str, email: &str) -> anyhow_like::Result<String> {
    let slug = tenant.trim().to_lowercase();
    let email = email.trim().to_lowercase();
    let password = random_password();
    let hash = Password::parse(&password)?.hash();
    match Directory::new(db).reset_password(&slug, &email, hash).await {
        Ok(_) => Ok(format!(
            "Password of {email} in tenant `{slug}` reset; open invitation and reset links no longer work. The new password (shown once):\n  password  {password}\n"
        )),
        Err(clickledger_persistence::Error::NotFound) => {
            Err(format!("no user {email} in a tenant `{slug}`").into())
        }
        Err(err) => Err(err.into()),
    }
}
