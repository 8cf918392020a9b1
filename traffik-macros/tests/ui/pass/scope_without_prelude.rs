// The HTTP builder settings the attribute writes (`scope`) need no import at the use site.
use axum::{Router, routing::get};
use traffik_axum::throttled;

#[throttled("5/min", scope = shared)]
async fn shared() -> &'static str {
    "shared"
}

fn main() {
    let _app: Router = Router::new().route("/", get(shared));
}
