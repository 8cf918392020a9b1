use traffik_axum::throttled;

#[throttled("1/s", rate = "10/min")]
async fn handler() {}

fn main() {}
