use traffik_axum::throttled;

#[throttled("1/s", cost = 2, cost = 3)]
async fn handler() {}

fn main() {}
