//! Examples live in `examples/`; this library holds what the server examples share.

pub mod observability;
pub mod quickstart;

use std::net::SocketAddr;

use axum::Router;

/// Serves `app` on `TRAFFIK_ADDR` (default `127.0.0.1:3000`) with peer addresses (the default
/// identity of a throttle) until Ctrl-C.
///
/// # Errors
/// When the address cannot be bound or the server fails.
pub async fn serve(name: &str, app: Router) -> std::io::Result<()> {
    let address = std::env::var("TRAFFIK_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    let local = listener.local_addr()?;
    println!("{name} listening on http://{local}");
    println!("try: curl -i http://{local}/");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
