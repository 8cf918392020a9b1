use traffik_axum::throttled;

#[throttled("100 a minute")]
async fn handler() {}

fn main() {}
