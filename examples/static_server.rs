//! The floor of serving `/metrics`: the same axum server returning a static
//! byte buffer of the same size, with the same headers and nothing else.
//! `benches/run` loads it with wrk next to the exporter.
//!
//! `static_server FILE ADDR` serves FILE's bytes at http://ADDR/metrics;
//! `static_server FILE ADDR gzip` serves them as `Content-Encoding: gzip`
//! (FILE then holds a gzip answer), the floor of a gzip scrape.

use axum::http::header;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let file = args.next().expect("usage: static_server FILE ADDR");
    let addr = args.next().expect("usage: static_server FILE ADDR");
    let encoding = if args.next().as_deref() == Some("gzip") {
        "gzip"
    } else {
        "identity"
    };
    let body = bytes::Bytes::from(std::fs::read(&file).expect("readable file"));
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let body = body.clone();
            async move {
                (
                    [
                        (header::CONTENT_TYPE, cmu_exporter::incoming::TEXT_FORMAT),
                        (header::CONTENT_ENCODING, encoding),
                    ],
                    body,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .expect("free address");
    axum::serve(listener, app).await.expect("serves");
}
