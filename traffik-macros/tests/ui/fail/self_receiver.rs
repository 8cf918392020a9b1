use traffik_axum::throttled;

struct Api;

impl Api {
    #[throttled("1/s")]
    async fn handler(&self) {}
}

fn main() {}
