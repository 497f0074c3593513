//! The web UI (`/graph`, `/alerts`, `/rules`, `/targets`, `/dashboards`): plain HTML, CSS and
//! JavaScript modules from `nightlight/ui/`, compiled into the binary. Nothing is fetched from
//! anywhere else, which the Content-Security-Policy also enforces.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

const INDEX: &str = include_str!("../ui/index.html");

/// (name, content type, content)
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/app.js"),
    ),
    (
        "chart.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/chart.js"),
    ),
    (
        "dashboards.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/dashboards.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../ui/app.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../ui/favicon.svg"),
    ),
];

const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
    object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let page = get(|| async {
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            INDEX,
        )
    });
    Router::new()
        .route("/", get(|| async { Redirect::to("/graph") }))
        .route("/graph", page.clone())
        .route("/alerts", page.clone())
        .route("/rules", page.clone())
        .route("/targets", page.clone())
        .route("/dashboards", page.clone())
        .route("/dashboards/{id}", page)
        .route("/ui/{name}", get(asset))
        .route(
            "/favicon.ico",
            get(|| async { Redirect::to("/ui/favicon.svg") }),
        )
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                // Revalidated on every load: a new binary serves new files at once.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, format!("no UI file {name:?}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_loads_is_embedded() {
        for reference in ["/ui/app.js", "/ui/app.css", "/ui/favicon.svg"] {
            assert!(INDEX.contains(reference), "{reference}");
        }
        for (name, _, body) in ASSETS {
            assert!(!body.is_empty(), "{name}");
        }
        // Module imports resolve to embedded files.
        for (_, _, body) in ASSETS {
            for line in body.lines().filter(|line| line.starts_with("import ")) {
                let file = line.rsplit("\"./").next().unwrap().trim_end_matches("\";");
                assert!(ASSETS.iter().any(|(name, _, _)| *name == file), "{line}");
            }
        }
    }
}
