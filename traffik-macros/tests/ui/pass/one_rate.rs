use axum::{Router, routing::get};
use traffik_axum::throttled;

#[throttled("100/min")]
async fn list_items() -> &'static str {
    "items"
}

#[throttled("20 per 2 mins")]
pub async fn public_handler() -> String {
    String::new()
}

fn main() {
    let _: Router = Router::new()
        .route("/items", get(list_items))
        .route("/public", get(public_handler));
}
