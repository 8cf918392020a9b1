//! The observability example end to end: known traffic over TCP, then `/metrics` scraped and
//! its traffik counts checked exactly.

use std::net::SocketAddr;

use traffik_examples::observability::{INDEX_UID, app, install_recorder};

/// The value of the one series of `name` whose labels include every `labels` pair and no other
/// label than those (`0` when absent, as Prometheus reads a missing counter).
fn value(scrape: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut found = None;
    for line in scrape.lines() {
        let Some(rest) = line
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('{'))
        else {
            continue;
        };
        let Some((label_text, number)) = rest.split_once("} ") else {
            continue;
        };
        let pairs: Vec<(&str, &str)> = label_text
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .map(|(key, value)| (key, value.trim_matches('"')))
            .collect();
        if pairs.len() == labels.len() && labels.iter().all(|label| pairs.contains(label)) {
            assert!(found.is_none(), "two series match {name} {labels:?}");
            found = Some(number.trim().parse::<f64>().unwrap());
        }
    }
    found.unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seven_requests_are_five_allowed_and_two_throttled_in_the_scrape() {
    let metrics = install_recorder().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = app(metrics).unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });

    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let response = client
            .get(format!("http://{address}/"))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429]);

    let scrape = client
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let decisions = |outcome| {
        value(
            &scrape,
            "traffik_decisions_total",
            &[("throttle", INDEX_UID), ("outcome", outcome)],
        )
    };
    assert_eq!(decisions("allowed"), 5.0, "{scrape}");
    assert_eq!(decisions("throttled"), 2.0, "{scrape}");
    assert_eq!(decisions("exceeds_capacity"), 0.0);
    // The 4th request left 4 of 5 used (80 %), the 5th 5 of 5.
    assert_eq!(
        value(
            &scrape,
            "traffik_near_limit_decisions_total",
            &[("throttle", INDEX_UID)]
        ),
        2.0
    );
    // Described: the exporter prints each metric's help text and type.
    assert!(
        scrape.contains("# TYPE traffik_decisions_total counter"),
        "{scrape}"
    );
    assert!(
        scrape.contains("# HELP traffik_decisions_total"),
        "{scrape}"
    );
    // No client identity in any label: the only per-throttle label is the uid.
    assert!(!scrape.contains("127.0.0.1"), "{scrape}");
}
