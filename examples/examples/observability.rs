//! Observability: traffik's metrics in Prometheus format and its decision spans.
//!
//! ```text
//! cargo run -p traffik-examples --example observability
//! for i in $(seq 7); do curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1:3000/; done
//! curl -s http://127.0.0.1:3000/metrics | grep traffik_
//! ```
//!
//! `GET /` allows 5 requests per 10 s per client; `GET /metrics` serves every traffik metric
//! (`traffik_decisions_total{throttle="observability-index",outcome="allowed"} 5` after the
//! loop above). `RUST_LOG=traffik::decision=trace` prints one span per decision. The address
//! comes from `TRAFFIK_ADDR` (default `127.0.0.1:3000`). The metrics are described in
//! `docs/observability.md`.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;
use traffik_examples::observability::{app, install_recorder};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("traffik=info")),
        )
        // A decision span's fields (uid, cost, backend, outcome, latency_us) when it closes.
        .with_span_events(FmtSpan::CLOSE)
        .init();
    let metrics = install_recorder()?;
    traffik_examples::serve("traffik observability", app(metrics)?).await?;
    Ok(())
}
