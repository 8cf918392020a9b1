use std::sync::LazyLock;
use traffik_axum::prelude::*;
use traffik_axum::throttled;

static BURST: LazyLock<Result<HttpThrottle, ConfigError>> =
    LazyLock::new(|| HttpThrottle::builder("fail-burst", "2/s").build());

#[throttled(BURST, cost = 2)]
async fn handler() {}

fn main() {}
