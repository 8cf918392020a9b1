use traffik_axum::throttled;

#[throttled("1/s", min_wait = 500)]
async fn no_unit() {}

#[throttled("1/s", min_wait = "soon")]
async fn not_a_duration() {}

fn main() {}
