//! The registry's rules by uid or uid glob, the throttle lookup and `clear`.

use std::sync::atomic::Ordering;
use std::sync::{PoisonError, RwLockWriteGuard};

use super::{RuleEntry, ThrottleRegistry};
use crate::rule::Rule;
use crate::{ConfigError, Throttle};

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

    fn rules_mut(&self) -> RwLockWriteGuard<'_, Vec<RuleEntry>> {
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
