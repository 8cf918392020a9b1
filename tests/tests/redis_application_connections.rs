//! `RedisBackend` on what the application already has, on real `redis-server` processes: its
//! `redis::Client`, its `ConnectionManager`, its cluster client and its `deadpool-redis` pool.
//! Each decides, holds its limits, keeps the builder's namespace and timeouts, and resets.

use std::time::{Duration, Instant};

use deadpool_redis::{Config, Runtime};
use traffik_core::backend::{Backend, BackendError};
use traffik_core::strategy::FixedWindow;
use traffik_core::{OnError, RedisBackend, Throttle, ThrottleError, ThrottleRegistry};
use traffik_tests::redis_server::{RedisCluster, RedisServer, command};

fn three_per_minute(backend: &RedisBackend, uid: &str) -> Throttle {
    Throttle::builder(uid, "3/min")
        .strategy(FixedWindow::new())
        .backend(backend.clone())
        .on_error(OnError::Raise)
        .registry(&ThrottleRegistry::new())
        .build()
        .expect("a valid throttle")
}

/// Three hits admitted, the fourth refused, for `client`.
async fn the_limit_holds(throttle: &Throttle, client: &str) {
    for hit in 0..3 {
        assert!(
            throttle.hit(client).await.unwrap().is_allowed(),
            "hit {hit} of {client}"
        );
    }
    assert!(
        throttle.hit(client).await.unwrap().is_throttled(),
        "{client}"
    );
}

fn all_keys(port: u16) -> Vec<String> {
    let mut connection = redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("KEYS").arg("*").query(&mut connection).unwrap()
}

#[tokio::test]
async fn a_backend_on_the_applications_client_opens_its_own_connections() {
    let server = RedisServer::start_with(&["--requirepass", "secret"]);
    let url = format!("redis://:secret@127.0.0.1:{}/3", server.port());
    let client = redis::Client::open(url.as_str()).unwrap();
    let backend = RedisBackend::from_client(client)
        .namespace("app-client")
        .connections(2)
        .connect()
        .await
        .expect("connects with the client's credentials and database");
    let shown = format!("{backend:?}");
    assert!(shown.contains("connections: 2"), "{shown}");
    assert!(!shown.contains("secret"), "{shown}");
    let throttle = three_per_minute(&backend, "client");
    the_limit_holds(&throttle, "a").await;
    let mut connection = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut connection).unwrap();
    assert_eq!(keys, ["app-client:client:{a}:fixed-window"], "database 3");
    backend.reset().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut connection).unwrap();
    assert!(keys.is_empty(), "{keys:?}");
}

#[tokio::test]
async fn a_backend_shares_the_applications_connection_manager_within_its_command_timeout() {
    let server = RedisServer::start();
    let client = redis::Client::open(server.url()).unwrap();
    let mut manager = redis::aio::ConnectionManager::new(client).await.unwrap();
    let backend = RedisBackend::from_connection_manager(manager.clone())
        .namespace("app-manager")
        .command_timeout(Duration::from_millis(300))
        .connect()
        .await
        .expect("connects on the application's manager");
    let throttle = three_per_minute(&backend, "manager");
    the_limit_holds(&throttle, "a").await;
    // The application keeps using its manager beside the backend.
    let _: () = redis::cmd("SET")
        .arg("app:own")
        .arg("1")
        .query_async(&mut manager)
        .await
        .unwrap();
    assert_eq!(command(server.port(), "GET app:own").unwrap(), "1");

    // The command timeout bounds traffik's calls on a connection it did not open.
    assert_eq!(
        command(server.port(), "CLIENT PAUSE 1500 ALL").unwrap(),
        "+OK"
    );
    let started = Instant::now();
    let error = throttle.hit("b").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(1_200));
    assert!(
        matches!(
            error,
            ThrottleError::Backend {
                source: BackendError::Timeout { .. },
                ..
            }
        ),
        "{error}"
    );
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    assert!(throttle.hit("b").await.unwrap().is_allowed());

    backend.close().await.unwrap();
    let reply: String = redis::cmd("GET")
        .arg("app:own")
        .query_async(&mut manager)
        .await
        .unwrap();
    assert_eq!(reply, "1", "closing the backend leaves the manager working");
}

