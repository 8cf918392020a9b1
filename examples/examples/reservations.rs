//! Charging only for work that succeeded: a report export reserves one export and its rows on
//! two throttles as one unit (all or nothing), commits when the export succeeds and lets the
//! reservation drop (returning both charges) when it fails; and a layer whose refund policy
//! returns the charges of 5xx responses and of requests whose client hung up.
//!
//! ```text
//! cargo run -p traffik-examples --example reservations
//! curl -i 'http://127.0.0.1:3000/export?rows=400'          # at most 3 exports and 1,000 rows an hour
//! curl -i 'http://127.0.0.1:3000/export?rows=400&fail=1'   # fails: nothing charged
//! curl -i http://127.0.0.1:3000/flaky                      # 500: refunded by the layer
//! ```

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::get;
use traffik_axum::prelude::*;
use traffik_axum::{HttpThrottle, RefundPolicy, ThrottleLayer, ThrottleRejection};

#[derive(Clone)]
struct Limits {
    exports: HttpThrottle,
    rows: HttpThrottle,
}

#[derive(serde::Deserialize)]
struct Export {
    rows: u64,
    #[serde(default)]
    fail: bool,
}

async fn export(
    State(limits): State<Limits>,
    Query(request): Query<Export>,
    parts: Parts,
) -> Result<String, ThrottleRejection> {
    // Both limits charged now, or neither (a 429 from the one that refuses).
    let reservation = HttpThrottle::reserve_all(
        &[(&limits.exports, 1), (&limits.rows, request.rows.max(1))],
        &parts,
    )
    .await?;
    if request.fail {
        // Dropped without a commit: both charges go back.
        return Ok("export failed: nothing was charged\n".to_owned());
    }
    reservation.commit();
    Ok(format!("exported {} rows\n", request.rows))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let backend = std::sync::Arc::new(MemoryBackend::new());
    let throttle = |uid: &str, rate: &str| {
        HttpThrottle::builder(uid, rate)
            .shared_backend(backend.clone())
            .headers(Headers::always())
    };
    let limits = Limits {
        exports: throttle("reservations-exports", "3/h").build()?,
        rows: throttle("reservations-rows", "1000/h").build()?,
    };
    let flaky = throttle("reservations-flaky", "5/min").build()?;
    let app = Router::new()
        .route("/export", get(export))
        .with_state(limits)
        .route(
            "/flaky",
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR }).layer(
                ThrottleLayer::new(flaky).refund(RefundPolicy::server_errors().on_cancel(true)),
            ),
        );

    traffik_examples::serve("reservations", app).await?;
    Ok(())
}
