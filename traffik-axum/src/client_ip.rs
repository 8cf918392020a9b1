//! [`ClientIp`]: the client's address, from the connection or, behind trusted proxies only,
//! from `Forwarded` / `X-Forwarded-For` / `X-Real-IP`.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::ConnectInfo;
use http::HeaderMap;
use http::header::{FORWARDED, HeaderName};
use http::request::Parts;
use ipnet::{IpNet, Ipv6Net};
use traffik_core::Identity;
use traffik_core::throttle::Identifier;

/// The identity of requests whose peer address is unknown (no `ConnectInfo`).
pub const UNKNOWN_PEER: &str = "unknown-peer";

/// How many proxy hops a forwarding header may name before the rest is ignored.
const MAX_HOPS: usize = 64;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// The client's IP address: the default identity of an HTTP throttle.
///
/// By default it is the TCP peer from axum's [`ConnectInfo<SocketAddr>`](ConnectInfo) (serve
/// with `into_make_service_with_connect_info::<SocketAddr>()`), and forwarding headers are
/// ignored, so a client cannot choose its bucket. Behind a reverse proxy, name the proxies with
/// [`trust`](Self::trust): when (and only when) the peer is one of them, the client is read from
/// `Forwarded` (the `for=` values), else `X-Forwarded-For`, else `X-Real-IP`. Forwarding lists
/// are walked **from the right**, skipping trusted hops and entries that are not addresses; the
/// first untrusted address is the client (what each proxy appended, not what the client wrote).
///
/// A request without `ConnectInfo` is identified as [`UNKNOWN_PEER`]: all such requests share
/// one bucket, and a warning is logged once.
///
/// IPv6 clients can rotate through the addresses of their network; [`ipv6_prefix`](Self::ipv6_prefix)
/// keys them by network (`/64` is what one subscriber usually gets).
///
/// ```
/// use traffik_axum::ClientIp;
///
/// let client_ip = ClientIp::new()
///     .trust(["10.0.0.0/8".parse()?, "127.0.0.1/32".parse()?])
///     .ipv6_prefix(64);
/// # let _ = client_ip.identifier();
/// # Ok::<(), ipnet::AddrParseError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientIp {
    trusted: Arc<[IpNet]>,
    ipv6_prefix: u8,
}

impl Default for ClientIp {
    fn default() -> Self {
        ClientIp::new()
    }
}

impl ClientIp {
    /// The TCP peer, trusting no proxy.
    #[must_use]
    pub fn new() -> Self {
        ClientIp {
            trusted: Arc::from([]),
            ipv6_prefix: 128,
        }
    }

    /// Trusts these proxies (single addresses are `/32` or `/128` networks).
    #[must_use]
    pub fn trust(mut self, proxies: impl IntoIterator<Item = IpNet>) -> Self {
        let mut trusted = self.trusted.to_vec();
        trusted.extend(proxies);
        self.trusted = trusted.into();
        self
    }

    /// Keys IPv6 clients by their first `bits` bits (clamped to 128).
    #[must_use]
    pub fn ipv6_prefix(mut self, bits: u8) -> Self {
        self.ipv6_prefix = bits.min(128);
        self
    }

    /// The client's address, or `None` without `ConnectInfo`.
    #[must_use]
    pub fn resolve(&self, parts: &Parts) -> Option<IpAddr> {
        let peer = canonical(parts.extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip());
        if !self.is_trusted(peer) {
            return Some(peer);
        }
        Some(
            self.client_from_forwarded(&parts.headers)
                .or_else(|| self.client_from_x_forwarded_for(&parts.headers))
                .or_else(|| single_ip(&parts.headers, &X_REAL_IP))
                .unwrap_or(peer),
        )
    }

    /// The key of the client: its address, or its network for IPv6 with a prefix
    /// (`2001:db8:1:2::/64`); `None` without `ConnectInfo`.
    #[must_use]
    pub fn key(&self, parts: &Parts) -> Option<String> {
        let identity = self.identity_of(self.resolve(parts)?);
        identity.key().map(std::borrow::Cow::into_owned)
    }

