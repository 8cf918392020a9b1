//! Refunds: returning a charge a throttle admitted.

use super::resolve::Cost;
use super::{StrategyRef, Throttle};
use crate::ThrottleError;
use crate::strategy::{Hit, Refund};
use crate::throttle::HitOptions;

impl<C: ?Sized + Send + Sync + 'static> Throttle<C> {
    /// Returns a charge this throttle admitted for `connection`, as if the hit had never been
    /// admitted (see [`Strategy::refund`](crate::strategy::Strategy::refund) for what each
    /// strategy returns).
    ///
    /// `options` must be those of the hit, with [`now`](HitOptions::now) set to the time the
    /// hit used: read it with [`Throttle::now`] and pass it to both. The identity, context,
    /// rate, cost, scope and backend are resolved again from `connection` and `options`, so the
    /// refund reaches the same key and returns the same cost. Without `now`, the refund takes
    /// the current time as the charge's, which is exact for the bucket strategies and GCRA but
    /// may miss a window that has just ended.
    ///
    /// A refund is not an admission: it does not skip for a disabled throttle, and an exempted
    /// client, an unlimited rate or a zero cost has nothing to return ([`Refund::Lapsed`]).
    /// Key-value strategies cannot refund ([`Refund::Unsupported`]).
    ///
    /// ```
    /// use traffik_core::{MemoryBackend, Throttle, throttle::HitOptions};
    /// use traffik_core::strategy::Refund;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let throttle = Throttle::builder("refund-doc", "2/min").backend(MemoryBackend::new()).build()?;
    /// let charge = HitOptions::new().now(throttle.now());
    /// assert!(throttle.hit_with("alice", charge).await?.is_allowed());
    /// assert!(throttle.hit_with("alice", charge).await?.is_allowed());
    /// // Something else refused the request: give the second charge back.
    /// assert_eq!(throttle.refund_with("alice", charge).await?, Refund::Returned);
    /// assert!(throttle.hit("alice").await?.is_allowed());
    /// # Ok(()) }
    /// ```
    pub async fn refund_with(
        &self,
        connection: &C,
        options: HitOptions<'_>,
    ) -> Result<Refund, ThrottleError> {
        let config = self.inner.config.load_full();
        let StrategyRef::Pure(strategy) = &config.strategy else {
            return Ok(Refund::Unsupported);
        };
        // An exempted client, an unlimited rate or a cost of 0 was never charged.
        let Ok(resolved) = self
            .resolve(&config, connection, &options, Cost::Resolve)
            .await
        else {
            return Ok(Refund::Lapsed);
        };
        let (backend, key) = self.locate(&config, &options, resolved.client.key())?;
        let now = self.now();
        let charge = Hit::new(
            options.now.unwrap_or(now),
            resolved.rate,
            resolved.cost,
            &resolved.context,
        );
        backend
            .refund(&key, strategy.as_ref(), charge, now)
            .await
            .map_err(|source| ThrottleError::Backend {
                uid: self.uid().to_owned(),
                source,
            })
    }
}
