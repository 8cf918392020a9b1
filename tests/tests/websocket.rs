//! WebSocket throttling end to end: a real axum server on a loopback port, a real
//! `tokio-tungstenite` client. Each test has its own throttles on a manual clock, so no window
//! boundary falls between two messages by chance; waits are bounded and only keep a broken
//! test from hanging.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::Message;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message as ClientMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use traffik_axum::prelude::*;
use traffik_axum::ws::{
    ClientUpgrade, ConnectionLimit, MessageHandler, MessageThrottle, ThrottledSocket, is_throttled,
};
use traffik_axum::{ThrottlePolicy, Throttled};

mod support;

use support::serve;

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

const PATIENCE: Duration = Duration::from_secs(10);

/// What one test's server holds.
#[derive(Clone)]
struct App {
    handshakes: HttpThrottle,
    messages: MessageThrottle,
    cost: u64,
    connections: ConnectionLimit,
    running: Arc<AtomicUsize>,
}

struct Handshakes;
impl ThrottlePolicy<App> for Handshakes {
    fn throttle(app: &App) -> Result<&HttpThrottle, &ConfigError> {
        Ok(&app.handshakes)
    }
}

fn throttle(uid: &str, rate: &str, clock: &ManualClock) -> HttpThrottle {
    HttpThrottle::builder(uid, rate)
        .backend(MemoryBackend::new())
        .clock(clock.clone())
        .build()
        .unwrap()
}

impl App {
    /// Handshakes unlimited in practice, messages at `rate`.
    fn new(name: &str, rate: &str, clock: &ManualClock) -> App {
        App {
            handshakes: throttle(&format!("ws-{name}-handshakes"), "1000/s", clock),
            messages: MessageThrottle::new(throttle(&format!("ws-{name}-messages"), rate, clock)),
            cost: 1,
            connections: ConnectionLimit::new(100),
            running: Arc::new(AtomicUsize::new(0)),
        }
    }

    async fn serve(self) -> String {
        let app = Router::new().route("/ws", get(upgrade)).with_state(self);
        serve(app).await.replace("http://", "ws://") + "/ws"
    }
}

/// Counts the running socket tasks; released when a task ends, however it ends.
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn upgrade(
    _: Throttled<Handshakes>,
    State(app): State<App>,
    upgrade: ClientUpgrade,
) -> Response {
    let permit = match app.connections.acquire(upgrade.parts()).await {
        Ok(permit) => permit,
        Err(refused) => return refused.into_response(),
    };
    app.running.fetch_add(1, Ordering::SeqCst);
    let running = Running(Arc::clone(&app.running));
    upgrade.on_upgrade(move |socket| async move {
        let _counted = (permit, running);
        echo(socket, app.messages, app.cost).await;
    })
}

