use traffik_axum::throttled;

#[throttled("1/s", scope = everywhere)]
async fn handler() {}

fn main() {}
