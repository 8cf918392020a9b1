//! The backend contract on real Redis processes: a single node, a three-primary cluster, a
//! `deadpool-redis` pool and the master Redis Sentinel names.
//! Time comes from the throttle's manual clock ([`TimeSource::Caller`]), so the Lua scripts see
//! exactly the `now` the pure transitions see: the differential check compares every decision
//! and every stat of every strategy against Rust's `apply`.

use std::sync::Arc;

use traffik_core::ManualClock;
use traffik_core::RedisBackend;
use traffik_core::backend::Backend;
use traffik_core::backend::redis::TimeSource;
use traffik_tests::contract::{self, Time};
use traffik_tests::redis_sentinel::{MASTER_NAME, RedisSentinel};
use traffik_tests::redis_server::{RedisCluster, RedisServer};

async fn node(server: &RedisServer, namespace: &str) -> RedisBackend {
    RedisBackend::builder(server.url())
        .namespace(namespace)
        .time_source(TimeSource::Caller)
        .connect()
        .await
        .expect("connects")
}

async fn cluster(cluster: &RedisCluster, namespace: &str) -> RedisBackend {
    RedisBackend::cluster(cluster.seeds())
        .namespace(namespace)
        .time_source(TimeSource::Caller)
        .connect()
        .await
        .expect("connects to the cluster")
}

#[tokio::test]
async fn single_node_passes_the_strategy_contract() {
    let server = RedisServer::start();
    let clock = ManualClock::new(1_700_000_000_000);
    let backend: Arc<dyn Backend> = Arc::new(node(&server, "diff").await);
    contract::strategies_match_their_pure_transitions(Arc::clone(&backend), &clock).await;
    contract::reference_cost_sequence(Arc::clone(&backend), &clock).await;
    contract::reads_consume_nothing(Arc::clone(&backend), &clock).await;
    contract::batches_match_the_in_memory_backend(Arc::clone(&backend), &clock).await;
    contract::refunds_match_their_pure_transitions(Arc::clone(&backend), &clock).await;
    let nested = Arc::new(node(&server, "diff:child").await);
    contract::reset_forgets_the_namespace(backend, nested, &clock).await;
}

#[tokio::test]
async fn single_node_never_refuses_an_on_rate_client_and_is_exact_to_the_edge_of_its_range() {
    let server = RedisServer::start();
    let clock = ManualClock::new(1_700_000_000_000);
    let backend: Arc<dyn Backend> = Arc::new(node(&server, "ranges").await);
    contract::on_rate_clients_are_never_refused(Arc::clone(&backend), &clock).await;
    contract::strategies_match_at_the_edges_of_exact_ranges(backend, &clock, true).await;
}

#[tokio::test]
async fn single_node_passes_the_key_value_contract() {
    let server = RedisServer::start();
    let backend = node(&server, "kv").await;
    contract::key_value_contract(&backend, Time::Real).await;
}

#[tokio::test]
async fn cluster_passes_every_contract() {
    let nodes = RedisCluster::start();
    let clock = ManualClock::new(1_700_000_000_000);
    let redis = cluster(&nodes, "cluster").await;
    assert!(redis.is_cluster());
    let backend: Arc<dyn Backend> = Arc::new(redis.clone());
    contract::strategies_match_their_pure_transitions(Arc::clone(&backend), &clock).await;
    contract::reference_cost_sequence(Arc::clone(&backend), &clock).await;
    contract::reads_consume_nothing(Arc::clone(&backend), &clock).await;
    contract::batches_match_the_in_memory_backend(Arc::clone(&backend), &clock).await;
    contract::refunds_match_their_pure_transitions(Arc::clone(&backend), &clock).await;
    let nested = Arc::new(cluster(&nodes, "cluster:child").await);
    contract::reset_forgets_the_namespace(backend, nested, &clock).await;
    contract::key_value_contract(&redis, Time::Real).await;
}

#[tokio::test]
async fn cluster_reset_reaches_every_primary() {
    let nodes = RedisCluster::start();
    let clock = ManualClock::new(1_700_000_000_000);
    let backend: Arc<dyn Backend> = Arc::new(cluster(&nodes, "spread").await);
    let (_, configure) = traffik_tests::every_strategy()[0];
    let throttle =
        traffik_tests::throttle("spread", "5/min", configure, Arc::clone(&backend), &clock);
    for client in 0..200 {
        throttle.hit(&format!("client-{client}")).await.unwrap();
    }
    let holding = |port| {
        traffik_tests::redis_server::command(port, "DBSIZE")
            .unwrap()
            .trim_start_matches(':')
            .parse::<u64>()
            .unwrap()
    };
    for node in nodes.nodes() {
        assert!(
            holding(node.port()) > 0,
            "200 clients land on every primary"
        );
    }
    backend.reset().await.unwrap();
    for node in nodes.nodes() {
        assert_eq!(
            holding(node.port()),
            0,
            "reset cleared primary {}",
            node.port()
        );
    }
}

/// Every strategy contract on `backend`, and `reset` against `nested` (a namespace below it).
async fn passes_the_strategy_contract(backend: RedisBackend, nested: RedisBackend) {
    let clock = ManualClock::new(1_700_000_000_000);
    let backend: Arc<dyn Backend> = Arc::new(backend);
    contract::strategies_match_their_pure_transitions(Arc::clone(&backend), &clock).await;
    contract::reference_cost_sequence(Arc::clone(&backend), &clock).await;
    contract::reads_consume_nothing(Arc::clone(&backend), &clock).await;
    contract::batches_match_the_in_memory_backend(Arc::clone(&backend), &clock).await;
    contract::refunds_match_their_pure_transitions(Arc::clone(&backend), &clock).await;
    contract::reset_forgets_the_namespace(backend, Arc::new(nested), &clock).await;
}

#[tokio::test]
async fn a_deadpool_pool_passes_every_contract() {
    let server = RedisServer::start();
    let pool = deadpool_redis::Config::from_url(server.url())
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .unwrap();
    let on_pool = |namespace: &'static str| {
        RedisBackend::from_pool(pool.clone())
            .namespace(namespace)
            .time_source(TimeSource::Caller)
            .connect()
    };
    let backend = on_pool("pool").await.expect("connects on the pool");
    let nested = on_pool("pool:child").await.expect("connects on the pool");
    contract::key_value_contract(&backend, Time::Real).await;
    passes_the_strategy_contract(backend, nested).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_sentinel_names_passes_the_strategy_contract() {
    let setup = RedisSentinel::start();
    let through_sentinel = |namespace: &'static str| {
        RedisBackend::sentinel([setup.sentinel_url()], MASTER_NAME)
            .namespace(namespace)
            .time_source(TimeSource::Caller)
            .connect()
    };
    let backend = through_sentinel("sentinel").await.expect("connects");
    let nested = through_sentinel("sentinel:child").await.expect("connects");
    passes_the_strategy_contract(backend, nested).await;
}
