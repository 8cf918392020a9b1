use axum::{Router, routing::get};
use traffik_axum::throttled;

#[throttled("10/min", "100/hour", "1000/day")]
async fn search() -> &'static str {
    "results"
}

#[throttled("2/s", "20/min", uid = "suggest")]
async fn suggest() -> &'static str {
    "suggestions"
}

fn main() {
    let _: Router = Router::new()
        .route("/search", get(search))
        .route("/suggest", get(suggest));
}
