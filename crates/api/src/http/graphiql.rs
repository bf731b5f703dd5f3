//! GraphiQL, served from the binary (see `assets/graphiql/README.md`): no CDN, so it works
//! offline and behind strict egress rules. The page passes the *Headers* tab's
//! `Authorization` to subscriptions too, in `connection_init`, so a subscription tried in
//! GraphiQL runs as the signed-in user, like the queries beside it.

use poem::http::{StatusCode, header};
use poem::web::{Html, Path};
use poem::{IntoResponse, Response, handler};

/// Every asset, by the name in its URL. Names carry the version, so they are cached for good.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "graphiql-3.8.3.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql-3.8.3.min.js"),
    ),
    (
        "graphiql-3.8.3.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql-3.8.3.min.css"),
    ),
    (
        "react-18.3.1.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react-18.3.1.production.min.js"),
    ),
    (
        "react-dom-18.3.1.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react-dom-18.3.1.production.min.js"),
    ),
];

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Clickledger GraphiQL</title>
  <link rel="stylesheet" href="/graphql/assets/graphiql-3.8.3.min.css">
  <style>body { margin: 0; } #graphiql { height: 100vh; }</style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script src="/graphql/assets/react-18.3.1.production.min.js"></script>
  <script src="/graphql/assets/react-dom-18.3.1.production.min.js"></script>
  <script src="/graphql/assets/graphiql-3.8.3.min.js"></script>
  <script>
    const endpoint = new URL('/graphql', location.href).href;
    const subscriptionUrl = new URL('/graphql/ws', location.href).href.replace(/^http/, 'ws');
    // One fetcher per Authorization value of the Headers tab: queries send the header as
    // usual, and subscriptions (over /graphql/ws) send it in connection_init.
    const fetchers = new Map();
    function fetcher(params, options) {
      const headers = (options && options.headers) || {};
      const authorization = headers.Authorization || headers.authorization || '';
      let forAuthorization = fetchers.get(authorization);
      if (!forAuthorization) {
        forAuthorization = GraphiQL.createFetcher({
          url: endpoint,
          subscriptionUrl,
          wsConnectionParams: authorization ? { Authorization: authorization } : {},
        });
        fetchers.set(authorization, forAuthorization);
      }
      return forAuthorization(params, options);
    }
    ReactDOM.createRoot(document.getElementById('graphiql')).render(
      React.createElement(GraphiQL, {
        fetcher,
        shouldPersistHeaders: true,
      }),
    );
  </script>
</body>
</html>
"#;

pub fn page() -> Html<&'static str> {
    Html(PAGE)
}

#[handler]
pub fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(asset, _, _)| *asset == name) {
        Some((_, content_type, bytes)) => Response::builder()
            .content_type(*content_type)
            .header(header::CACHE_CONTROL, "public, max-age=31536000, immutable")
            .body(*bytes),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