#[tokio::test]
async fn a_backend_on_the_applications_cluster_client_decides_on_every_primary() {
    let nodes = RedisCluster::start();
    let client = redis::cluster::ClusterClient::new(nodes.seeds()).unwrap();
    let backend = RedisBackend::from_cluster_client(client)
        .namespace("app-cluster")
        .connect()
        .await
        .expect("connects on the application's cluster client");
    assert!(backend.is_cluster());
    let throttle = three_per_minute(&backend, "cluster");
    the_limit_holds(&throttle, "a").await;
    for client in 0..200 {
        assert!(
            throttle
                .hit(&format!("client-{client}"))
                .await
                .unwrap()
                .is_allowed()
        );
    }
    for node in nodes.nodes() {
        assert!(
            !all_keys(node.port()).is_empty(),
            "200 clients land on every primary"
        );
    }
    backend.reset().await.unwrap();
    for node in nodes.nodes() {
        assert!(
            all_keys(node.port()).is_empty(),
            "reset cleared {}",
            node.port()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_on_a_deadpool_pool_checks_out_a_connection_per_decision() {
    let server = RedisServer::start();
    let mut config = Config::from_url(server.url());
    config.pool = Some(deadpool_redis::PoolConfig::new(4));
    let pool = config.create_pool(Some(Runtime::Tokio1)).unwrap();
    let backend = RedisBackend::from_pool(pool.clone())
        .namespace("app-pool")
        .connect()
        .await
        .expect("connects on the application's pool");
    assert!(format!("{backend:?}").contains("pool"));
    let throttle = three_per_minute(&backend, "pool");
    the_limit_holds(&throttle, "a").await;

    // 200 concurrent decisions over 4 connections, after a script flush: each checks a
    // connection out, and the script is reloaded through whichever connection meets NOSCRIPT.
    assert_eq!(command(server.port(), "SCRIPT FLUSH").unwrap(), "+OK");
    let before = server.calls("evalsha");
    let tasks: Vec<_> = (0..200)
        .map(|client| {
            let throttle = throttle.clone();
            tokio::spawn(async move { throttle.hit(&format!("client-{client}")).await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().unwrap().is_allowed());
    }
    assert!(server.calls("evalsha") - before >= 200);
    let status = pool.status();
    assert!(status.size <= 4, "{status:?}");
    assert_eq!(status.available, status.size, "every connection went back");
    assert!(
        server.calls("ping") >= 200,
        "deadpool-redis recycles each checkout with a PING"
    );

    backend.reset().await.unwrap();
    assert!(all_keys(server.port()).is_empty());

    // A closed pool is a typed, transient failure.
    pool.close();
    match throttle.hit("a").await.unwrap_err() {
        ThrottleError::Backend { source, .. } => {
            assert!(
                matches!(source, BackendError::Unavailable { .. }),
                "{source}"
            );
            assert!(source.is_transient());
        }
        other => panic!("expected a backend error, got {other}"),
    }
}

#[tokio::test]
async fn a_pool_that_cannot_reach_redis_fails_to_connect_with_a_typed_error() {
    let config = Config::from_url("redis://127.0.0.1:1");
    let pool = config.create_pool(Some(Runtime::Tokio1)).unwrap();
    let started = Instant::now();
    let error = RedisBackend::from_pool(pool)
        .connect_timeout(Duration::from_millis(500))
        .command_timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(
            error,
            traffik_core::backend::redis::RedisConnectError::Backend(
                BackendError::Unavailable { .. } | BackendError::Timeout { .. }
            )
        ),
        "{error}"
    );
}
