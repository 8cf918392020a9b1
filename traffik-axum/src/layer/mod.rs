//! [`ThrottleLayer`] and [`ThrottleService`]: throttles as tower middleware, for a whole router,
//! a route, or many throttles with path/method/predicate rules. Laid out as tower-http lays out
//! a middleware: the layer, the service, and the response future.

pub(crate) mod future;
#[allow(clippy::module_inception)] // tower-http's layout: `layer/{layer,service,future}.rs`
mod layer;
mod service;

pub use layer::ThrottleLayer;
pub use service::ThrottleService;

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::Router;
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::routing::get;
    use http::Request;
    use http::StatusCode;
    use tower::ServiceExt;
    use traffik_core::MemoryBackend;

    use super::*;
    use crate::{HttpThrottle, ThrottleRule};

    fn throttle(uid: &str, rate: &str) -> HttpThrottle {
        HttpThrottle::builder(uid, rate)
            .backend(MemoryBackend::new())
            .build()
            .unwrap()
    }

    /// The status of one `GET /` from 192.0.2.1 through `app`.
    async fn status(app: &Router) -> StatusCode {
        let mut request = Request::get("/").body(Body::empty()).unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 1], 1))));
        app.clone().oneshot(request).await.unwrap().status()
    }

    async fn statuses(app: &Router, count: usize) -> Vec<u16> {
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(status(app).await.as_u16());
        }
        out
    }

    fn app(layer: ThrottleLayer) -> Router {
        Router::new()
            .route("/", get(|| async { "ok" }))
            .layer(layer)
    }

    #[tokio::test]
    async fn a_layer_backend_decides_for_throttles_without_one_unless_the_request_has_one() {
        let throttle = HttpThrottle::builder("layer-backend", "2/min")
            .registry(&traffik_core::ThrottleRegistry::new())
            .build()
            .unwrap();
        let without = app(ThrottleLayer::new(throttle.clone()));
        assert_eq!(statuses(&without, 1).await, [500], "no backend anywhere");
        let layer_backend = std::sync::Arc::new(MemoryBackend::new());
        let with = app(ThrottleLayer::new(throttle.clone()).backend(layer_backend.clone()));
        assert_eq!(statuses(&with, 3).await, [200, 200, 429]);
        // A tenant's backend put in the request by an outer layer wins: a fresh budget.
        let tenant: std::sync::Arc<dyn traffik_core::backend::Backend> =
            std::sync::Arc::new(MemoryBackend::new());
        let outer = with.layer(axum::Extension(crate::RequestBackend::new(tenant)));
        assert_eq!(statuses(&outer, 3).await, [200, 200, 429]);
    }

    #[tokio::test]
    async fn the_synchronous_path_admits_to_the_limit_then_answers_429() {
        let app = app(ThrottleLayer::new(throttle("layer-sync", "2/min")));
        assert_eq!(statuses(&app, 3).await, [200, 200, 429]);
    }

    #[tokio::test]
    async fn an_async_predicate_takes_the_asynchronous_path_and_decides_alike() {
        let layer =
            ThrottleLayer::from_rules([ThrottleRule::new(throttle("layer-async", "2/min"))
                .predicate_async(|_| Box::pin(async { true }))]);
        assert_eq!(statuses(&app(layer), 3).await, [200, 200, 429]);
        let skipped =
            ThrottleLayer::from_rules([ThrottleRule::new(throttle("layer-async-skip", "1/min"))
                .predicate_async(|_| Box::pin(async { false }))]);
        assert_eq!(statuses(&app(skipped), 3).await, [200, 200, 200]);
    }

    #[tokio::test]
    async fn a_rules_cost_is_charged_on_both_paths() {
        let sync =
            ThrottleLayer::from_rules([ThrottleRule::new(throttle("layer-cost", "5/min")).cost(2)]);
        assert_eq!(statuses(&app(sync), 3).await, [200, 200, 429]);
        let asynchronous =
            ThrottleLayer::from_rules([ThrottleRule::new(throttle("layer-cost-async", "5/min"))
                .cost(2)
                .predicate_async(|_| Box::pin(async { true }))]);
        assert_eq!(statuses(&app(asynchronous), 3).await, [200, 200, 429]);
    }

    #[tokio::test]
    async fn several_rules_are_decided_as_one() {
        let layer = ThrottleLayer::from_rules([
            ThrottleRule::new(throttle("layer-pair-wide", "3/min")),
            ThrottleRule::new(throttle("layer-pair-narrow", "1/min")),
        ]);
        let app = app(layer);
        assert_eq!(statuses(&app, 3).await, [200, 429, 429]);
    }

    #[test]
    fn the_service_gives_back_its_inner_service() {
        use tower_layer::Layer;

        let layer = ThrottleLayer::new(throttle("layer-accessors", "1/min"));
        assert_eq!(layer.rules().len(), 1);
        let mut service = layer.layer(7_u32);
        assert_eq!(*service.get_ref(), 7);
        *service.get_mut() += 1;
        assert_eq!(service.into_inner(), 8);
    }
}
