use axum::extract::{Path, Query, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::{Json, Router, routing::{get, post}};
use traffik_axum::throttled;

#[derive(Clone)]
struct AppState {
    greeting: &'static str,
}

#[throttled("30/min")]
async fn create(
    State(state): State<AppState>,
    Path(id): Path<u32>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> impl IntoResponse {
    let _ = (state.greeting, id, query, headers, body);
    "created"
}

#[throttled("10/min")]
async fn generic_state<S: Clone + Send + Sync + 'static>(State(_): State<S>) -> &'static str {
    "ok"
}

#[throttled("5/min")]
async fn socket(upgrade: WebSocketUpgrade) -> impl IntoResponse {
    upgrade.on_upgrade(|_socket| async {})
}

#[throttled("1/s")]
async fn fallible() -> Result<&'static str, axum::http::StatusCode> {
    Ok("fine")
}

#[throttled("1/s")]
async fn r#type() -> &'static str {
    "raw identifiers work"
}

fn main() {
    let _: Router = Router::new()
        .route("/items/{id}", post(create))
        .route("/generic", get(generic_state::<AppState>))
        .route("/ws", get(socket))
        .route("/fallible", get(fallible))
        .route("/type", get(r#type))
        .with_state(AppState { greeting: "hello" });
}
