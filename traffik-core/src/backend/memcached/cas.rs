//! Decisions, refunds and reads by compare-and-swap: read the state and its token, apply the
//! strategy's pure transition, and write the new state only if the key still holds what was
//! read. A lost race reads again after a short random wait, a bounded number of times; running
//! out is a typed error (`BackendError::Contention`), never an admission.

use std::time::Duration;

use super::commands::{self, Written, state_value, ttl_flag};
use super::{Inner, NAME};
use crate::backend::{BackendError, Mode};
use crate::strategy::{DynStrategy, Hit, Refund};
use crate::{Decision, Millis, StrategyStat};

impl Inner {
    /// One decision on `key`.
    pub(super) async fn decide(
        &self,
        key: &str,
        strategy: &dyn DynStrategy,
        hit: Hit<'_>,
        mode: Mode,
    ) -> Result<Decision, BackendError> {
        let (server, stored_key) = self.locate(key).await?;
        for attempt in 0..self.cas_attempts {
            if attempt > 0 {
                back_off(attempt).await;
            }
            let stored = self.get(server, &stored_key, "decide").await?;
            let read = stored
                .as_ref()
                .and_then(|stored| stored.live_state(hit.now));
            let transition = strategy.apply_encoded(read, &hit);
            // Nothing to write when only looking, or when the state and its expiry are what is
            // stored (a refusal that changes nothing); a new expiry alone (the rate changed) is
            // written, as the in-memory backend recomputes it on every charge.
            let unchanged = transition.state.as_deref() == read
                && (read.is_none()
                    || stored.as_ref().and_then(commands::Stored::expires_at)
                        == transition.expires_at);
            if mode == Mode::Peek || unchanged {
                return Ok(transition.decision);
            }
            let written = match (&transition.state, transition.expires_at, &stored) {
                (Some(state), Some(expires_at), _) if expires_at > hit.now => {
                    let ttl = ttl_flag(expires_at, hit.now);
                    let cas = stored.as_ref().map(|stored| stored.cas);
                    let value = state_value(state, expires_at);
                    self.write(server, &stored_key, &value, &ttl, cas, "decide")
                        .await?
                }
                (_, _, Some(stored)) => {
                    self.delete(server, &stored_key, stored.cas, "decide")
                        .await?
                }
                (_, _, None) => Written::Done,
            };
            if written == Written::Done {
                return Ok(transition.decision);
            }
            self.lost_race();
        }
        Err(self.contention(key))
    }

    /// Returns a charge on `key` ([`DynStrategy::refund_encoded`]), by compare-and-swap too.
    pub(super) async fn refund(
        &self,
        key: &str,
        strategy: &dyn DynStrategy,
        hit: Hit<'_>,
        now: Millis,
    ) -> Result<Refund, BackendError> {
        let (server, stored_key) = self.locate(key).await?;
        for attempt in 0..self.cas_attempts {
            if attempt > 0 {
                back_off(attempt).await;
            }
            let stored = self.get(server, &stored_key, "refund").await?;
            let read = stored.as_ref().and_then(commands::Stored::state);
            let refunded = strategy.refund_encoded(read, &hit);
            let Some(state) = &refunded.state else {
                return Ok(refunded.refund);
            };
            let written = match (state, refunded.expires_at, &stored) {
                (Some(state), Some(expires_at), _) if expires_at > now => {
                    let ttl = ttl_flag(expires_at, now);
                    let cas = stored.as_ref().map(|stored| stored.cas);
                    let value = state_value(state, expires_at);
                    self.write(server, &stored_key, &value, &ttl, cas, "refund")
                        .await?
                }
                (_, _, Some(stored)) => {
                    self.delete(server, &stored_key, stored.cas, "refund")
                        .await?
                }
                (_, _, None) => Written::Done,
            };
            if written == Written::Done {
                return Ok(refunded.refund);
            }
            self.lost_race();
        }
        Err(self.contention(key))
    }

    /// The client's state, without consuming.
    pub(super) async fn stat(
        &self,
        key: &str,
        strategy: &dyn DynStrategy,
        hit: Hit<'_>,
    ) -> Result<StrategyStat, BackendError> {
        let (server, stored_key) = self.locate(key).await?;
        let stored = self.get(server, &stored_key, "stat").await?;
        let mut stat = strategy.stat_encoded(
            stored
                .as_ref()
                .and_then(|stored| stored.live_state(hit.now)),
            &hit,
        );
        key.clone_into(&mut stat.key);
        Ok(stat)
    }

    /// The error of a decision (or generation change) that lost every attempt.
    pub(super) fn contention(&self, key: &str) -> BackendError {
        BackendError::Contention {
            backend: NAME.to_owned(),
            key: key.to_owned(),
            attempts: self.cas_attempts,
        }
    }
}

/// Waits before attempt `attempt` (from 1) after a lost race: a random time up to 1, 2, 4, 8,
/// then 16 ms ("full jitter", from `fastrand` as `Retry`'s: decision 0011), so that writers
/// racing on one hot key spread out instead of colliding again at once.
async fn back_off(attempt: u32) {
    let ceiling_ms = 1_u64 << attempt.saturating_sub(1).min(4);
    let wait = fastrand::u64(0..=ceiling_ms);
    if wait == 0 {
        tokio::task::yield_now().await;
    } else {
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
}
