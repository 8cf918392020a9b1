//! Fleet accuracy: three app instances (separate axum servers, each with its own Redis
//! connection and its own throttle object) share one Redis; 64 concurrent clients hit one key
//! spread over all three. Exactly the limit is admitted, for every strategy, on Redis's clock.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http::StatusCode;
use tokio::task::JoinSet;
use traffik_axum::prelude::*;
use traffik_axum::{HttpThrottle, ThrottleLayer};
use traffik_tests::redis_server::RedisServer;
use traffik_tests::{every_strategy, with_strategy};

mod support;

const INSTANCES: usize = 3;
const CLIENTS: usize = 64;
const LIMIT: usize = 10;

async fn instance(redis_url: &str, strategy: &str, round: usize) -> String {
    let backend = RedisBackend::builder(redis_url)
        .namespace("fleet")
        .command_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect("connects");
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
async fn instances_sharing_one_redis_admit_exactly_the_limit() {
    let redis = RedisServer::start();
    let client = reqwest::Client::new();
    let mut report = Vec::new();
    for (strategy, _) in every_strategy() {
        for round in 0..2 {
            let mut urls = Vec::new();
            for _ in 0..INSTANCES {
                urls.push(instance(&redis.url(), strategy, round).await);
            }
            let mut requests = JoinSet::new();
            for i in 0..CLIENTS {
                let (client, url) = (client.clone(), urls[i % INSTANCES].clone());
                requests.spawn(async move { client.get(url).send().await.unwrap().status() });
            }
            let (mut admitted, mut refused) = (0, 0);
            while let Some(status) = requests.join_next().await {
                match status.unwrap() {
                    StatusCode::OK => admitted += 1,
                    StatusCode::TOO_MANY_REQUESTS => refused += 1,
                    other => panic!("{strategy}: unexpected {other}"),
                }
            }
            report.push(format!(
                "{strategy}: {admitted} admitted, {refused} refused"
            ));
            assert_eq!(
                admitted, LIMIT,
                "{strategy}, round {round}: over- or under-admission across {INSTANCES} instances"
            );
        }
    }
    println!("{}", report.join("\n"));
}
