use traffik_axum::throttled;

#[throttled("unlimited")]
async fn handler() {}

fn main() {}
