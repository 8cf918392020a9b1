//! Every throttle declared in code is built at start-up by one call, which reports every
//! configuration error at once: a duplicate uid between a `throttle_policy!` static and an
//! attribute's throttle, an invalid uid, a strategy that cannot work at its rate.

use traffik_axum::prelude::*;
use traffik_axum::{HttpThrottle, build_declared_throttles, throttle_policy, throttled};

throttle_policy! {
    /// Fine on its own.
    pub Search = HttpThrottle::builder("declared:search", "10/min").build();
    /// Takes the uid the attribute below also gives its throttle.
    pub Export = HttpThrottle::builder("declared:export", "5/min").build();
    /// Not a valid uid.
    pub Spaced = HttpThrottle::builder("declared with spaces", "5/min").build();
}

#[throttled("2/min", uid = "declared:export")]
async fn export() -> &'static str {
    "export"
}

#[throttled("2/s", "20/min")]
async fn list() -> &'static str {
    "list"
}

#[throttled("10/min", strategy = Gcra::new().burst(0))]
async fn broken_burst() -> &'static str {
    "never"
}

#[test]
fn one_call_builds_every_declared_throttle_and_reports_every_error() {
    ThrottleRegistry::global().set_default_backend(MemoryBackend::new());
    let errors = build_declared_throttles().unwrap_err();
    let reported: Vec<String> = errors.errors.iter().map(ToString::to_string).collect();
    assert_eq!(reported.len(), 3, "{errors}");
    // The duplicate: one of the two declarations of `declared:export` was built first.
    let duplicate = reported
        .iter()
        .find(|line| line.contains("must be unique"))
        .unwrap_or_else(|| panic!("no duplicate uid reported: {errors}"));
    assert!(duplicate.contains("declared:export"), "{duplicate}");
    assert!(
        duplicate.starts_with("declared::Export") || duplicate.starts_with("declared::export[0]"),
        "{duplicate}"
    );
    assert!(
        reported
            .iter()
            .any(|line| line.starts_with("declared::Spaced") && line.contains("uid")),
        "{errors}"
    );
    assert!(
        reported
            .iter()
            .any(|line| line.starts_with("declared::broken_burst[0]")),
        "{errors}"
    );
    // The rest were built: the two limits of `list` and `Search`.
    assert!(ThrottleRegistry::global().contains("declared:search"));
    assert!(ThrottleRegistry::global().contains("declared.list.0"));
    assert!(ThrottleRegistry::global().contains("declared.list.1"));
    // Building again finds the same errors and builds nothing twice.
    assert_eq!(build_declared_throttles().unwrap_err().errors.len(), 3);
    let _ = (export, list, broken_burst);
}
