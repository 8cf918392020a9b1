use traffik_axum::throttled;

#[throttled]
async fn bare() {}

#[throttled()]
async fn parentheses() {}

fn main() {}
