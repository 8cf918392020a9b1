//! [`ThrottleRegistry`]: the live throttles by uid, and the default backend.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, Weak};

use arc_swap::ArcSwapOption;

use crate::ConfigError;
use crate::backend::Backend;

mod rules;

/// What the registry can do to a throttle of any connection type.
pub(crate) trait Control: Send + Sync {
    fn set_disabled(&self, disabled: bool);
    fn is_disabled(&self) -> bool;
    fn set_shadow_mode(&self, shadow: bool);
    fn is_shadow_mode(&self) -> bool;
    /// The throttle's shared state, for [`ThrottleRegistry::get_throttle`] to downcast.
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

/// Rules added for a uid or uid glob, for throttles of one connection type (a
/// `Vec<Rule<C>>` behind `Any`).
struct RuleEntry {
    pattern: Box<str>,
    rules: Box<dyn Any + Send + Sync>,
}

/// The live throttles, by uid (unique per registry), and the backend used by throttles that
/// have none of their own.
///
/// Throttles register when built and unregister when their last handle is dropped. Most
/// programs use [`ThrottleRegistry::global`]; tests and multi-app processes can keep their own.
///
/// ```
/// use traffik_core::{MemoryBackend, Throttle, ThrottleRegistry};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = ThrottleRegistry::new();
/// registry.set_default_backend(MemoryBackend::new());
/// let throttle = Throttle::builder("search", "2/s").registry(&registry).build()?;
/// assert!(registry.contains("search"));
/// assert!(Throttle::builder("search", "9/s").registry(&registry).build().is_err(), "uids are unique");
///
/// registry.disable("search");
/// assert!(throttle.is_disabled());
/// drop(throttle);
/// assert!(!registry.contains("search"));
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct ThrottleRegistry {
    inner: Arc<RegistryInner>,
}

#[derive(Default)]
struct RegistryInner {
    throttles: Mutex<HashMap<String, Weak<dyn Control>>>,
    default_backend: ArcSwapOption<BackendSlot>,
    /// Every throttle of the registry in shadow mode.
    shadow_mode: AtomicBool,
    /// Rules by uid or uid glob ([`ThrottleRegistry::add_rules`]).
    rules: RwLock<Vec<RuleEntry>>,
    /// Bumped by every change of `rules`: 0 while the registry never had any, so a throttle
    /// checks for registry rules with one atomic load.
    rules_generation: AtomicU64,
}

/// A sized holder so the default backend can live in an `ArcSwapOption`.
pub(crate) struct BackendSlot(pub(crate) Arc<dyn Backend>);

impl ThrottleRegistry {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        ThrottleRegistry::default()
    }

