//! Reservations over real TCP: a handler reserves on two throttles as one, commits on success
//! and lets the reservation drop on failure (returned); a refusal is the 429.

use axum::Router;
use axum::extract::State;
use axum::http::request::Parts;
use axum::routing::get;
use traffik_axum::{HttpThrottle, ThrottleRejection};

use crate::support::serve;
use crate::throttle;

#[derive(Clone)]
struct Limits {
    exports: HttpThrottle,
    rows: HttpThrottle,
}

async fn export(
    State(limits): State<Limits>,
    parts: Parts,
) -> Result<&'static str, ThrottleRejection> {
    let reservation =
        HttpThrottle::reserve_all(&[(&limits.exports, 1), (&limits.rows, 40)], &parts).await?;
    if parts.uri.query() == Some("fail") {
        return Ok("failed"); // dropped: returned
    }
    reservation.commit();
    Ok("exported")
}

#[tokio::test]
async fn failed_work_is_returned_committed_work_counts_and_a_refusal_charges_nothing() {
    let limits = Limits {
        exports: throttle("3/min").build().unwrap(),
        rows: throttle("100/min").build().unwrap(),
    };
    let base = serve(
        Router::new()
            .route("/export", get(export))
            .with_state(limits),
    )
    .await;
    let get = |query: &'static str| {
        let url = format!("{base}/export{query}");
        async move {
            let response = reqwest::get(url).await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    for _ in 0..5 {
        assert_eq!(
            get("?fail").await,
            (200, "failed".into()),
            "returned every time"
        );
    }
    assert_eq!(get("").await.0, 200);
    assert_eq!(get("").await.0, 200);
    // 80 rows spent: a third export (40 more) would pass 100, so it is refused.
    assert_eq!(get("").await.0, 429);
    assert_eq!(get("").await.0, 429);
}
