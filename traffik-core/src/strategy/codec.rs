//! The stored form of a strategy's state: versioned JSON, `[version, state]`.
//!
//! JSON keeps the format explicit and readable by a Lua script (`cjson`) as well as by Rust;
//! the version guards against misreading state written by another release.

use super::Strategy;

/// Why stored state could not be read. The executor treats such state as absent (logging a
/// warning) rather than failing the request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateDecodeError {
    /// The stored text is not the strategy's state.
    #[error("stored state of strategy `{strategy}` is malformed: {source}")]
    Malformed {
        /// The strategy's name.
        strategy: &'static str,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The state was written with another encoding version.
    #[error("stored state of strategy `{strategy}` has version {found}, expected {expected}")]
    Version {
        /// The strategy's name.
        strategy: &'static str,
        /// The version found.
        found: u32,
        /// The version this build writes.
        expected: u32,
    },
}

/// Encodes a state as `[version, state]`.
///
/// ```
/// use traffik_core::strategy::{FixedWindow, WindowState, decode_state, encode_state};
///
/// let state = WindowState { window: 29_400_000, count: 7 };
/// let text = encode_state::<FixedWindow>(&state);
/// assert_eq!(text, r#"[1,{"window":29400000,"count":7}]"#);
/// assert_eq!(decode_state::<FixedWindow>(&text)?, state);
/// # Ok::<(), traffik_core::strategy::StateDecodeError>(())
/// ```
#[must_use]
pub fn encode_state<S: Strategy>(state: &S::State) -> String {
    // Serialising plain integer structs to a String cannot fail.
    serde_json::to_string(&(S::STATE_VERSION, state)).unwrap_or_default()
}

/// Decodes what [`encode_state`] wrote.
///
/// # Errors
///
/// [`StateDecodeError::Malformed`] when `text` is not a `[version, state]` pair of this
/// strategy's state, [`StateDecodeError::Version`] when it was written with another
/// [`Strategy::STATE_VERSION`].
pub fn decode_state<S: Strategy>(text: &str) -> Result<S::State, StateDecodeError> {
    // The common case in one typed pass (no intermediate JSON tree); a failure takes the path
    // below, which tells a wrong version from malformed text.
    if let Ok((version, state)) = serde_json::from_str::<(u32, S::State)>(text)
        && version == S::STATE_VERSION
    {
        return Ok(state);
    }
    let (version, state): (u32, serde_json::Value) =
        serde_json::from_str(text).map_err(|source| StateDecodeError::Malformed {
            strategy: S::NAME,
            source,
        })?;
    if version != S::STATE_VERSION {
        return Err(StateDecodeError::Version {
            strategy: S::NAME,
            found: version,
            expected: S::STATE_VERSION,
        });
    }
    serde_json::from_value(state).map_err(|source| StateDecodeError::Malformed {
        strategy: S::NAME,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::{FixedWindow, Gcra, GcraState};

    #[test]
    fn rejects_other_versions_and_garbage() {
        assert!(matches!(
            decode_state::<FixedWindow>(r#"[2,{"window":1,"count":1}]"#),
            Err(StateDecodeError::Version {
                found: 2,
                expected: 1,
                ..
            })
        ));
        assert!(matches!(
            decode_state::<FixedWindow>("not json"),
            Err(StateDecodeError::Malformed { .. })
        ));
        assert!(matches!(
            decode_state::<FixedWindow>(r#"[1,{"tat":1}]"#),
            Err(StateDecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn round_trips_every_field() {
        let state = GcraState {
            tat: 1_700_000_000_123,
            remainder: 2,
            per_ms: 3,
        };
        let text = encode_state::<Gcra>(&state);
        assert_eq!(decode_state::<Gcra>(&text).unwrap(), state);
    }
}