    /// The process-wide registry, used by throttles built without `.registry(..)`.
    pub fn global() -> &'static ThrottleRegistry {
        static GLOBAL: OnceLock<ThrottleRegistry> = OnceLock::new();
        GLOBAL.get_or_init(ThrottleRegistry::new)
    }

    fn throttles(&self) -> MutexGuard<'_, HashMap<String, Weak<dyn Control>>> {
        // A panic while holding this lock cannot leave the map inconsistent: recover it.
        self.inner
            .throttles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn register(
        &self,
        uid: &str,
        throttle: Weak<dyn Control>,
    ) -> Result<(), ConfigError> {
        let mut throttles = self.throttles();
        if throttles
            .get(uid)
            .is_some_and(|existing| existing.strong_count() > 0)
        {
            return Err(ConfigError::DuplicateUid {
                uid: uid.to_owned(),
            });
        }
        throttles.insert(uid.to_owned(), throttle);
        Ok(())
    }

    /// Removes `uid` if its throttle is gone (a throttle being dropped calls this).
    pub(crate) fn forget_dropped(&self, uid: &str) {
        let mut throttles = self.throttles();
        if throttles
            .get(uid)
            .is_some_and(|existing| existing.strong_count() == 0)
        {
            throttles.remove(uid);
        }
    }

    fn live(&self, uid: &str) -> Option<Arc<dyn Control>> {
        self.throttles().get(uid).and_then(Weak::upgrade)
    }

    /// Whether a live throttle has this uid.
    #[must_use]
    pub fn contains(&self, uid: &str) -> bool {
        self.live(uid).is_some()
    }

    /// The number of live throttles.
    #[must_use]
    pub fn len(&self) -> usize {
        self.throttles()
            .values()
            .filter(|t| t.strong_count() > 0)
            .count()
    }

    /// Whether no throttle is live.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The uids of the live throttles, sorted.
    #[must_use]
    pub fn uids(&self) -> Vec<String> {
        let mut uids: Vec<String> = self
            .throttles()
            .iter()
            .filter(|(_, t)| t.strong_count() > 0)
            .map(|(uid, _)| uid.clone())
            .collect();
        uids.sort();
        uids
    }

    /// Disables the throttle `uid` (its hits are skipped); whether it exists.
    pub fn disable(&self, uid: &str) -> bool {
        self.live(uid).map(|t| t.set_disabled(true)).is_some()
    }

    /// Enables the throttle `uid` again; whether it exists.
    pub fn enable(&self, uid: &str) -> bool {
        self.live(uid).map(|t| t.set_disabled(false)).is_some()
    }

    /// Whether the throttle `uid` is disabled (`None` if there is none).
    #[must_use]
    pub fn is_disabled(&self, uid: &str) -> Option<bool> {
        self.live(uid).map(|t| t.is_disabled())
    }

    /// Disables every throttle.
    pub fn disable_all(&self) {
        self.each(|t| t.set_disabled(true));
    }

    /// Enables every throttle.
    pub fn enable_all(&self) {
        self.each(|t| t.set_disabled(false));
    }

    /// Turns shadow mode (a dry run) on or off for every throttle of the registry at once, at
    /// run time: hits are decided and stored as usual, but refusals pass as
    /// [`Outcome::ShadowThrottled`](crate::Outcome::ShadowThrottled) decisions. It adds to each
    /// throttle's own switch ([`Throttle::set_shadow_mode`](crate::Throttle::set_shadow_mode)):
    /// a throttle is in shadow mode when either is on.
    ///
    /// ```
    /// use traffik_core::{MemoryBackend, Throttle, ThrottleRegistry};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let registry = ThrottleRegistry::new();
    /// registry.set_default_backend(MemoryBackend::new());
    /// let throttle = Throttle::builder("dry-run", "1/min").registry(&registry).build()?;
    /// registry.set_shadow_mode(true); // say, while rolling out new limits
    /// assert!(throttle.hit("alice").await?.is_allowed());
    /// assert!(throttle.hit("alice").await?.is_shadow_throttled());
    /// registry.set_shadow_mode(false);
    /// assert!(throttle.hit("alice").await?.is_throttled());
    /// # Ok(()) }
    /// ```
    pub fn set_shadow_mode(&self, shadow: bool) {
        self.inner.shadow_mode.store(shadow, Ordering::Release);
    }

    /// Whether the registry-wide shadow mode is on.
    #[must_use]
    pub fn is_shadow_mode(&self) -> bool {
        self.inner.shadow_mode.load(Ordering::Acquire)
    }

    /// Turns the shadow mode of the throttle `uid` on or off; whether it exists.
    pub fn set_throttle_shadow_mode(&self, uid: &str, shadow: bool) -> bool {
        self.live(uid).map(|t| t.set_shadow_mode(shadow)).is_some()
    }

    /// Whether the throttle `uid` has its own shadow mode on (`None` if there is none).
    #[must_use]
    pub fn is_throttle_shadow_mode(&self, uid: &str) -> Option<bool> {
        self.live(uid).map(|t| t.is_shadow_mode())
    }

    fn each(&self, f: impl Fn(&dyn Control)) {
        let live: Vec<Arc<dyn Control>> = self
            .throttles()
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        live.iter().for_each(|t| f(t.as_ref()));
    }

    /// Sets the backend of throttles that have none of their own.
    pub fn set_default_backend(&self, backend: impl Backend) {
        self.set_default_backend_shared(Arc::new(backend));
    }

    /// [`set_default_backend`](Self::set_default_backend) with a shared backend.
    pub fn set_default_backend_shared(&self, backend: Arc<dyn Backend>) {
        self.inner
            .default_backend
            .store(Some(Arc::new(BackendSlot(backend))));
    }

    /// Removes the default backend.
    pub fn clear_default_backend(&self) {
        self.inner.default_backend.store(None);
    }

    pub(crate) fn default_backend(&self) -> arc_swap::Guard<Option<Arc<BackendSlot>>> {
        self.inner.default_backend.load()
    }
}

impl fmt::Debug for ThrottleRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrottleRegistry")
            .field("throttles", &self.uids())
            .finish_non_exhaustive()
    }
}
