use traffik_axum::throttled;

#[throttled("1/s")]
fn handler() {}

fn main() {}
