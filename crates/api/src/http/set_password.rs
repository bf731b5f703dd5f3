//! The page behind the link in invitation and password-reset e-mails: a form that sets the
//! password with the link's token (the same as the `setPassword` mutation, for people with
//! only a browser).

use clickledger_domain::password::Password;
use clickledger_notifier::mail::templates::escape;
use clickledger_persistence::mail;
use poem::http::StatusCode;
use poem::web::{Data, Form, Html, Query};
use poem::{IntoResponse, Response, handler};
use serde::Deserialize;

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
pub async fn submit(state: Data<&SharedState>, Form(input): Form<SetPasswordForm>) -> Response {
    let password = match Password::parse(&input.password) {
        Ok(password) => password,
        Err(err) => {
            let problem = err.to_string();
            return page(
                StatusCode::BAD_REQUEST,
                "Choose your password",
                &form(&input.token, Some(&problem)),
            );
        }
    };
    let Ok(password_hash) = tokio::task::spawn_blocking(move || password.hash()).await else {
        return page(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "<p>Please try again.</p>");
    };
    match mail::redeem_token(&state.db, &mail::hash_token(input.token.trim()), password_hash).await {
        Ok(_) => page(StatusCode::OK, "Your password is set", "<p>You can now sign in.</p>"),
        Err(clickledger_persistence::Error::NotFound) => page(
            StatusCode::NOT_FOUND,
            "This link no longer works",
            "<p>It was already used or has expired. Ask for a new one.</p>",
        ),
        Err(err) => {
            tracing::error!(error = %err, "setting a password failed");
            page(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "<p>Please try again.</p>")
        }
    }
}
