//! The inputs of a hit (identity, context, rate, cost) and the skip checks, written once for
//! the synchronous path, the asynchronous path, `stat`, refunds and [`hit_all`](super::hit_all).

use std::borrow::Cow;
use std::net::IpAddr;

use super::{Config, HitOptions, Identifier, Throttle};
use crate::key::KeyIdentity;
use crate::{Context, Identity, Rate, SkipReason};

/// What a hit needs once its inputs are resolved. Never exempted, never skipped.
pub(super) struct Resolved<'a> {
    pub(super) client: Client<'a>,
    pub(super) context: Cow<'a, Context>,
    pub(super) rate: Rate,
    pub(super) cost: u64,
}

/// Who a hit belongs to: an identity that is not exempted.
pub(super) enum Client<'a> {
    Text(Cow<'a, str>),
    Address(IpAddr),
}

impl Client<'_> {
    /// The exempted check: `Err(Exempted)` for [`Identity::Exempted`].
    #[inline]
    fn of(identity: Identity<'_>) -> Result<Client<'_>, SkipReason> {
        match identity {
            Identity::Key(key) => Ok(Client::Text(key)),
            Identity::Address(ip) => Ok(Client::Address(ip)),
            Identity::Exempted => Err(SkipReason::Exempted),
        }
    }

    /// The client as a key writes it.
    #[inline]
    pub(super) fn key(&self) -> KeyIdentity<'_> {
        match self {
            Client::Text(text) => KeyIdentity::Text(text),
            Client::Address(ip) => KeyIdentity::Address(*ip),
        }
    }
}

/// Whether a hit's cost is resolved: a decision needs it, `stat` does not (it reads the state
/// as a hit of cost 1 would).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cost {
    Resolve,
    One,
}

impl<C: ?Sized + Send + Sync + 'static> Throttle<C> {
    /// The skips known before any input is resolved: a disabled throttle, a per-call cost of 0.
    #[inline]
    pub(super) fn skip_early(&self, options: &HitOptions<'_>) -> Option<SkipReason> {
        if self.is_disabled() {
            Some(SkipReason::Disabled)
        } else if options.cost == Some(0) {
            Some(SkipReason::ZeroCost)
        } else {
            None
        }
    }

    /// The identifier of a hit: the throttle's (already the backend's when the throttle has a
    /// backend of its own that names one), else, for a throttle that set none itself, the one
    /// the hit's backend (the per-hit one, else the registry's default) names.
    #[inline]
    pub(super) fn identifier_of<'c>(
        &self,
        config: &'c Config<C>,
        options: &HitOptions<'_>,
    ) -> Cow<'c, Identifier<C>> {
        if config.explicit_identifier || config.backend.is_some() {
            return Cow::Borrowed(&config.identifier);
        }
        let named = match options.backend {
            Some(backend) => backend.extensions().get::<Identifier<C>>().cloned(),
            None => self
                .inner
                .registry
                .default_backend()
                .as_ref()
                .and_then(|slot| slot.0.extensions().get::<Identifier<C>>().cloned()),
        };
        named.map_or(Cow::Borrowed(&config.identifier), Cow::Owned)
    }

    /// Identity, context, rate and cost of a hit, or why it is skipped (exempted, unlimited,
    /// cost 0).
    pub(super) async fn resolve<'a>(
        &self,
        config: &'a Config<C>,
        connection: &'a C,
        options: &HitOptions<'a>,
        cost: Cost,
    ) -> Result<Resolved<'a>, SkipReason> {
        let client = Client::of(
            self.identifier_of(config, options)
                .identify(connection, options.identities)
                .await,
        )?;
        let context = merged_context(options.context, &config.context);
        let rate = config.rate.resolve(connection, &context).await;
        let cost = match (options.cost, cost_matters(cost, rate)) {
            (_, false) => 1,
            (Some(cost), true) => cost,
            (None, true) => config.cost.resolve(connection, &context).await,
        };
        skip_resolved(rate, cost)?;
        Ok(Resolved {
            client,
            context,
            rate,
            cost,
        })
    }

    /// [`resolve`](Self::resolve) without awaiting, handing the inputs to `then` (or the skip
    /// to `skipped`): `None` when an input is asynchronous. Written as a continuation so that
    /// the resolved inputs stay in registers instead of moving through an
    /// `Option<Result<Resolved, _>>` (about 50 instructions a hit).
    #[inline]
    pub(super) fn resolve_now<'a, T>(
        &self,
        config: &'a Config<C>,
        connection: &'a C,
        options: &HitOptions<'a>,
        skipped: impl FnOnce(SkipReason) -> T,
        then: impl FnOnce(Resolved<'a>) -> Option<T>,
    ) -> Option<T> {
        let client = match Client::of(
            self.identifier_of(config, options)
                .identify_now(connection, options.identities)?,
        ) {
            Ok(client) => client,
            Err(skip) => return Some(skipped(skip)),
        };
        let context = merged_context(options.context, &config.context);
        let rate = config
            .rate
            .resolve(connection, &context)
            .into_ready()
            .ok()?;
        let cost = match (options.cost, cost_matters(Cost::Resolve, rate)) {
            (_, false) => 1,
            (Some(cost), true) => cost,
            (None, true) => config
                .cost
                .resolve(connection, &context)
                .into_ready()
                .ok()?,
        };
        if let Err(skip) = skip_resolved(rate, cost) {
            return Some(skipped(skip));
        }
        then(Resolved {
            client,
            context,
            rate,
            cost,
        })
    }
}

