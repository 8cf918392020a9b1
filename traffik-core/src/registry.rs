//! [`ThrottleRegistry`]: the live throttles by uid, and the default backend.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, Weak};

use arc_swap::ArcSwapOption;

use crate::backend::Backend;
use crate::rule::Rule;
use crate::{ConfigError, Throttle};

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

/// Rules, the throttle lookup and `clear`.
impl ThrottleRegistry {
    /// Adds rules for the throttle `uid`, or for every throttle whose uid matches the glob
    /// `uid` (`*` matches any run of characters: `"*"` is every throttle, `"api-*"` every uid
    /// starting with `api-`), including throttles built later. They apply to throttles whose
    /// connection type is `C` and are checked on every hit alongside the throttle's own
    /// [`rules`](crate::throttle::ThrottleBuilder::rules); see [`Rule`].
    ///
    /// # Errors
    /// [`ConfigError::UnknownThrottle`] when `uid` is not a glob and no live throttle of the
    /// registry has it (the reference raises the same).
    ///
    /// ```
    /// use traffik_core::{Context, MemoryBackend, SkipReason, Throttle, ThrottleRegistry};
    /// use traffik_core::rule::Rule;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let registry = ThrottleRegistry::new();
    /// registry.set_default_backend(MemoryBackend::new());
    /// let search = Throttle::builder("api-search", "1/min").registry(&registry).build()?;
    /// // Every throttle, now and later: monitoring probes are never limited.
    /// registry.add_rules("*", [Rule::bypass_if(|client: &str, _: &Context| client == "probe")])?;
    /// assert_eq!(search.hit("probe").await?.skip_reason(), Some(SkipReason::Bypassed));
    /// assert!(registry.add_rules("nope", [Rule::<str>::bypass_if(|_, _| true)]).is_err());
    /// # Ok(()) }
    /// ```
    pub fn add_rules<C: ?Sized + 'static>(
        &self,
        uid: &str,
        rules: impl IntoIterator<Item = Rule<C>>,
    ) -> Result<(), ConfigError> {
        if !uid.contains('*') && !self.contains(uid) {
            return Err(ConfigError::UnknownThrottle {
                uid: uid.to_owned(),
            });
        }
        let rules: Vec<Rule<C>> = rules.into_iter().collect();
        self.rules_mut().push(RuleEntry {
            pattern: uid.into(),
            rules: Box::new(rules),
        });
        self.inner.rules_generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// The registry's rules for connections of type `C` that apply to the throttle `uid`: those
    /// added for `uid` and for every glob matching it, in the order they were added.
    #[must_use]
    pub fn get_rules<C: ?Sized + 'static>(&self, uid: &str) -> Vec<Rule<C>> {
        let entries = self
            .inner
            .rules
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        entries
            .iter()
            .filter(|entry| glob_matches(&entry.pattern, uid))
            .filter_map(|entry| entry.rules.downcast_ref::<Vec<Rule<C>>>())
            .flat_map(|rules| rules.iter().cloned())
            .collect()
    }

    /// Removes the rules added for exactly `uid` (a uid or a glob, as given to
    /// [`add_rules`](Self::add_rules)); whether there were any.
    pub fn remove_rules(&self, uid: &str) -> bool {
        let mut entries = self.rules_mut();
        let before = entries.len();
        entries.retain(|entry| &*entry.pattern != uid);
        let removed = entries.len() != before;
        drop(entries);
        if removed {
            self.inner.rules_generation.fetch_add(1, Ordering::AcqRel);
        }
        removed
    }

    /// The live throttle `uid`, if it has connection type `C` (the reference's
    /// `get_throttle`).
    ///
    /// ```
    /// use traffik_core::{MemoryBackend, Throttle, ThrottleRegistry};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let registry = ThrottleRegistry::new();
    /// let _search = Throttle::builder("search", "5/s").backend(MemoryBackend::new()).registry(&registry).build()?;
    /// let found: Throttle = registry.get_throttle("search").expect("live, over str");
    /// assert_eq!(found.uid(), "search");
    /// assert!(registry.get_throttle::<[u8]>("search").is_none(), "another connection type");
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn get_throttle<C: ?Sized + Send + Sync + 'static>(
        &self,
        uid: &str,
    ) -> Option<Throttle<C>> {
        Throttle::from_any(self.live(uid)?.as_any())
    }

    /// Forgets every throttle and every rule (the reference's `clear`): the throttles keep
    /// working, but the registry no longer reaches them (`disable`, `get_throttle`, …) and
    /// their uids are free again. The default backend and the shadow-mode switch stay.
    pub fn clear(&self) {
        self.throttles().clear();
        self.rules_mut().clear();
        self.inner.rules_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The generation of the registry's rules: 0 while it never had any.
    #[inline]
    pub(crate) fn rules_generation(&self) -> u64 {
        self.inner.rules_generation.load(Ordering::Acquire)
    }

    fn rules_mut(&self) -> std::sync::RwLockWriteGuard<'_, Vec<RuleEntry>> {
        self.inner
            .rules
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether `uid` matches `pattern`, where `*` matches any run of characters (none included).
fn glob_matches(pattern: &str, uid: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = uid.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty(); // no `*`: the whole uid
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

impl fmt::Debug for ThrottleRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrottleRegistry")
            .field("throttles", &self.uids())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::glob_matches;

    #[test]
    fn uid_globs_match_any_run_of_characters() {
        for (pattern, uid, expected) in [
            ("*", "anything", true),
            ("*", "", true),
            ("api", "api", true),
            ("api", "api-search", false),
            ("api-*", "api-search", true),
            ("api-*", "api-", true),
            ("api-*", "ap", false),
            ("*-search", "api-search", true),
            ("*-search", "api-searches", false),
            ("a*b*c", "a-b-c", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "a-c-b", false),
            ("ab*ba", "aba", false),
        ] {
            assert_eq!(glob_matches(pattern, uid), expected, "{pattern} ~ {uid}");
        }
    }
}
