use traffik_axum::throttled;

#[throttled("1/s", uid = "has space")]
async fn handler() {}

#[throttled("1/s", uid = search)]
async fn not_a_string() {}

fn main() {}
