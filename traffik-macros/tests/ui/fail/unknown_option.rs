use traffik_axum::throttled;

#[throttled("1/s", coast = 2)]
async fn close() {}

#[throttled("1/s", speed = 2)]
async fn far() {}

fn main() {}
