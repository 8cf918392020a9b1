use traffik_axum::throttled;

#[throttled("0/min")]
async fn handler() {}

fn main() {}
