//! The Rust targets: one axum app per [`Target`], built for a scenario's rate.
//!
//! `traffik-bench serve` runs one of these as its own process (the harness starts it, pinned to
//! the server core); the harness's tests serve them in process.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::{Router, http::Request};
use http::HeaderName;
use tokio::net::TcpListener;
use tower_governor::GovernorError;
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::KeyExtractor;
use traffik_axum::prelude::*;
use traffik_axum::ws::{ClientUpgrade, MessageThrottle, ThrottledSocket, is_throttled};
use traffik_axum::{ClientIp, HttpThrottle, ThrottleLayer, ThrottlePolicy, Throttled, identify};

use crate::error::BenchError;
use crate::target::Target;

/// The header that tells the load client's simulated clients apart.
pub const CLIENT_HEADER: &str = "x-client-id";
/// The throttled HTTP route.
pub const TEST_PATH: &str = "/test";
/// The WebSocket route.
pub const WS_PATH: &str = "/ws";
/// The unthrottled route the harness polls until the server is ready.
pub const HEALTH_PATH: &str = "/__bench__/health";

/// How one Rust target is set up.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Which server.
    pub target: Target,
    /// The limit (`"100/min"`).
    pub rate: String,
    /// Redis URL, for the targets on Redis ([`Target::uses_redis`]).
    pub redis_url: Option<String>,
}

#[derive(Clone)]
struct Limited {
    throttle: HttpThrottle,
}

struct BenchLimit;

impl ThrottlePolicy<Limited> for BenchLimit {
    fn throttle(state: &Limited) -> Result<&HttpThrottle, &ConfigError> {
        Ok(&state.throttle)
    }
}

async fn ok() -> &'static str {
    "ok"
}

async fn ok_throttled(_: Throttled<BenchLimit>) -> &'static str {
    "ok"
}

/// `tower_governor` keyed like every other target: by `X-Client-ID`, else the peer address.
#[derive(Debug, Clone, Copy)]
struct ClientIdKey;

impl KeyExtractor for ClientIdKey {
    type Key = String;

    fn extract<T>(&self, request: &Request<T>) -> Result<String, GovernorError> {
        if let Some(id) = request.headers().get(CLIENT_HEADER) {
            return Ok(String::from_utf8_lossy(id.as_bytes()).into_owned());
        }
        request
            .extensions()
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip().to_string())
            .ok_or(GovernorError::UnableToExtractKey)
    }
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        if socket.send(message).await.is_err() {
            break;
        }
    }
}

async fn throttled_echo(mut socket: ThrottledSocket, messages: MessageThrottle) {
    while let Some(Ok(message)) = socket.recv().await {
        if messages.hit(&mut socket).await.is_err() {
            break;
        }
        if is_throttled(&socket) {
            continue;
        }
        if socket.send(message).await.is_err() {
            break;
        }
    }
}

fn target_error(target: Target, reason: impl std::fmt::Display) -> BenchError {
    BenchError::Target {
        target: target.name().to_owned(),
        reason: reason.to_string(),
    }
}

async fn throttle(config: &ServerConfig) -> Result<HttpThrottle, BenchError> {
    let rate: Rate = config
        .rate
        .parse()
        .map_err(|error| target_error(config.target, error))?;
    // A registry per server, so that several servers can share a process (the tests do).
    let builder = HttpThrottle::builder("bench", rate)
        .registry(&ThrottleRegistry::new())
        .identifier(identify::header(
            HeaderName::from_static(CLIENT_HEADER),
            ClientIp::new(),
        ));
    let builder = match &config.redis_url {
        Some(url) => builder.backend(
            RedisBackend::builder(url.as_str())
                .namespace("traffik-bench")
                .connect()
                .await
                .map_err(|error| target_error(config.target, error))?,
        ),
        None => builder.backend(MemoryBackend::new()),
    };
    builder
        .build()
        .map_err(|error| target_error(config.target, error))
}