    /// The identity of a client at `ip`: the address itself (formatted into the storage key
    /// without allocating), or its network.
    fn identity_of(&self, ip: IpAddr) -> Identity<'static> {
        match ip {
            IpAddr::V6(v6) if self.ipv6_prefix < 128 => {
                let network =
                    Ipv6Net::new(v6, self.ipv6_prefix).map_or(v6, |net| net.trunc().addr());
                Identity::from(format!("{network}/{}", self.ipv6_prefix))
            }
            ip => Identity::Address(ip),
        }
    }

    /// This as a throttle identifier.
    #[must_use]
    pub fn identifier(self) -> Identifier<Parts> {
        Identifier::new(move |parts: &Parts| match self.resolve(parts) {
            Some(ip) => self.identity_of(ip),
            None => {
                warn_unknown_peer();
                Identity::from(UNKNOWN_PEER)
            }
        })
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The first untrusted address among `hops`, walking from the right; if every address is
    /// trusted, the leftmost one.
    fn pick<'a>(&self, hops: impl DoubleEndedIterator<Item = &'a str>) -> Option<IpAddr> {
        let mut leftmost = None;
        for hop in hops.rev().take(MAX_HOPS) {
            let Some(ip) = parse_hop(hop) else { continue };
            if !self.is_trusted(ip) {
                return Some(ip);
            }
            leftmost = Some(ip);
        }
        leftmost
    }

    fn client_from_forwarded(&self, headers: &HeaderMap) -> Option<IpAddr> {
        let values: Vec<&str> = headers
            .get_all(FORWARDED)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(forwarded_for)
            .collect();
        self.pick(values.into_iter())
    }

    fn client_from_x_forwarded_for(&self, headers: &HeaderMap) -> Option<IpAddr> {
        let values: Vec<&str> = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect();
        self.pick(values.into_iter())
    }
}

/// The `for=` value of one `Forwarded` element (`for=192.0.2.1;proto=https`).
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("for")
            .then(|| value.trim().trim_matches('"'))
    })
}

/// An address from a forwarding hop: `192.0.2.1`, `192.0.2.1:8080`, `2001:db8::1`,
/// `[2001:db8::1]:8080`; anything else (`unknown`, obfuscated names) is `None`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = IpAddr::from_str(hop) {
        return Some(canonical(ip));
    }
    if let Ok(addr) = SocketAddr::from_str(hop) {
        return Some(canonical(addr.ip()));
    }
    let bracketed = hop.strip_prefix('[')?;
    let inside = &bracketed[..bracketed.find(']')?];
    Ipv6Addr::from_str(inside)
        .ok()
        .map(|ip| canonical(IpAddr::V6(ip)))
}

fn single_ip(headers: &HeaderMap, name: &HeaderName) -> Option<IpAddr> {
    parse_hop(headers.get(name)?.to_str().ok()?)
}

/// IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

fn warn_unknown_peer() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            target: "traffik",
            "a request has no peer address (ConnectInfo<SocketAddr>): every such request shares the `{UNKNOWN_PEER}` bucket; serve with `into_make_service_with_connect_info::<SocketAddr>()`"
        );
    }
}

#[cfg(test)]
mod tests {
    use http::Request;

    use super::*;

    fn parts(peer: Option<&str>, headers: &[(&str, &[u8])]) -> Parts {
        let mut builder = Request::builder();
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let (mut parts, ()) = builder.body(()).unwrap().into_parts();
        if let Some(peer) = peer {
            parts
                .extensions
                .insert(ConnectInfo(SocketAddr::from_str(peer).unwrap()));
        }
        parts
    }

