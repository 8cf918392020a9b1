//! [`ClientIp`]: the client's address, from the connection or, behind trusted proxies only,
//! from the one header they write ([`ProxyHeader`]).

mod proxy_header;
mod trusted_proxies;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::ConnectInfo;
use http::request::Parts;
use ipnet::Ipv6Net;
use traffik_core::Identity;
use traffik_core::throttle::Identifier;

pub use proxy_header::ProxyHeader;
pub use trusted_proxies::{InvalidProxyNetwork, TrustedProxies};

use proxy_header::canonical;

/// The identity of requests whose peer address is unknown (no `ConnectInfo`).
pub const UNKNOWN_PEER: &str = "unknown-peer";

/// The default IPv6 prefix clients are keyed by: one subscriber usually holds a whole `/64`.
pub const DEFAULT_IPV6_PREFIX: u8 = 64;

/// The client's IP address: the default identity of an HTTP throttle.
///
/// [`ClientIp::new`] is the TCP peer from axum's [`ConnectInfo<SocketAddr>`](ConnectInfo)
/// (serve with `into_make_service_with_connect_info::<SocketAddr>()`); every forwarding header
/// is ignored, so a client cannot choose its bucket.
///
/// Behind proxies, [`ClientIp::behind`] names **the one header the proxy writes** and **which
/// hops are trusted** ([`TrustedProxies`]: networks and/or a hop count). The walk starts at the
/// TCP peer (hop 1) and moves left through the header's entries while the current hop is
/// trusted; the client is where it stops:
///
/// - the first hop that is not trusted (what a trusted proxy said its peer was);
/// - or, when an entry is not an address (`unknown`, `_hidden`, garbage), the last trusted hop
///   itself: nothing to the left of such an entry was written by a proxy we trust, so it is
///   never used;
/// - or, when the header has no more entries, the last hop read.
///
/// A peer that is not trusted is the client, whatever it sends. Headers other than the named
/// one are never read (the `Forwarded` a client sends through a proxy that writes
/// `X-Forwarded-For` is ignored). At most 64 entries are read, from the right.
///
/// IPv6 clients are keyed by their `/64` network by default ([`DEFAULT_IPV6_PREFIX`]): one
/// subscriber usually holds a whole `/64` and could otherwise rotate addresses to escape its
/// limit (better-auth, express-rate-limit and actix-governor key by `/56` or `/64` too).
/// [`ipv6_prefix`](Self::ipv6_prefix) changes it, down to `/128` (one address).
///
/// A request without `ConnectInfo` is identified as [`UNKNOWN_PEER`]: all such requests share
/// one bucket, and a warning is logged once.
///
/// ```
/// use traffik_axum::{ClientIp, ProxyHeader, TrustedProxies};
///
/// // nginx on the same host appends the peer to X-Forwarded-For.
/// let behind_nginx = ClientIp::behind(ProxyHeader::XForwardedFor, TrustedProxies::loopback());
/// // Every address of an IPv6 client counted alone.
/// let per_address = ClientIp::new().ipv6_prefix(128);
/// # let _ = (behind_nginx.identifier(), per_address);
/// ```
#[derive(Debug, Clone)]
pub struct ClientIp {
    proxy: Option<Arc<Proxy>>,
    ipv6_prefix: u8,
}

#[derive(Debug)]
struct Proxy {
    header: ProxyHeader,
    trusted: TrustedProxies,
}

impl Default for ClientIp {
    fn default() -> Self {
        ClientIp::new()
    }
}

impl ClientIp {
    /// The TCP peer, trusting no proxy; IPv6 peers keyed by `/64`.
    #[must_use]
    pub fn new() -> Self {
        ClientIp {
            proxy: None,
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
        }
    }

    /// The client as the `trusted` proxies report it in `header` (see the type's docs for the
    /// walk); IPv6 clients keyed by `/64`.
    #[must_use]
    pub fn behind(header: ProxyHeader, trusted: TrustedProxies) -> Self {
        ClientIp {
            proxy: Some(Arc::new(Proxy { header, trusted })),
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
        }
    }

    /// Keys IPv6 clients by their first `bits` bits (default 64; 128 keys every address on its
    /// own; values above 128 are 128).
    #[must_use]
    pub fn ipv6_prefix(mut self, bits: u8) -> Self {
        self.ipv6_prefix = bits.min(128);
        self
    }

    /// The client's address, or `None` without `ConnectInfo`.
    #[must_use]
    pub fn resolve(&self, parts: &Parts) -> Option<IpAddr> {
        let peer = canonical(parts.extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip());
        let Some(proxy) = &self.proxy else {
            return Some(peer);
        };
        if !proxy.trusted.trusts(peer, 1) {
            return Some(peer);
        }
        let mut client = peer;
        for (index, entry) in proxy.header.entries(&parts.headers).into_iter().enumerate() {
            // Not an address: stop at the last trusted hop.
            let Some(hop) = entry else { break };
            client = hop;
            if !proxy.trusted.trusts(hop, index + 2) {
                break;
            }
        }
        Some(client)
    }

