use traffik_axum::throttled;

#[throttled("5/fortnight")]
async fn handler() {}

fn main() {}