    fn proxied() -> ClientIp {
        ClientIp::new().trust(["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()])
    }

    fn key(client: &ClientIp, peer: &str, headers: &[(&str, &[u8])]) -> Option<String> {
        client.key(&parts(Some(peer), headers))
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let spoof: &[(&str, &[u8])] = &[
            ("x-forwarded-for", b"1.2.3.4"),
            ("forwarded", b"for=1.2.3.4"),
            ("x-real-ip", b"1.2.3.4"),
        ];
        assert_eq!(
            key(&proxied(), "203.0.113.9:5000", spoof).unwrap(),
            "203.0.113.9"
        );
        assert_eq!(
            key(&ClientIp::new(), "10.0.0.1:5000", spoof).unwrap(),
            "10.0.0.1"
        );
    }

    #[test]
    fn behind_trusted_proxies_the_first_untrusted_hop_from_the_right_is_the_client() {
        let client = proxied();
        let xff = |value: &'static [u8]| key(&client, "10.0.0.1:1", &[("x-forwarded-for", value)]);
        assert_eq!(xff(b"198.51.100.7").unwrap(), "198.51.100.7");
        // The client wrote a fake first hop; the proxies appended the real one.
        assert_eq!(
            xff(b"1.1.1.1, 198.51.100.7, 10.0.0.2").unwrap(),
            "198.51.100.7"
        );
        // Non-addresses are skipped; ports and brackets are understood.
        assert_eq!(
            xff(b"198.51.100.7:4711, unknown, 10.0.0.3").unwrap(),
            "198.51.100.7"
        );
        assert_eq!(xff(b"[2001:db8::7]:443").unwrap(), "2001:db8::7");
        // Only proxies: the leftmost one; nothing usable: the peer.
        assert_eq!(xff(b"10.0.0.9, 10.0.0.2").unwrap(), "10.0.0.9");
        assert_eq!(xff(b"garbage, ,,;").unwrap(), "10.0.0.1");
    }

    #[test]
    fn forwarded_comes_before_x_forwarded_for_then_x_real_ip() {
        let client = proxied();
        let both: &[(&str, &[u8])] = &[
            (
                "forwarded",
                b"for=\"[2001:db8::1]:80\";proto=https, For = 10.0.0.5",
            ),
            ("x-forwarded-for", b"198.51.100.1"),
        ];
        assert_eq!(key(&client, "10.0.0.1:1", both).unwrap(), "2001:db8::1");
        let real: &[(&str, &[u8])] = &[("x-real-ip", b"198.51.100.2")];
        assert_eq!(key(&client, "[::1]:1", real).unwrap(), "198.51.100.2");
    }

    #[test]
    fn hostile_headers_never_panic_and_fall_back_to_the_peer() {
        let client = proxied();
        let huge = vec![b'9'; 64 * 1024];
        let many = b"x,".repeat(10_000);
        for value in [
            &b"\xff\xfe not utf-8"[..],
            &huge,
            &many,
            b"for=",
            b"[::1",
            b"[]:80",
            b"1.2.3.4.5",
        ] {
            for name in ["x-forwarded-for", "forwarded", "x-real-ip"] {
                assert_eq!(
                    key(&client, "10.0.0.1:1", &[(name, value)]).unwrap(),
                    "10.0.0.1",
                    "{name}: {value:?}"
                );
            }
        }
    }

    #[test]
    fn ipv6_clients_can_be_keyed_by_network() {
        let client = ClientIp::new().ipv6_prefix(64);
        assert_eq!(
            key(&client, "[2001:db8:1:2:aaaa::1]:1", &[]).unwrap(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            key(&client, "[2001:db8:1:2:bbbb::9]:1", &[]).unwrap(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(key(&client, "192.0.2.1:1", &[]).unwrap(), "192.0.2.1");
        // IPv4-mapped peers are IPv4 clients.
        assert_eq!(
            key(&ClientIp::new(), "[::ffff:192.0.2.1]:1", &[]).unwrap(),
            "192.0.2.1"
        );
    }

    #[test]
    fn without_connect_info_there_is_no_address_and_the_identifier_uses_the_shared_bucket() {
        let parts = parts(None, &[("x-forwarded-for", b"1.2.3.4")]);
        assert_eq!(ClientIp::new().resolve(&parts), None);
        let throttle =
            traffik_core::throttle::ThrottleBuilder::new("client-ip-unknown-peer", "1/min")
                .identifier(ClientIp::new().identifier())
                .backend(traffik_core::MemoryBackend::new())
                .build()
                .unwrap();
        let first = throttle
            .try_hit_now(&parts, Default::default())
            .unwrap()
            .unwrap();
        assert!(first.is_allowed());
        let other = self::parts(None, &[]);
        assert!(
            throttle
                .try_hit_now(&other, Default::default())
                .unwrap()
                .unwrap()
                .is_throttled()
        );
    }
}
