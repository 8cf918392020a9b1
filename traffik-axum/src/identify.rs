//! Ready-made identifiers over request [`Parts`]: by a header (an API key), by a value an
//! earlier layer put in the extensions (an authenticated user). Both fall back to a
//! [`ClientIp`] when the request lacks what they look for, so anonymous clients are still
//! limited one by one. For anything else, write an
//! [`Identifier`] (`Identifier::new`, or `Identifier::from_async` for a lookup) and return
//! [`EXEMPTED`](traffik_core::EXEMPTED) to skip the throttle.

use std::borrow::Cow;

use http::HeaderName;
use http::request::Parts;
use traffik_core::Identity;
use traffik_core::throttle::Identifier;

use crate::client_ip::ClientIp;

/// Identifies clients by the value of header `name` (an API key, say), or by `fallback` when
/// the header is absent. A value that is not UTF-8 is keyed by its lossy text; keys are escaped
/// (and very long ones hashed) when stored, so no value can reach another client's key.
///
/// ```
/// use http::HeaderName;
/// use traffik_axum::{ClientIp, HttpThrottle, identify};
/// use traffik_axum::prelude::*;
///
/// let per_key = HttpThrottle::builder("doc-identify-header", "100/min")
///     .identifier(identify::header(HeaderName::from_static("x-api-key"), ClientIp::new()))
///     .backend(MemoryBackend::new())
///     .build()?;
/// # let _ = per_key;
/// # Ok::<(), ConfigError>(())
/// ```
#[must_use]
pub fn header(name: HeaderName, fallback: ClientIp) -> Identifier<Parts> {
    let fallback = fallback.identifier();
    Identifier::new(move |parts: &Parts| match parts.headers.get(&name) {
        Some(value) => match String::from_utf8_lossy(value.as_bytes()) {
            Cow::Borrowed(text) => Identity::from(text),
            Cow::Owned(text) => Identity::from(text),
        },
        None => fallback_identity(&fallback, parts),
    })
}

/// Identifies clients by a value of type `T` in the request's extensions (put there by an
/// authentication layer, say), through `key`; by `fallback` when there is none. `key` may
/// return [`EXEMPTED`](traffik_core::EXEMPTED) (for administrators, say).
///
/// ```
/// use traffik_axum::{ClientIp, HttpThrottle, identify};
/// use traffik_axum::prelude::*;
///
/// #[derive(Clone)]
/// struct User { id: String, admin: bool }
///
/// let per_user = HttpThrottle::builder("doc-identify-extension", "100/min")
///     .identifier(identify::extension(
///         |user: &User| if user.admin { EXEMPTED } else { Identity::from(user.id.as_str()) },
///         ClientIp::new(),
///     ))
///     .backend(MemoryBackend::new())
///     .build()?;
/// # let _ = per_user;
/// # Ok::<(), ConfigError>(())
/// ```
#[must_use]
pub fn extension<T, F>(key: F, fallback: ClientIp) -> Identifier<Parts>
where
    T: Send + Sync + 'static,
    F: for<'a> Fn(&'a T) -> Identity<'a> + Send + Sync + 'static,
{
    let fallback = fallback.identifier();
    Identifier::new(move |parts: &Parts| match parts.extensions.get::<T>() {
        Some(value) => key(value),
        None => fallback_identity(&fallback, parts),
    })
}

fn fallback_identity<'a>(fallback: &Identifier<Parts>, parts: &'a Parts) -> Identity<'a> {
    fallback
        .call_now(parts)
        .unwrap_or_else(|| Identity::from(crate::client_ip::UNKNOWN_PEER))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::extract::ConnectInfo;
    use http::Request;
    use traffik_core::EXEMPTED;

    use super::*;

    fn parts(headers: &[(&str, &[u8])]) -> Parts {
        let mut builder = Request::builder();
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let (mut parts, ()) = builder.body(()).unwrap().into_parts();
        parts
            .extensions
            .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 9], 1))));
        parts
    }

    fn key(identifier: &Identifier<Parts>, parts: &Parts) -> Option<String> {
        identifier
            .call_now(parts)
            .and_then(|identity| identity.key().map(Cow::into_owned))
    }

    #[test]
    fn header_values_or_the_client_ip() {
        let by_key = header(HeaderName::from_static("x-api-key"), ClientIp::new());
        assert_eq!(
            key(&by_key, &parts(&[("x-api-key", b"alice")])).unwrap(),
            "alice"
        );
        assert_eq!(key(&by_key, &parts(&[])).unwrap(), "192.0.2.9");
        assert_eq!(
            key(&by_key, &parts(&[("x-api-key", b"\xffbob")])).unwrap(),
            "\u{fffd}bob"
        );
    }

    #[test]
    fn extension_values_exemptions_or_the_client_ip() {
        #[derive(Clone)]
        struct User(&'static str);
        let by_user = extension(
            |user: &User| match user.0 {
                "root" => EXEMPTED,
                id => Identity::from(id),
            },
            ClientIp::new(),
        );
        let mut request = parts(&[]);
        assert_eq!(key(&by_user, &request).unwrap(), "192.0.2.9");
        request.extensions.insert(User("u42"));
        assert_eq!(key(&by_user, &request).unwrap(), "u42");
        request.extensions.insert(User("root"));
        assert!(by_user.call_now(&request).unwrap().is_exempted());
    }
}