/// Whether the cost is worth resolving: not for `stat`, not at an unlimited rate (where the
/// hit is skipped whatever it costs).
#[inline]
fn cost_matters(cost: Cost, rate: Rate) -> bool {
    cost == Cost::Resolve && !rate.is_unlimited()
}

/// The skips known once the rate and cost are: an unlimited rate, a cost of 0.
#[inline]
fn skip_resolved(rate: Rate, cost: u64) -> Result<(), SkipReason> {
    if rate.is_unlimited() {
        Err(SkipReason::Unlimited)
    } else if cost == 0 {
        Err(SkipReason::ZeroCost)
    } else {
        Ok(())
    }
}

/// The call's context merged over the throttle's.
#[inline]
pub(super) fn merged_context<'a>(call: Option<&'a Context>, base: &'a Context) -> Cow<'a, Context> {
    match call {
        Some(call) if base.is_empty() => Cow::Borrowed(call),
        Some(call) if !call.is_empty() => Cow::Owned(call.merged_over(base)),
        _ => Cow::Borrowed(base),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::backend::Backend;
    use crate::throttle::{HitOptions, Identifier};
    use crate::{Identity, MemoryBackend, Throttle, ThrottleRegistry};

    /// A backend whose throttles count per tenant (the part of the key before `/`).
    fn per_tenant() -> MemoryBackend {
        let tenant =
            Identifier::new(|key: &str| Identity::from(key.split('/').next().unwrap_or(key)));
        MemoryBackend::builder().extension(tenant).build().unwrap()
    }

    async fn shared(throttle: &Throttle, options: HitOptions<'_>) -> bool {
        assert!(
            throttle
                .hit_with("acme/alice", options)
                .await
                .unwrap()
                .is_allowed()
        );
        throttle
            .hit_with("acme/bob", options)
            .await
            .unwrap()
            .is_throttled()
    }

    #[tokio::test]
    async fn a_backend_names_the_identifier_of_throttles_that_set_none() {
        let registry = ThrottleRegistry::new();
        registry.set_default_backend(per_tenant());
        let on_default = Throttle::builder("backend-id-default", "1/min")
            .registry(&registry)
            .build()
            .unwrap();
        assert!(
            shared(&on_default, HitOptions::new()).await,
            "the registry's default"
        );

        let bare = ThrottleRegistry::new();
        let per_hit = Throttle::builder("backend-id-per-hit", "1/min")
            .registry(&bare)
            .build()
            .unwrap();
        let backend: Arc<dyn Backend> = Arc::new(per_tenant());
        assert!(
            shared(&per_hit, HitOptions::new().backend(&backend)).await,
            "per hit"
        );

        let updated = Throttle::builder("backend-id-updated", "1/min")
            .registry(&bare)
            .backend(MemoryBackend::new())
            .build()
            .unwrap();
        assert!(
            !shared(&updated, HitOptions::new()).await,
            "its backend names none"
        );
        updated
            .update_backend(Some(Arc::new(per_tenant())))
            .unwrap();
        assert!(
            shared(&updated, HitOptions::new()).await,
            "the new backend's"
        );
    }

    #[tokio::test]
    async fn a_throttles_own_identifier_wins_over_the_backends() {
        let explicit = Throttle::builder("backend-id-explicit", "1/min")
            .registry(&ThrottleRegistry::new())
            .identifier(Identifier::new(|key: &str| Identity::from(key)))
            .backend(per_tenant())
            .build()
            .unwrap();
        assert!(
            !shared(&explicit, HitOptions::new()).await,
            "per key, as it says"
        );
        let updated = Throttle::builder("backend-id-explicit-later", "1/min")
            .registry(&ThrottleRegistry::new())
            .backend(per_tenant())
            .build()
            .unwrap();
        updated
            .update_identifier(Identifier::new(|key: &str| Identity::from(key)))
            .unwrap();
        assert!(!shared(&updated, HitOptions::new()).await);
    }
}
