//! Redirects into private networks: a source answering `302 Location:
//! http://127.0.0.1:…/internal` must not get that resource fetched and
//! republished, unless the source opts in.
//!
//! The hostile source is served on a documentation address that exists
//! only inside a network namespace the test makes for itself, the private
//! resource on 127.0.0.1: real connections through the production policy,
//! no test-only setting, no traffic outside the namespace.

use crate::helpers::*;
use axum::http::{header, StatusCode};
use axum::routing::get;
use std::net::IpAddr;
use tributary::pipeline::Outcome;

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_from_a_source_into_loopback_is_refused_unless_allowed() {
    if !in_own_network_namespace(
        "redirects::a_redirect_from_a_source_into_loopback_is_refused_unless_allowed",
    ) {
        return;
    }
    let outer: IpAddr = OUTER_ADDRESS.parse().unwrap();
    let internal = FeedServer::start().await;
    internal.set(
        "/internal",
        Fixture::feed(rss_items(
            "Internal",
            &[("INTERNAL ADMIN PAGE", "https://intranet.example/admin", &[])],
        )),
    );
    let target = internal.url("/internal");
    let by_name = target.replace("127.0.0.1", "localhost");

    let listener = tokio::net::TcpListener::bind((outer, 0)).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hostile =
        axum::Router::new()
            .route(
                "/to-ip",
                get(move || async move { (StatusCode::FOUND, [(header::LOCATION, target)]) }),
            )
            .route(
                "/to-name",
                get(move || async move {
                    (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, by_name)])
                }),
            );
    tokio::spawn(async move { axum::serve(listener, hostile).await.unwrap() });

    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"hostile-ip\"\nurl = \"{base}/to-ip\"\n\n\
             [[source]]\nname = \"hostile-name\"\nurl = \"{base}/to-name\"\n"
        ),
    );
    let reports = fetch_now(&config.load()).await;
    for report in &reports {
        let Outcome::Failed(error) = &report.outcome else {
            panic!(
                "{}: expected a refusal, got {:?}",
                report.source, report.outcome
            );
        };
        assert!(
            error.contains("refused: a loopback address")
                && error.contains("allow_private_redirects"),
            "{}: {error}",
            report.source
        );
    }
    assert_eq!(reports.len(), 2);
    assert!(
        internal.requests("/internal").is_empty(),
        "the private resource was fetched"
    );

    // The refusal is the source's visible state, and nothing was published.
    let store = tributary::app::open_store(&config.load()).await.unwrap();
    let states = store.source_states().await.unwrap();
    store.close().await;
    for state in &states {
        let error = state.last_error.as_deref().unwrap_or_default();
        assert!(error.contains("refused"), "{}: {error:?}", state.name);
    }
    let app = TestApp::spawn(config.load()).await;
    let atom = app.get_text("/feed.atom").await;
    assert!(!atom.contains("INTERNAL ADMIN PAGE"), "{atom}");
    app.stop().await;

    // A source that says so may be redirected inside.
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"trusted\"\nurl = \"{base}/to-name\"\nallow_private_redirects = true\n"
        ),
    );
    let reports = fetch_now(&config.load()).await;
    assert!(
        matches!(reports[0].outcome, Outcome::Ingested { entries: 1, .. }),
        "{:?}",
        reports[0].outcome
    );
    assert_eq!(internal.requests("/internal").len(), 1);
}
