//! The inputs of a hit (identity, context, rate, cost) and the skip checks, written once for
//! the synchronous path, the asynchronous path, `stat`, refunds and [`hit_all`](super::hit_all).

use std::borrow::Cow;
use std::net::IpAddr;

use super::{Config, HitOptions, Throttle};
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
            config
                .identifier
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
        config: &'a Config<C>,
        connection: &'a C,
        options: &HitOptions<'a>,
        skipped: impl FnOnce(SkipReason) -> T,
        then: impl FnOnce(Resolved<'a>) -> Option<T>,
    ) -> Option<T> {
        let client = match Client::of(
            config
                .identifier
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
