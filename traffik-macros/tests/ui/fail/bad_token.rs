use traffik_axum::throttled;

#[throttled(42)]
async fn handler() {}

fn main() {}