    /// The key of the client: its address, or its network for IPv6 with a prefix below 128
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
        Identifier::new(move |parts: &Parts| {
            if let Some(ip) = self.resolve(parts) {
                self.identity_of(ip)
            } else {
                warn_unknown_peer();
                Identity::from(UNKNOWN_PEER)
            }
        })
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
    use std::str::FromStr;

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

    fn private(header: ProxyHeader) -> ClientIp {
        ClientIp::behind(
            header,
            TrustedProxies::parse_networks(["10.0.0.0/8", "::1"]).unwrap(),
        )
    }

    fn key(client: &ClientIp, peer: &str, headers: &[(&str, &[u8])]) -> String {
        client.key(&parts(Some(peer), headers)).unwrap()
    }

    const SPOOF: &[(&str, &[u8])] = &[
        ("x-forwarded-for", b"1.2.3.4"),
        ("forwarded", b"for=1.2.3.4"),
        ("x-real-ip", b"1.2.3.4"),
        ("cf-connecting-ip", b"1.2.3.4"),
    ];

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let client = private(ProxyHeader::XForwardedFor);
        assert_eq!(key(&client, "203.0.113.9:5000", SPOOF), "203.0.113.9");
        assert_eq!(key(&ClientIp::new(), "10.0.0.1:5000", SPOOF), "10.0.0.1");
    }

    #[test]
    fn behind_trusted_proxies_the_first_untrusted_hop_from_the_right_is_the_client() {
        let client = private(ProxyHeader::XForwardedFor);
        let xff = |value: &'static [u8]| key(&client, "10.0.0.1:1", &[("x-forwarded-for", value)]);
        assert_eq!(xff(b"198.51.100.7"), "198.51.100.7");
        // The client wrote a fake first hop; the proxies appended the real one.
        assert_eq!(xff(b"1.1.1.1, 198.51.100.7, 10.0.0.2"), "198.51.100.7");
        // Ports and brackets are understood.
        assert_eq!(xff(b"198.51.100.7:4711, 10.0.0.3"), "198.51.100.7");
        assert_eq!(xff(b"[2001:db8::7]:443"), "2001:db8::/64");
        // Only proxies: the last one read; no header: the peer.
        assert_eq!(xff(b"10.0.0.9, 10.0.0.2"), "10.0.0.9");
        assert_eq!(key(&client, "10.0.0.1:1", &[]), "10.0.0.1");
    }

    #[test]
    fn only_the_named_header_is_read() {
        // The proxy writes X-Forwarded-For and passes the client's own Forwarded through.
        let xff = private(ProxyHeader::XForwardedFor);
        let headers: &[(&str, &[u8])] = &[
            ("forwarded", b"for=198.51.100.1"),
            ("x-forwarded-for", b"203.0.113.5"),
        ];
        assert_eq!(key(&xff, "10.0.0.1:1", headers), "203.0.113.5");
        // The proxy sets X-Real-IP; the client's X-Forwarded-For is ignored.
        let real = private(ProxyHeader::XRealIp);
        let headers: &[(&str, &[u8])] = &[
            ("x-forwarded-for", b"198.51.100.1"),
            ("x-real-ip", b"203.0.113.5"),
        ];
        assert_eq!(key(&real, "10.0.0.1:1", headers), "203.0.113.5");
        let forwarded = private(ProxyHeader::Forwarded);
        let headers: &[(&str, &[u8])] = &[
            (
                "forwarded",
                b"for=\"[2001:db8::1]:80\";proto=https, For = 10.0.0.5",
            ),
            ("x-forwarded-for", b"198.51.100.1"),
        ];
        assert_eq!(key(&forwarded, "10.0.0.1:1", headers), "2001:db8::/64");
        for header in [
            ProxyHeader::CfConnectingIp,
            ProxyHeader::TrueClientIp,
            ProxyHeader::FlyClientIp,
        ] {
            let client = private(header.clone());
            let name = header.name();
            let headers: &[(&str, &[u8])] = &[
                ("x-forwarded-for", b"198.51.100.1"),
                (name.as_str(), b"203.0.113.5"),
            ];
            assert_eq!(
                key(&client, "10.0.0.1:1", headers),
                "203.0.113.5",
                "{header:?}"
            );
        }
    }

    #[test]
    fn an_entry_that_is_not_an_address_stops_the_walk_at_the_last_trusted_hop() {
        let xff = private(ProxyHeader::XForwardedFor);
        for value in [
            &b"198.51.100.7, unknown"[..],
            b"198.51.100.7, garbage, 10.0.0.3",
        ] {
            let expected = if value.ends_with(b"10.0.0.3") {
                "10.0.0.3"
            } else {
                "10.0.0.1"
            };
            assert_eq!(
                key(&xff, "10.0.0.1:1", &[("x-forwarded-for", value)]),
                expected,
                "{value:?}"
            );
        }
        let forwarded = private(ProxyHeader::Forwarded);
        for value in [
            &b"for=198.51.100.7, for=unknown"[..],
            b"for=198.51.100.7, for=_hidden",
            b"for=198.51.100.7, proto=https",
        ] {
            assert_eq!(
                key(&forwarded, "10.0.0.1:1", &[("forwarded", value)]),
                "10.0.0.1",
                "{value:?}"
            );
        }
        // A single header that is a list, or comes twice, is not an address.
        let real = private(ProxyHeader::XRealIp);
        assert_eq!(
            key(
                &real,
                "10.0.0.1:1",
                &[("x-real-ip", b"198.51.100.7, 203.0.113.5")]
            ),
            "10.0.0.1"
        );
    }

    #[test]
    fn a_hop_count_trusts_that_many_hops_whatever_their_addresses() {
        let one = ClientIp::behind(ProxyHeader::XForwardedFor, TrustedProxies::hops(1));
        let two = ClientIp::behind(ProxyHeader::XForwardedFor, TrustedProxies::hops(2));
        let chain: &[(&str, &[u8])] = &[("x-forwarded-for", b"1.1.1.1, 198.51.100.7, 203.0.113.2")];
        assert_eq!(key(&one, "192.0.2.1:1", chain), "203.0.113.2");
        assert_eq!(key(&two, "192.0.2.1:1", chain), "198.51.100.7");
        // Fewer entries than trusted hops: the last one read.
        assert_eq!(
            key(&two, "192.0.2.1:1", &[("x-forwarded-for", b"203.0.113.2")]),
            "203.0.113.2"
        );
        // Networks and a hop count: both must hold.
        let both = ClientIp::behind(
            ProxyHeader::XForwardedFor,
            TrustedProxies::parse_networks(["10.0.0.0/8"])
                .unwrap()
                .within_hops(1),
        );
        let chain: &[(&str, &[u8])] = &[("x-forwarded-for", b"198.51.100.7, 10.0.0.2")];
        assert_eq!(key(&both, "10.0.0.1:1", chain), "10.0.0.2");
        assert_eq!(key(&both, "192.0.2.1:1", chain), "192.0.2.1");
    }

    #[test]
    fn hostile_headers_never_panic_and_fall_back_to_the_peer() {
        let huge = vec![b'9'; 64 * 1024];
        let many = b"x,".repeat(10_000);
        for header in [
            ProxyHeader::XForwardedFor,
            ProxyHeader::Forwarded,
            ProxyHeader::XRealIp,
        ] {
            let client = private(header.clone());
            let name = header.name();
            for value in [
                &b"\xff\xfe not utf-8"[..],
                &huge,
                &many,
                b"for=",
                b"for=\"",
                b"\"\"\"",
                b"[::1",
                b"[]:80",
                b"1.2.3.4.5",
            ] {
                assert_eq!(
                    key(&client, "10.0.0.1:1", &[(name.as_str(), value)]),
                    "10.0.0.1",
                    "{header:?}: {value:?}"
                );
            }
        }
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_by_default() {
        let client = ClientIp::new();
        assert_eq!(
            key(&client, "[2001:db8:1:2:aaaa::1]:1", &[]),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            key(&client, "[2001:db8:1:2:bbbb::9]:1", &[]),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            key(&client, "[2001:db8:1:3::1]:1", &[]),
            "2001:db8:1:3::/64"
        );
        assert_eq!(key(&client, "192.0.2.1:1", &[]), "192.0.2.1");
        let wide = ClientIp::new().ipv6_prefix(56);
        assert_eq!(
            key(&wide, "[2001:db8:1:2ff::1]:1", &[]),
            "2001:db8:1:200::/56"
        );
        let exact = ClientIp::new().ipv6_prefix(200);
        assert_eq!(
            key(&exact, "[2001:db8:1:2:aaaa::1]:1", &[]),
            "2001:db8:1:2:aaaa::1"
        );
        // IPv4-mapped peers are IPv4 clients.
        assert_eq!(key(&client, "[::ffff:192.0.2.1]:1", &[]), "192.0.2.1");
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
            .try_hit_now(&parts, traffik_core::throttle::HitOptions::default())
            .unwrap()
            .unwrap();
        assert!(first.is_allowed());
        let other = self::parts(None, &[]);
        assert!(
            throttle
                .try_hit_now(&other, traffik_core::throttle::HitOptions::default())
                .unwrap()
                .unwrap()
                .is_throttled()
        );
    }
}
