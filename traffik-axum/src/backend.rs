//! [`RequestBackend`]: a backend chosen per request (per tenant, say), placed in the request's
//! extensions by a layer.

use std::sync::Arc;

use traffik_core::backend::Backend;

/// A backend for the throttles of this request that have none of their own (the reference's
/// "dynamic backend"): insert it into the request's extensions, typically from a middleware
/// that picks the tenant's backend. Resolution order: the throttle's own backend, then this,
/// then the registry's default.
///
/// ```
/// use std::sync::Arc;
/// use axum::{Router, extract::Request, middleware::{self, Next}, routing::get};
/// use traffik_axum::RequestBackend;
/// use traffik_axum::prelude::*;
///
/// let tenant_a: Arc<dyn Backend> = Arc::new(MemoryBackend::builder().namespace("tenant-a").build()?);
/// let app: Router = Router::new()
///     .route("/", get(|| async { "hi" }))
///     .layer(middleware::from_fn(move |mut request: Request, next: Next| {
///         let backend = tenant_a.clone(); // pick by a header or the host in a real app
///         async move {
///             request.extensions_mut().insert(RequestBackend::new(backend));
///             next.run(request).await
///         }
///     }));
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RequestBackend(Arc<dyn Backend>);

impl RequestBackend {
    /// Wraps `backend`.
    #[must_use]
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        RequestBackend(backend)
    }

    /// The backend.
    #[must_use]
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.0
    }

    /// The backend a request's extensions carry, if any.
    pub(crate) fn of(extensions: &http::Extensions) -> Option<&Arc<dyn Backend>> {
        extensions
            .get::<RequestBackend>()
            .map(RequestBackend::backend)
    }
}
