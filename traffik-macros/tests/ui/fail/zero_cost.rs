use traffik_axum::throttled;

#[throttled("1/s", cost = 0)]
async fn handler() {}

fn main() {}
