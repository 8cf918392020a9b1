//! The Memcached backend on real `memcached` processes: the backend contract with the
//! differential check against the pure transitions, 64 tasks on one key, three app instances
//! sharing one memcached, a killed and restarted server, a three-server ring, and bad input.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use http::StatusCode;
use tokio::task::JoinSet;
use traffik_axum::prelude::*;
use traffik_axum::{HttpThrottle, ThrottleLayer};
use traffik_core::backend::{Backend, BackendError, BreakerState, failover};
use traffik_core::strategy::TokenBucket;
use traffik_core::throttle::HitOptions;
use traffik_core::{ManualClock, MemcachedBackend, MemoryBackend, Throttle, ThrottleError};
use traffik_tests::contract;
use traffik_tests::memcached_server::MemcachedServer;
use traffik_tests::{every_strategy, throttle, with_strategy};

mod support;

fn backend(urls: &[String], namespace: &str) -> MemcachedBackend {
    MemcachedBackend::builder(urls.iter().cloned())
        .namespace(namespace)
        .command_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(500))
        .build()
        .expect("a valid backend")
}

fn on(backend: &MemcachedBackend, uid: &str, rate: &str, policy: OnError) -> Throttle {
    Throttle::builder(uid, rate)
        .strategy(TokenBucket::new())
        .backend(backend.clone())
        .on_error(policy)
        .registry(&ThrottleRegistry::new())
        .build()
        .expect("a valid throttle")
}

