use traffik_axum::throttled;

#[throttled("1/s")]
struct Handler;

fn main() {}
