use std::sync::LazyLock;

use axum::{Router, extract::State, routing::get};
use traffik_axum::prelude::*;
use traffik_axum::{ThrottlePolicy, throttle_policy, throttled};

static BURST: LazyLock<Result<HttpThrottle, ConfigError>> = LazyLock::new(|| {
    HttpThrottle::builder("reuse-burst", "2/s").build()
});

static SUSTAINED: LazyLock<HttpThrottle> = LazyLock::new(|| {
    HttpThrottle::builder("reuse-sustained", "20/min").build().expect("a valid throttle")
});

throttle_policy! {
    Hourly = HttpThrottle::builder("reuse-hourly", "100/hour").build();
}

mod policies {
    pub(crate) static DAILY: std::sync::LazyLock<Result<traffik_axum::HttpThrottle, traffik_axum::prelude::ConfigError>> =
        std::sync::LazyLock::new(|| traffik_axum::HttpThrottle::builder("reuse-daily", "1000/day").build());
}

#[derive(Clone)]
struct AppState {
    search: HttpThrottle,
}

struct FromState;
impl ThrottlePolicy<AppState> for FromState {
    fn throttle(state: &AppState) -> Result<&HttpThrottle, &ConfigError> {
        Ok(&state.search)
    }
}

#[throttled(BURST, SUSTAINED)]
async fn search() -> &'static str {
    "results"
}

#[throttled(BURST, Hourly, policies::DAILY, FromState, "5/s")]
async fn mixed(State(_): State<AppState>) -> &'static str {
    "mixed"
}

fn main() {
    let state = AppState {
        search: HttpThrottle::builder("reuse-state", "1/s").build().unwrap(),
    };
    let _: Router = Router::new()
        .route("/search", get(search))
        .route("/mixed", get(mixed))
        .with_state(state);
}
