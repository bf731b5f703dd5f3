//! The page behind the link in invitation and password-reset e-mails: a form that sets the
//! password with the link's token (the same as the `setPassword` mutation, for people with
//! only a browser).

use clickledger_notifier::mail::templates::{SignIn, escape};
use clickledger_persistence::directory::Directory;
use poem::http::StatusCode;
use poem::web::{Data, Form, Html, Query};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use crate::Error;
use crate::auth::password_token;
use crate::state::SharedState;

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
pub struct SetPasswordForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n{body}\n</body></html>\n",
        title = escape(title)
    );
    (status, Html(html)).into_response()
}

fn form(token: &str, problem: Option<&str>) -> String {
    let problem = problem.map(|p| format!("<p role=\"alert\">{}</p>\n", escape(p))).unwrap_or_default();
    format!(
        "{problem}<form method=\"post\" action=\"/set-password\">\n<input type=\"hidden\" name=\"token\" value=\"{}\">\n<label>New password (at least 8 characters) <input type=\"password\" name=\"password\" minlength=\"8\" required autocomplete=\"new-password\"></label>\n<button type=\"submit\">Set password</button>\n</form>",
        escape(token)
    )
}

#[handler]
pub fn show(Query(query): Query<TokenQuery>) -> Response {
    page(StatusCode::OK, "Choose your password", &form(&query.token, None))
}

#[handler]
pub async fn submit(
    req: &Request,
    state: Data<&SharedState>,
    Form(input): Form<SetPasswordForm>,
) -> Response {
    let client = super::client_ip(req);
    match password_token::redeem(&state, &input.token, &input.password, client).await {
        Ok(user) => {
            let slug = match Directory::new(&state.db).tenant(user.tenant_id).await {
                Ok(tenant) => tenant.slug,
                Err(err) => {
                    tracing::error!(error = %err, "reading the tenant of a new password failed");
                    return page(StatusCode::OK, "Your password is set", "<p>You can now sign in.</p>");
                }
            };
            let sign_in_url = super::sign_in_url(&state.public_url);
            let sign_in = SignIn { tenant_slug: &slug, email: &user.email, url: &sign_in_url };
            let body = format!("<p>{}</p>", escape(&sign_in.sentence()));
            page(StatusCode::OK, "Your password is set", &body)
        }
        Err(Error::BadInput { message, .. }) => page(
            StatusCode::BAD_REQUEST,
            "Choose your password",
            &form(&input.token, Some(&format!("password: {message}"))),
        ),
        Err(Error::NotFound) => page(
            StatusCode::NOT_FOUND,
            "This link no longer works",
            "<p>It was already used or has expired. Ask for a new one.</p>",
        ),
        Err(Error::RateLimited) => page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            "<p>Please wait a minute and try again.</p>",
        ),
        Err(err) => {
            tracing::error!(error = %err, "setting a password failed");
            page(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "<p>Please try again.</p>")
        }
    }
}