/// Echoes text messages that pass the message throttle.
async fn echo(mut socket: ThrottledSocket, messages: MessageThrottle, cost: u64) {
    while let Some(Ok(message)) = socket.recv().await {
        if !matches!(message, Message::Text(_)) {
            continue;
        }
        if messages.hit(&mut socket).cost(cost).await.is_err() {
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

async fn connect(url: &str) -> Client {
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// Sends `text` and returns the next text frame.
async fn say(client: &mut Client, text: &str) -> String {
    client.send(ClientMessage::text(text)).await.unwrap();
    next_text(client).await
}

async fn next_text(client: &mut Client) -> String {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match client.next().await {
                Some(Ok(ClientMessage::Text(text))) => return text.to_string(),
                Some(Ok(_)) => {}
                other => panic!("the connection ended: {other:?}"),
            }
        }
    })
    .await
    .expect("a frame in time")
}

fn is_rate_limit(frame: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(frame).is_ok_and(|v| v["type"] == "rate_limit")
}

#[tokio::test]
async fn the_third_handshake_within_the_window_gets_an_http_429() {
    let clock = ManualClock::new(1_000_000);
    let mut app = App::new("handshake", "100/s", &clock);
    app.handshakes = throttle("ws-handshake-upgrades", "2/5s", &clock);
    let url = app.serve().await;
    let _first = connect(&url).await;
    let _second = connect(&url).await;
    match tokio_tungstenite::connect_async(&url).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(response.headers()["retry-after"], "5");
        }
        other => panic!(
            "expected an HTTP 429, got {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
}

#[tokio::test]
async fn three_messages_a_second_then_a_rate_limit_frame_and_the_connection_stays_usable() {
    let clock = ManualClock::new(1_000_000);
    let url = App::new("three", "3/s", &clock).serve().await;
    let mut client = connect(&url).await;
    for n in 0..3 {
        assert_eq!(say(&mut client, &format!("m{n}")).await, format!("m{n}"));
    }
    let frame: serde_json::Value = serde_json::from_str(&say(&mut client, "m3").await).unwrap();
    assert_eq!(
        frame,
        serde_json::json!({"type": "rate_limit", "error": "Too many messages", "retry_after": 1})
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(say(&mut client, "again").await, "again");
}

#[tokio::test]
async fn in_shadow_mode_every_message_passes_and_the_limit_still_counts() {
    let clock = ManualClock::new(1_000_000);
    let app = App::new("shadow", "3/s", &clock);
    app.messages.throttle().core().set_shadow_mode(true);
    let messages = app.messages.clone();
    let url = app.serve().await;
    let mut client = connect(&url).await;
    for n in 0..6 {
        assert_eq!(say(&mut client, &format!("m{n}")).await, format!("m{n}"));
    }
    // Recorded as usual: out of shadow mode the next message is refused.
    messages.throttle().core().set_shadow_mode(false);
    assert!(is_rate_limit(&say(&mut client, "m6").await));
}

#[tokio::test]
async fn five_connections_of_one_client_share_one_budget() {
    let clock = ManualClock::new(1_000_000);
    let url = App::new("shared", "3/s", &clock).serve().await;
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(connect(&url).await);
    }
    let replies = futures_util::future::join_all(
        clients
            .iter_mut()
            .enumerate()
            .map(|(n, client)| async move { say(client, &format!("c{n}")).await }),
    )
    .await;
    let echoes = replies
        .iter()
        .filter(|reply| reply.starts_with('c'))
        .count();
    let refusals = replies.iter().filter(|reply| is_rate_limit(reply)).count();
    assert_eq!((echoes, refusals), (3, 2), "{replies:?}");
}

#[tokio::test]
async fn a_closing_handler_closes_with_1008_and_its_reason() {
    let clock = ManualClock::new(1_000_000);
    let mut app = App::new("close", "1/s", &clock);
    app.messages = app
        .messages
        .on_throttled(MessageHandler::close(1008, "message rate exceeded"));
    let mut client = connect(&app.serve().await).await;
    assert_eq!(say(&mut client, "first").await, "first");
    client.send(ClientMessage::text("second")).await.unwrap();
    let close = tokio::time::timeout(PATIENCE, async {
        loop {
            match client.next().await {
                Some(Ok(ClientMessage::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                other => panic!("no close frame: {other:?}"),
            }
        }
    })
    .await
    .unwrap()
    .expect("a close frame with a code");
    assert_eq!(close.code, CloseCode::Policy);
    assert_eq!(close.reason.as_str(), "message rate exceeded");
}

#[tokio::test]
async fn a_message_costing_two_of_ten_per_two_seconds_passes_five_times() {
    let clock = ManualClock::new(1_000_000);
    let mut app = App::new("cost", "10/2s", &clock);
    app.cost = 2;
    let mut client = connect(&app.serve().await).await;
    for n in 0..5 {
        assert_eq!(say(&mut client, &format!("m{n}")).await, format!("m{n}"));
    }
    assert!(is_rate_limit(&say(&mut client, "m5").await));
}

#[tokio::test]
async fn clients_that_vanish_leak_no_connection_counts_or_tasks() {
    let clock = ManualClock::new(1_000_000);
    let mut app = App::new("vanish", "1000/s", &clock);
    app.connections = ConnectionLimit::new(2);
    let (connections, running) = (app.connections.clone(), Arc::clone(&app.running));
    let url = app.serve().await;

    let mut first = connect(&url).await;
    let _second = connect(&url).await;
    match tokio_tungstenite::connect_async(&url).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        }
        other => panic!("expected a 429, got {:?}", other.map(|(_, r)| r.status())),
    }
    assert_eq!(say(&mut first, "hello").await, "hello");
    drop(first);
    drop(_second);
    // Many clients that send and vanish without a close frame, some mid-message.
    for round in 0..10 {
        let mut client = connect(&url).await;
        client
            .send(ClientMessage::text(format!("r{round}")))
            .await
            .unwrap();
        if round % 2 == 0 {
            let _ = next_text(&mut client).await;
        }
        drop(client);
    }
    tokio::time::timeout(PATIENCE, async {
        while connections.open() != 0 || running.load(Ordering::SeqCst) != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "left open: {} connections, {} tasks",
            connections.open(),
            running.load(Ordering::SeqCst)
        )
    });
    // The budget of connections is whole again.
    let _a = connect(&url).await;
    let _b = connect(&url).await;
}