#[tokio::test]
async fn every_strategy_decides_what_its_pure_transition_decides() {
    let server = MemcachedServer::start();
    let clock = ManualClock::new(1_700_000_000_000);
    let backend: Arc<dyn Backend> = Arc::new(backend(&[server.url()], "diff"));
    contract::strategies_match_their_pure_transitions(Arc::clone(&backend), &clock).await;
    contract::reference_cost_sequence(Arc::clone(&backend), &clock).await;
    contract::reads_consume_nothing(Arc::clone(&backend), &clock).await;
    contract::batches_match_the_in_memory_backend(Arc::clone(&backend), &clock).await;
    contract::refunds_match_their_pure_transitions(Arc::clone(&backend), &clock).await;
    contract::on_rate_clients_are_never_refused(Arc::clone(&backend), &clock).await;
    contract::strategies_match_at_the_edges_of_exact_ranges(Arc::clone(&backend), &clock, false)
        .await;
    let nested = Arc::new(self::backend(&[server.url()], "diff:child"));
    contract::reset_forgets_the_namespace(backend, nested, &clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_tasks_on_one_key_admit_exactly_the_limit() {
    let server = MemcachedServer::start();
    let clock = ManualClock::new(1_700_000_000_000);
    let memcached = backend(&[server.url()], "burst");
    let backend: Arc<dyn Backend> = Arc::new(memcached.clone());
    for (name, configure) in every_strategy() {
        for round in 0..2 {
            let throttle = throttle(
                &format!("burst-{round}-{name}"),
                "10/min",
                configure,
                Arc::clone(&backend),
                &clock,
            );
            let mut tasks = JoinSet::new();
            for _ in 0..64 {
                let throttle = throttle.clone();
                tasks.spawn(async move { throttle.hit("hot-key").await });
            }
            let mut admitted = 0;
            while let Some(decision) = tasks.join_next().await {
                let decision = decision
                    .unwrap()
                    .unwrap_or_else(|error| panic!("{name}: {error}"));
                admitted += usize::from(decision.is_allowed());
            }
            assert_eq!(admitted, 10, "{name}, round {round}");
        }
    }
    assert!(
        memcached.lost_races() > 0,
        "64 tasks on one key raced, and the losers decided again"
    );
}

async fn instance(url: &str, strategy: &str, round: usize) -> String {
    let backend = MemcachedBackend::builder([url])
        .namespace("fleet")
        .command_timeout(Duration::from_secs(2))
        .build()
        .expect("a valid backend");
    let builder = HttpThrottle::builder(format!("fleet-{strategy}-{round}"), "10/hour")
        .backend(backend)
        .on_error(OnError::Raise)
        .registry(&ThrottleRegistry::new())
        .identifier(Identifier::new(|_| Identity::from("one-hot-key")));
    let throttle = with_strategy!(builder, strategy)
        .build()
        .expect("a valid throttle");
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(ThrottleLayer::new(throttle));
    support::serve(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_sharing_one_memcached_admit_exactly_the_limit() {
    let server = MemcachedServer::start();
    let client = reqwest::Client::new();
    for (strategy, _) in every_strategy() {
        let mut urls = Vec::new();
        for _ in 0..3 {
            urls.push(instance(&server.url(), strategy, 0).await);
        }
        let mut requests = JoinSet::new();
        for i in 0..64 {
            let (client, url) = (client.clone(), urls[i % 3].clone());
            requests.spawn(async move { client.get(url).send().await.unwrap().status() });
        }
        let mut admitted = 0;
        while let Some(status) = requests.join_next().await {
            match status.unwrap() {
                StatusCode::OK => admitted += 1,
                StatusCode::TOO_MANY_REQUESTS => {}
                other => panic!("{strategy}: unexpected {other}"),
            }
        }
        assert_eq!(
            admitted, 10,
            "{strategy}: over- or under-admission across 3 instances"
        );
    }
}

#[tokio::test]
async fn a_killed_memcached_gives_typed_errors_then_recovers() {
    let mut server = MemcachedServer::start();
    let backend = backend(&[server.url()], "outage");
    let raising = on(&backend, "outage", "100/min", OnError::Raise);
    assert!(raising.hit("a").await.unwrap().is_allowed());
    assert!(backend.ready().await.is_ok());
    server.kill();
    assert!(backend.ready().await.unwrap_err().is_outage());
    for _ in 0..3 {
        let started = Instant::now();
        match raising.hit("a").await.unwrap_err() {
            ThrottleError::Backend { source, .. } => assert!(
                matches!(
                    source,
                    BackendError::Unavailable { .. } | BackendError::Timeout { .. }
                ),
                "{source}"
            ),
            other => panic!("expected a backend error, got {other}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    let failing_open = on(&backend, "outage-open", "100/min", OnError::Allow);
    assert!(failing_open.hit("a").await.unwrap().is_skipped());
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(decision) = raising.hit("a").await {
            assert!(decision.is_allowed());
            assert!(backend.ready().await.is_ok(), "ready again");
            break;
        }
        assert!(Instant::now() < deadline, "never reconnected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Inside the resilience wrappers: memcached killed behind a breaker falls back to memory at
/// once, and takes the decisions back after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_memcached_behind_a_failover_falls_back_then_takes_the_decisions_back() {
    let mut server = MemcachedServer::start();
    let fallback = MemoryBackend::builder()
        .namespace("failover")
        .build()
        .unwrap();
    let backend = failover(backend(&[server.url()], "failover"), fallback)
        .max_retries(0)
        .breaker(|breaker| {
            breaker
                .failure_threshold(3)
                .recovery_timeout(Duration::from_millis(300))
                .success_threshold(1)
        })
        .build()
        .unwrap();
    let breaker = backend.primary().handle();
    let throttle = Throttle::builder("failover", "5/min")
        .registry(&ThrottleRegistry::new())
        .backend(backend)
        .build()
        .unwrap();
    assert!(throttle.hit("alice").await.unwrap().is_allowed());

    server.kill();
    for _ in 0..3 {
        assert!(
            throttle.hit("opener").await.unwrap().is_allowed(),
            "on the fallback"
        );
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    let mut allowed = 0;
    for _ in 0..8 {
        allowed += usize::from(throttle.hit("fallback-client").await.unwrap().is_allowed());
    }
    assert_eq!(allowed, 5, "the fallback enforces its own limit");

    server.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    while breaker.state() != BreakerState::Closed {
        assert!(Instant::now() < deadline, "the breaker never closed");
        throttle.hit("prober").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The fallback refuses this client; the restarted (empty) memcached admits it.
    let decision = throttle.hit("fallback-client").await.unwrap();
    assert!(decision.is_allowed(), "decided on memcached again");
    assert_eq!(decision.remaining, 4);
}

#[tokio::test]
async fn a_ring_of_three_spreads_keys_and_survives_a_lost_server() {
    let mut servers = [
        MemcachedServer::start(),
        MemcachedServer::start(),
        MemcachedServer::start(),
    ];
    let urls: Vec<String> = servers.iter().map(MemcachedServer::url).collect();
    let backend = backend(&urls, "ring");
    let throttle = on(&backend, "ring", "5/min", OnError::Raise);
    for client in 0..300 {
        assert!(
            throttle
                .hit(&format!("client-{client}"))
                .await
                .unwrap()
                .is_allowed()
        );
    }
    for server in &servers {
        // 300 clients over 3 servers, plus the generation key on one of them.
        let items = server.items();
        assert!((60..=160).contains(&items), "{items} items on one server");
    }
    // Another backend on the same ring (another instance) agrees on where each key lives.
    let other = on(
        &self::backend(&urls, "ring"),
        "ring",
        "5/min",
        OnError::Raise,
    );
    assert_eq!(
        other
            .stat("client-7")
            .await
            .unwrap()
            .unwrap()
            .hits_remaining,
        4
    );

    let lost = backend.server_for(&traffik_core::key::storage_key(
        "ring",
        "ring",
        "client-0",
        None,
        "token-bucket",
    ));
    let index = urls.iter().position(|url| url.ends_with(lost)).unwrap();
    servers[index].kill();
    let failing_open = on(&backend, "ring", "5/min", OnError::Allow);
    let (mut decided, mut failed_open) = (0, 0);
    for client in 0..60 {
        let decision = failing_open.hit(&format!("client-{client}")).await.unwrap();
        if decision.is_skipped() {
            failed_open += 1;
        } else {
            assert!(decision.is_allowed());
            decided += 1;
        }
    }
    assert!(decided >= 25, "the other servers still decide: {decided}");
    assert!(
        failed_open >= 10,
        "the lost server's keys follow the policy: {failed_open}"
    );
    assert!(matches!(
        throttle.hit("client-0").await,
        Err(ThrottleError::Backend { .. })
    ));
}

#[tokio::test]
async fn reset_moves_the_namespace_and_other_instances_follow() {
    let server = MemcachedServer::start();
    let first = backend(&[server.url()], "reset");
    let second = MemcachedBackend::builder([server.url()])
        .namespace("reset")
        .generation_refresh(Duration::ZERO)
        .build()
        .unwrap();
    let mine = on(&first, "reset", "1/min", OnError::Raise);
    let theirs = on(&second, "reset", "1/min", OnError::Raise);
    assert!(mine.hit("a").await.unwrap().is_allowed());
    assert!(
        theirs.hit("a").await.unwrap().is_throttled(),
        "one shared budget"
    );
    first.reset().await.unwrap();
    assert!(
        theirs.hit("a").await.unwrap().is_allowed(),
        "the reset reached the other"
    );
    assert!(
        mine.hit("a").await.unwrap().is_throttled(),
        "on the new generation"
    );
}

#[tokio::test]
async fn bad_input_is_a_typed_error() {
    for urls in [
        vec![],
        vec!["redis://127.0.0.1:6379".to_owned()],
        vec!["memcache://h:x".to_owned()],
    ] {
        let error = MemcachedBackend::builder(urls.clone()).build().unwrap_err();
        assert!(error.to_string().contains("memcache"), "{urls:?}: {error}");
    }
    // Nothing listens there: a decision fails with a typed error, quickly.
    let nothing = MemcachedBackend::builder(["memcache://127.0.0.1:1"])
        .build()
        .unwrap();
    let raising = on(&nothing, "nothing", "1/min", OnError::Raise);
    match raising.hit("a").await.unwrap_err() {
        ThrottleError::Backend { source, .. } => {
            assert!(
                matches!(source, BackendError::Unavailable { .. }),
                "{source}"
            );
            assert!(
                source.to_string().contains("server 127.0.0.1:1"),
                "the error names the server: {source}"
            );
        }
        other => panic!("{other}"),
    }

    // A value traffik did not write, at one of its keys.
    let server = MemcachedServer::start();
    let backend = backend(&[server.url()], "foreign");
    let limited = on(&backend, "foreign", "5/min", OnError::Raise);
    assert!(limited.hit("a").await.unwrap().is_allowed());
    let generation = text_command(server.port(), "get foreign:traffik-generation")
        .get(1)
        .cloned()
        .expect("the generation's value");
    let key = format!(
        "g{generation}:{}",
        traffik_core::key::storage_key("foreign", "foreign", "a", None, "token-bucket")
    );
    let stored = text_command(server.port(), &format!("set {key} 0 60 5\r\nhello"));
    assert_eq!(stored[0], "STORED");
    match limited.hit("a").await.unwrap_err() {
        ThrottleError::Backend { source, .. } => {
            assert!(matches!(source, BackendError::WrongType { .. }), "{source}");
        }
        other => panic!("{other}"),
    }
    // A cost larger than anything fits is the strategy's verdict, never an error.
    let decision = limited
        .hit_with("b", HitOptions::new().cost(1_000))
        .await
        .unwrap();
    assert!(!decision.is_allowed());
}

/// Sends `line` in memcached's text protocol; the reply's lines up to `END`, `STORED` or an
/// error.
fn text_command(port: u16, line: &str) -> Vec<String> {
    use std::io::{BufRead, BufReader, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    stream.write_all(format!("{line}\r\n").as_bytes()).unwrap();
    let mut lines = Vec::new();
    for reply in BufReader::new(stream).lines() {
        let reply = reply.unwrap();
        let last = matches!(reply.as_str(), "END" | "STORED" | "NOT_STORED" | "ERROR")
            || reply.starts_with("CLIENT_ERROR")
            || reply.starts_with("SERVER_ERROR");
        lines.push(reply);
        if last {
            break;
        }
    }
    lines
}

/// memcached's clock ticks once a second: an item must outlive its state however late in a
/// tick it was written. On real time (memcached's expiry cannot be faked): a fixed window of 3
/// per second, hit every 10 ms for a little over 3 s, never admits more than 3 in one window.
#[tokio::test]
async fn an_item_outlives_its_state_on_memcached_s_clock() {
    let server = MemcachedServer::start();
    let throttle = Throttle::builder("ticks", "3/s")
        .registry(&ThrottleRegistry::new())
        .backend(backend(&[server.url()], "ticks"))
        .on_error(OnError::Raise)
        .build()
        .unwrap();
    let mut admitted: std::collections::BTreeMap<u64, u32> = std::collections::BTreeMap::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(3_200) {
        let decision = throttle.hit("client").await.unwrap();
        if decision.is_allowed() {
            let second = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            *admitted.entry(second).or_default() += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(admitted.len() >= 3, "{admitted:?}");
    assert!(
        admitted.values().all(|&count| count <= 3),
        "a window admitted more than 3: {admitted:?}"
    );
}

#[tokio::test]
async fn a_reset_before_any_decision_leaves_a_working_namespace() {
    let server = MemcachedServer::start();
    let backend = backend(&[server.url()], "fresh");
    // No generation stored yet: the reset writes one, with traffik's flags.
    backend.reset().await.unwrap();
    let throttle = on(&backend, "fresh", "1/min", OnError::Raise);
    assert!(throttle.hit("a").await.unwrap().is_allowed());
    assert!(throttle.hit("a").await.unwrap().is_throttled());
    // The same after the server lost everything (a restart).
    let mut server = server;
    server.restart();
    // The pool's connections died with the server: the first commands fail, typed, until new
    // ones are open.
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(error) = backend.reset().await {
        assert!(matches!(error, BackendError::Unavailable { .. }), "{error}");
        assert!(Instant::now() < deadline, "never reconnected");
    }
    assert!(
        throttle.hit("a").await.unwrap().is_allowed(),
        "a new generation"
    );
    backend.reset().await.unwrap();
    assert!(
        throttle.hit("a").await.unwrap().is_allowed(),
        "and the next one"
    );
}

#[tokio::test]
async fn a_server_without_compare_and_swap_is_refused() {
    let server = MemcachedServer::start_with(&["-C"]);
    let backend = backend(&[server.url()], "nocas");
    let throttle = on(&backend, "nocas", "5/min", OnError::Raise);
    // The first decision creates the key (no token needed); the second would need one.
    let _ = throttle.hit("a").await;
    match throttle.hit("a").await.unwrap_err() {
        ThrottleError::Backend { source, .. } => {
            assert!(
                matches!(source, BackendError::InvalidReply { .. }),
                "{source}"
            );
            assert!(source.to_string().contains("-C"), "{source}");
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn a_closed_backend_fails_every_decision_with_a_typed_error() {
    let server = MemcachedServer::start();
    let backend = backend(&[server.url()], "closed");
    let raising = on(&backend, "closed", "5/min", OnError::Raise);
    assert!(raising.hit("a").await.unwrap().is_allowed());
    backend.close().await.unwrap();
    match raising.hit("a").await.unwrap_err() {
        ThrottleError::Backend { source, .. } => {
            assert!(matches!(source, BackendError::Closed { .. }), "{source}");
        }
        other => panic!("{other}"),
    }
    assert!(matches!(
        backend.reset().await,
        Err(BackendError::Closed { .. })
    ));
}

#[tokio::test]
async fn a_restarted_memcached_resets_each_client_once() {
    let mut server = MemcachedServer::start();
    let backend = MemcachedBackend::builder([server.url()])
        .namespace("once")
        .generation_refresh(Duration::from_millis(100))
        .build()
        .unwrap();
    let limited = on(&backend, "once", "5/hour", OnError::Raise);
    for _ in 0..5 {
        assert!(limited.hit("a").await.unwrap().is_allowed());
    }
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut allowed = 0;
    while allowed == 0 {
        assert!(Instant::now() < deadline, "never reconnected");
        if let Ok(decision) = limited.hit("a").await {
            allowed += usize::from(decision.is_allowed());
        }
    }
    for _ in 0..4 {
        assert!(
            limited.hit("a").await.unwrap().is_allowed(),
            "the state the restart lost"
        );
    }
    // Past the generation's refresh: the generation key is written again as this backend knew
    // it, so the budget spent since the restart still counts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        limited.hit("a").await.unwrap().is_throttled(),
        "the restart reset the client a second time"
    );
}

#[tokio::test]
async fn reset_repairs_a_generation_key_that_is_not_a_generation() {
    let server = MemcachedServer::start();
    let backend = MemcachedBackend::builder([server.url()])
        .namespace("garbled")
        .generation_refresh(Duration::ZERO)
        .build()
        .unwrap();
    let limited = on(&backend, "garbled", "5/min", OnError::Raise);
    assert!(limited.hit("a").await.unwrap().is_allowed());
    let stored = text_command(
        server.port(),
        "set garbled:traffik-generation 1953654379 0 3\r\nabc",
    );
    assert_eq!(stored[0], "STORED");
    match limited.hit("a").await.unwrap_err() {
        ThrottleError::Backend { source, .. } => {
            assert!(matches!(source, BackendError::WrongType { .. }), "{source}");
        }
        other => panic!("{other}"),
    }
    backend
        .reset()
        .await
        .expect("reset replaces what it cannot read");
    assert!(limited.hit("a").await.unwrap().is_allowed());
    assert_eq!(limited.stat("a").await.unwrap().unwrap().hits_remaining, 4);
}
