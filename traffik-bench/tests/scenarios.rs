//! The harness against tiny in-process servers with known limits: every scenario returns the
//! counts a correct limiter gives, and a server without a limit is caught over-admitting.

use std::net::SocketAddr;
use std::time::Duration;

use traffik_bench::load::{self, LoadOptions, Tally};
use traffik_bench::report::Measurement;
use traffik_bench::server::{self, ServerConfig};
use traffik_bench::{BenchError, Scenario, Target};

async fn serve(target: Target, scenario: Scenario) -> SocketAddr {
    server::spawn(&ServerConfig {
        target,
        rate: scenario.rate().to_owned(),
        redis_url: None,
    })
    .await
    .expect("an in-process server")
}

fn options(prefix: &str) -> LoadOptions {
    LoadOptions {
        concurrency: 16,
        duration: Duration::from_millis(300),
        identity_prefix: prefix.to_owned(),
    }
}

async fn run(target: Target, scenario: Scenario) -> Tally {
    let address = serve(target, scenario).await;
    load::run(scenario, address, &options("test"))
        .await
        .expect("the scenario runs")
}

async fn assert_exact(target: Target, scenario: Scenario) {
    let tally = run(target, scenario).await;
    let expected = scenario.expected(tally.sent);
    assert_eq!(
        (tally.allowed, tally.throttled, tally.errors),
        (expected.allowed, expected.throttled, 0),
        "{scenario} against {target}: {:?}",
        tally.first_error
    );
    assert_eq!(tally.latencies_ns.len() as u64, tally.sent);
    assert!(Measurement::new(tally, Duration::ZERO).is_exact(expected));
}

#[tokio::test]
async fn sequential_scenarios_count_exactly() {
    for scenario in [Scenario::BelowLimit, Scenario::AtLimit, Scenario::OverLimit] {
        assert_exact(Target::TraffikExtractor, scenario).await;
        assert_exact(Target::TraffikLayer, scenario).await;
    }
    let over = run(Target::TraffikExtractor, Scenario::OverLimit).await;
    assert_eq!((over.sent, over.allowed, over.throttled), (200, 50, 150));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_scenarios_count_exactly() {
    for scenario in [Scenario::HotKey, Scenario::ManyKeys] {
        assert_exact(Target::TraffikExtractor, scenario).await;
        assert_exact(Target::TraffikLayer, scenario).await;
    }
    let many = run(Target::TraffikLayer, Scenario::ManyKeys).await;
    assert_eq!((many.sent, many.allowed, many.throttled), (1000, 600, 400));
}

#[tokio::test]
async fn window_boundary_admits_a_full_window_per_wave() {
    let tally = run(Target::TraffikExtractor, Scenario::WindowBoundary).await;
    assert_eq!((tally.sent, tally.allowed, tally.throttled), (63, 60, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sustained_never_refuses_and_is_bounded_by_the_duration() {
    let started = std::time::Instant::now();
    let tally = run(Target::TraffikLayer, Scenario::Sustained).await;
    assert!(tally.allowed > 0);
    assert_eq!((tally.throttled, tally.errors), (0, 0));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(tally.per_second() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_scenarios_count_exactly() {
    for scenario in [
        Scenario::WsBelowLimit,
        Scenario::WsOverLimit,
        Scenario::WsBurst,
        Scenario::WsConcurrent,
        Scenario::WsSustained10,
    ] {
        assert_exact(Target::WsTraffik, scenario).await;
    }
    let burst = run(Target::WsTraffik, Scenario::WsBurst).await;
    assert_eq!((burst.sent, burst.allowed, burst.throttled), (100, 20, 80));
}

#[tokio::test]
async fn a_server_without_a_limit_is_reported_as_over_admitting() {
    let tally = run(Target::Axum, Scenario::OverLimit).await;
    assert_eq!((tally.allowed, tally.throttled), (200, 0));
    let expected = Scenario::OverLimit.expected(tally.sent);
    assert!(!Measurement::new(tally, Duration::ZERO).is_exact(expected));

    let echo = run(Target::WsAxum, Scenario::WsOverLimit).await;
    assert_eq!((echo.allowed, echo.throttled), (150, 0));
}

#[tokio::test]
async fn traffic_goes_only_to_loopback() {
    let outside: SocketAddr = "192.0.2.1:80".parse().expect("an address");
    let error = load::run(Scenario::AtLimit, outside, &options("test"))
        .await
        .expect_err("not loopback");
    assert!(matches!(error, BenchError::Usage(_)), "{error}");
    assert!(error.to_string().contains("loopback"), "{error}");
}

#[tokio::test]
async fn a_server_that_is_not_there_is_a_clear_error() {
    let port = traffik_bench::process::free_port().expect("a port");
    let nowhere = SocketAddr::from(([127, 0, 0, 1], port));
    for scenario in [Scenario::AtLimit, Scenario::WsBurst] {
        let error = load::run(scenario, nowhere, &options("test"))
            .await
            .expect_err("nothing listens");
        assert!(matches!(error, BenchError::Load(_)), "{error}");
        assert!(error.to_string().contains(&port.to_string()), "{error}");
    }
}

#[tokio::test]
async fn python_targets_are_not_served_in_process() {
    let error = server::spawn(&ServerConfig {
        target: Target::Python,
        rate: "1/s".to_owned(),
        redis_url: None,
    })
    .await
    .expect_err("a Python target");
    assert!(error.to_string().contains("Python"), "{error}");
    let bad_rate = server::spawn(&ServerConfig {
        target: Target::TraffikExtractor,
        rate: "5/fortnight".to_owned(),
        redis_url: None,
    })
    .await
    .expect_err("a bad rate");
    assert!(
        bad_rate.to_string().contains("traffik-extractor"),
        "{bad_rate}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_targets_serve_on_a_real_redis() {
    let redis = traffik_tests::redis_server::RedisServer::start();
    for target in [Target::TraffikRedis, Target::TowerRateLimitRedis] {
        let address = server::spawn(&ServerConfig {
            target,
            rate: Scenario::Sustained.rate().to_owned(),
            redis_url: Some(redis.url()),
        })
        .await
        .unwrap_or_else(|error| panic!("{target}: {error}"));
        let tally = load::run(Scenario::Sustained, address, &options("redis"))
            .await
            .expect("the scenario runs");
        assert!(tally.allowed > 0, "{target}");
        assert_eq!(
            (tally.throttled, tally.errors),
            (0, 0),
            "{target}: {:?}",
            tally.first_error
        );
        let error = server::spawn(&ServerConfig {
            target,
            rate: "1/s".to_owned(),
            redis_url: None,
        })
        .await
        .expect_err("no Redis URL");
        assert!(error.to_string().contains("Redis URL"), "{target}: {error}");
    }
}