/// Two throttles on every message: `strict` (1/s, per channel, answered by its backend's
/// handler) and `loose` (100/s); the server reports what the socket says after both.
async fn two_throttles(
    mut socket: ThrottledSocket,
    strict: MessageThrottle,
    loose: MessageThrottle,
) {
    while let Some(Ok(Message::Text(channel))) = socket.recv().await {
        let channel = channel.to_string();
        if strict.hit(&mut socket).scope(&channel).await.is_err()
            || loose.hit(&mut socket).await.is_err()
        {
            break;
        }
        let report = format!(
            "throttled={} strict={} loose={}",
            is_throttled(&socket),
            socket.is_throttled_by(&strict),
            socket.is_throttled_by(&loose)
        );
        if socket.send(Message::Text(report.into())).await.is_err() {
            break;
        }
    }
}

#[tokio::test]
async fn a_later_pass_of_another_throttle_keeps_the_refusal_and_channels_have_their_own_budgets() {
    let clock = ManualClock::new(1_000_000);
    // The backend's default answer to a refused message, used by `strict` (it has none).
    let backend = MemoryBackend::builder()
        .extension(MessageHandler::new(|socket, _, throttle, _| {
            let text = format!("refused by {}", throttle.throttle().uid());
            Box::pin(async move {
                let _ = socket.send(Message::Text(text.into())).await;
                Ok(())
            })
        }))
        .build()
        .unwrap();
    let strict = MessageThrottle::new(
        HttpThrottle::builder("ws-two-strict", "1/s")
            .backend(backend)
            .clock(clock.clone())
            .build()
            .unwrap(),
    );
    let loose = MessageThrottle::new(throttle("ws-two-loose", "100/s", &clock));
    let app = Router::new().route(
        "/ws",
        get(move |upgrade: ClientUpgrade| async move {
            upgrade.on_upgrade(move |socket| two_throttles(socket, strict, loose))
        }),
    );
    let url = serve(app).await.replace("http://", "ws://") + "/ws";
    let mut client = connect(&url).await;

    assert_eq!(
        say(&mut client, "lobby").await,
        "throttled=false strict=false loose=false"
    );
    client.send(ClientMessage::text("lobby")).await.unwrap();
    assert_eq!(next_text(&mut client).await, "refused by ws-two-strict");
    assert_eq!(
        next_text(&mut client).await,
        "throttled=true strict=true loose=false",
        "loose passed after strict refused: the refusal stands"
    );
    assert_eq!(
        say(&mut client, "games").await,
        "throttled=false strict=false loose=false",
        "another channel has its own budget, and strict's pass clears its refusal"
    );
}

#[tokio::test]
async fn message_throttles_honour_rules_on_the_upgrade_request() {
    let clock = ManualClock::new(1_000_000);
    let mut app = App::new("rules", "1/s", &clock);
    app.messages = MessageThrottle::new(
        HttpThrottle::builder("ws-rules-messages-bypassed", "1/s")
            .backend(MemoryBackend::new())
            .clock(clock.clone())
            .rules([Rule::bypass_when(
                RequestMatch::new().predicate(|parts| parts.uri.query() == Some("internal=1")),
            )])
            .build()
            .unwrap(),
    );
    let url = app.serve().await;
    let mut internal = connect(&format!("{url}?internal=1")).await;
    for n in 0..3 {
        assert_eq!(say(&mut internal, &format!("i{n}")).await, format!("i{n}"));
    }
    let mut outside = connect(&url).await;
    assert_eq!(say(&mut outside, "o0").await, "o0");
    assert!(is_rate_limit(&say(&mut outside, "o1").await));
}

#[tokio::test]
async fn an_asynchronous_identifier_runs_once_per_connection_handshake_included() {
    let clock = ManualClock::new(1_000_000);
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let identifier = Identifier::from_async(move |_: &http::request::Parts| {
        counted.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Identity::from("one-client") })
    });
    let with_identifier = |uid: &str, rate: &str| {
        HttpThrottle::builder(uid, rate)
            .backend(MemoryBackend::new())
            .clock(clock.clone())
            .identifier(identifier.clone())
            .build()
            .unwrap()
    };
    let mut app = App::new("identity-once", "100/s", &clock);
    app.handshakes = with_identifier("ws-identity-once-counted-handshakes", "100/s");
    app.messages = MessageThrottle::new(with_identifier(
        "ws-identity-once-counted-messages",
        "100/s",
    ));
    let url = app.serve().await;
    let mut client = connect(&url).await;
    for n in 0..5 {
        assert_eq!(say(&mut client, &format!("m{n}")).await, format!("m{n}"));
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "once for the handshake and 5 messages"
    );
    let mut second = connect(&url).await;
    assert_eq!(say(&mut second, "x").await, "x");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "a new connection is identified anew"
    );
}
