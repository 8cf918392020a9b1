//! What the end-to-end HTTP tests share.

use std::net::SocketAddr;

use axum::Router;

/// Serves `app` on a free loopback port with peer addresses; returns its base URL. The server
/// task ends with the test's runtime.
pub(crate) async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{address}")
}
