//! Which backend decides a hit, and the client's key in it: the resolution order written once
//! for every path.

use std::sync::Arc;

use super::{Config, HitOptions, Throttle};
use crate::ThrottleError;
use crate::backend::{Backend, KeyValueStore, Lane};
use crate::key::{KeyIdentity, KeyTemplate, write_key};
use crate::registry::BackendSlot;

impl<C: ?Sized + Send + Sync + 'static> Throttle<C> {
    /// The backend a hit goes to and the key template its keys take (when it is the
    /// throttle's own). The order: the throttle's own backend, else the one in the options,
    /// else the registry's default, loaded into `default` (which the selection borrows);
    /// `None` when there is none anywhere ([`no_backend`](Self::no_backend)). Nothing is
    /// cloned: the synchronous path decides on the borrow.
    #[inline]
    pub(super) fn select<'c>(
        &self,
        config: &'c Config<C>,
        options: &HitOptions<'c>,
        default: &'c mut Option<DefaultBackend>,
    ) -> Option<Selected<'c>> {
        if let Some(backend) = &config.backend {
            return Some(Selected {
                backend,
                template: config.key_template.as_ref(),
                lane: config.lane.as_ref(),
            });
        }
        if let Some(backend) = options.backend {
            return Some(Selected {
                backend,
                template: None,
                lane: None,
            });
        }
        let slot = default.insert(self.inner.registry.default_backend());
        slot.as_ref().map(|slot| Selected {
            backend: &slot.0,
            template: None,
            lane: None,
        })
    }

    /// The error of a hit with no backend anywhere.
    #[cold]
    pub(super) fn no_backend(&self) -> ThrottleError {
        ThrottleError::NoBackend {
            uid: self.inner.uid.to_string(),
        }
    }

    /// The backend of a hit (shared) and the client's key in it.
    pub(super) fn locate(
        &self,
        config: &Config<C>,
        options: &HitOptions<'_>,
        client: KeyIdentity<'_>,
    ) -> Result<(Arc<dyn Backend>, String), ThrottleError> {
        let mut default = None;
        let selected = self
            .select(config, options, &mut default)
            .ok_or_else(|| self.no_backend())?;
        let mut key = String::new();
        selected.write_key(&mut key, self, config, client, options.scope);
        Ok((Arc::clone(selected.backend), key))
    }

    /// The key-value store of `backend`, for a key-value strategy.
    pub(super) fn key_value_store<'b>(
        &self,
        backend: &'b dyn Backend,
        strategy: &'static str,
    ) -> Result<&'b dyn KeyValueStore, ThrottleError> {
        backend
            .key_value()
            .ok_or_else(|| ThrottleError::UnsupportedStrategy {
                uid: self.inner.uid.to_string(),
                strategy,
                backend: backend.name().to_owned(),
            })
    }
}

/// The registry's default backend, loaded for one hit.
pub(super) type DefaultBackend = arc_swap::Guard<Option<Arc<BackendSlot>>>;

/// The backend a hit goes to, borrowed for the length of the decision.
pub(super) struct Selected<'b> {
    pub(super) backend: &'b Arc<dyn Backend>,
    template: Option<&'b KeyTemplate>,
    /// The way into the backend's entries without a key, when it is the throttle's own
    /// in-memory backend.
    pub(super) lane: Option<&'b Lane>,
}

impl Selected<'_> {
    /// Writes the client's storage key on this backend into `out`.
    #[inline]
    pub(super) fn write_key<C: ?Sized>(
        &self,
        out: &mut String,
        throttle: &Throttle<C>,
        config: &Config<C>,
        client: KeyIdentity<'_>,
        scope: Option<&str>,
    ) {
        match self.template {
            Some(template) => template.write(out, client, scope),
            None => write_key(
                out,
                self.backend.namespace(),
                &throttle.inner.uid,
                client,
                scope,
                config.strategy.name(),
            ),
        }
    }
}