/// The app for `config`: `GET /test` (or `/ws`) limited as the target limits, and the health
/// route. Python targets are not built here.
///
/// # Errors
/// A rate that does not parse, a Redis target without a URL or whose Redis does not answer,
/// or a Python target.
pub async fn router(config: &ServerConfig) -> Result<Router, BenchError> {
    let health = Router::new().route(HEALTH_PATH, get(ok));
    let app = match config.target {
        Target::Axum => Router::new().route(TEST_PATH, get(ok)),
        Target::TraffikExtractor => Router::new()
            .route(TEST_PATH, get(ok_throttled))
            .with_state(Limited {
                throttle: throttle(config).await?,
            }),
        Target::TraffikRedis => {
            if config.redis_url.is_none() {
                return Err(target_error(config.target, "needs a Redis URL"));
            }
            Router::new()
                .route(TEST_PATH, get(ok_throttled))
                .with_state(Limited {
                    throttle: throttle(config).await?,
                })
        }
        Target::TraffikLayer => Router::new()
            .route(TEST_PATH, get(ok))
            .layer(ThrottleLayer::new(throttle(config).await?)),
        Target::TowerGovernor => {
            let rate: Rate = config
                .rate
                .parse()
                .map_err(|error| target_error(config.target, error))?;
            let burst = u32::try_from(rate.limit()).unwrap_or(u32::MAX);
            let per_cell = (rate.period() / burst).max(Duration::from_nanos(1));
            let governor = GovernorConfigBuilder::default()
                .key_extractor(ClientIdKey)
                .period(per_cell)
                .burst_size(burst)
                .finish()
                .ok_or_else(|| target_error(config.target, "tower_governor refused the quota"))?;
            Router::new()
                .route(TEST_PATH, get(ok))
                .layer(GovernorLayer::new(governor))
        }
        Target::TowerRateLimitRedis => {
            let layer = tower_rate_limit_redis_layer(config).await?;
            Router::new().route(TEST_PATH, get(ok)).layer(layer)
        }
        Target::WsAxum => Router::new().route(
            WS_PATH,
            get(|upgrade: WebSocketUpgrade| async move { upgrade.on_upgrade(echo) }),
        ),
        Target::WsTraffik => {
            let messages = MessageThrottle::new(throttle(config).await?);
            Router::new().route(
                WS_PATH,
                get(move |upgrade: ClientUpgrade| async move {
                    upgrade.on_upgrade(move |socket| throttled_echo(socket, messages))
                }),
            )
        }
        python => {
            return Err(target_error(
                python,
                "is served by the Python library, not by traffik-bench",
            ));
        }
    };
    Ok(app.merge(health))
}

/// Keys `tower-rate-limit-redis` by the `X-Client-ID` header (400 without one).
#[derive(Clone)]
struct ClientIdResolver;

impl tower_rate_limit_redis::KeyResolver for ClientIdResolver {
    type Key = String;
    type ErrorBody = axum::body::Body;

    fn key<T>(&self, request: &Request<T>) -> Result<String, http::Response<axum::body::Body>> {
        request
            .headers()
            .get(CLIENT_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(|client| format!("tower-rate-limit-redis:{client}"))
            .ok_or_else(|| {
                let mut response = http::Response::new(axum::body::Body::empty());
                *response.status_mut() = http::StatusCode::BAD_REQUEST;
                response
            })
    }
}

/// `tower-rate-limit-redis`'s layer for `config`'s rate: a burst of the rate's limit (at most
/// `u16::MAX`, its largest) refilled at one per `period / limit`, which it cannot take below
/// 1 ms: the never-refusing rate (and `unlimited`) becomes a burst of 65,535 and 1,000 per
/// second per client, which the sustained scenario's clients stay under (a refusal would show
/// as an inexact row).
async fn tower_rate_limit_redis_layer(
    config: &ServerConfig,
) -> Result<tower_rate_limit_redis::RateLimitLayer<ClientIdResolver>, BenchError> {
    let url = config
        .redis_url
        .as_deref()
        .ok_or_else(|| target_error(config.target, "needs a Redis URL"))?;
    let rate: Rate = config
        .rate
        .parse()
        .map_err(|error| target_error(config.target, error))?;
    let connection = redis_peer::Client::open(url)
        .map_err(|error| target_error(config.target, error))?
        .get_multiplexed_async_connection()
        .await
        .map_err(|error| target_error(config.target, error))?;
    let (capacity, interval) = if rate.is_unlimited() {
        (u16::MAX, Duration::from_millis(1))
    } else {
        let capacity = u16::try_from(rate.limit()).unwrap_or(u16::MAX).max(1);
        let interval = (rate.period() / u32::from(capacity)).max(Duration::from_millis(1));
        (capacity, interval)
    };
    // Its emission interval is a u32 of ms (it panics past that).
    if interval.as_millis() > u128::from(u32::MAX) {
        return Err(target_error(
            config.target,
            "an emission interval over u32::MAX ms is more than tower-rate-limit-redis takes",
        ));
    }
    Ok(tower_rate_limit_redis::RateLimitLayer::builder()
        .conn(connection)
        .key_resolver(ClientIdResolver)
        .capacity(capacity)
        .emission_interval(interval)
        .timeout(Duration::from_millis(500))
        .build())
}

/// Serves `config`'s app on `listener` until the process is stopped.
///
/// # Errors
/// As [`router`], or when serving fails.
pub async fn serve(config: &ServerConfig, listener: TcpListener) -> Result<(), BenchError> {
    let app = router(config).await?;
    // Small frames go out at once, as uvicorn (asyncio) does for the Python targets.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .map_err(|error| target_error(config.target, error))
}

/// Serves `config`'s app in this process on a free loopback port, for tests.
///
/// # Errors
/// As [`router`], or when no loopback port can be bound.
pub async fn spawn(config: &ServerConfig) -> Result<SocketAddr, BenchError> {
    let app = router(config).await?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|error| target_error(config.target, error))?;
    let address = listener
        .local_addr()
        .map_err(|error| target_error(config.target, error))?;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    Ok(address)
}
