//! [`ProxyHeader`]: the one header a trusted proxy writes the client's address into, and how
//! its entries are read.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use http::header::{FORWARDED, HeaderName};
use http::{HeaderMap, HeaderValue};

/// How many entries of a forwarding list are read, from the right; the rest is ignored.
pub(super) const MAX_HOPS: usize = 64;

/// The header a trusted proxy writes the client's address into: the only source of the client
/// address behind proxies. Every header not named is ignored, so a client cannot pick its
/// bucket by sending one the proxy passes through untouched.
///
/// List headers (`Forwarded`, `X-Forwarded-For`, [`List`](Self::List)) get one entry per proxy,
/// each appending its own peer; single headers (`X-Real-IP`, the CDN headers,
/// [`Single`](Self::Single)) hold one address that the proxy *sets*, replacing anything the
/// client sent. A single header that arrives more than once, or holds a list, is not an
/// address.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyHeader {
    /// `Forwarded` (RFC 7239): each proxy appends an element whose `for=` names its peer.
    Forwarded,
    /// `X-Forwarded-For`: each proxy appends its peer's address (nginx
    /// `$proxy_add_x_forwarded_for`, AWS ALB, Kubernetes ingress-nginx).
    XForwardedFor,
    /// `X-Real-IP`: one address, set by the proxy (nginx `proxy_set_header X-Real-IP
    /// $remote_addr`).
    XRealIp,
    /// `CF-Connecting-IP`: set by Cloudflare.
    CfConnectingIp,
    /// `True-Client-IP`: set by Akamai and Cloudflare Enterprise.
    TrueClientIp,
    /// `Fly-Client-IP`: set by Fly.io's edge proxy.
    FlyClientIp,
    /// Another header holding one address that the proxy sets.
    Single(HeaderName),
    /// Another header holding a comma-separated list of addresses, each proxy appending its
    /// peer (as `X-Forwarded-For` does), such as ingress-nginx's `X-Original-Forwarded-For`.
    List(HeaderName),
}

/// One entry of a forwarding header: an address, or something that is not one (`unknown`, an
/// obfuscated `_name`, garbage).
pub(super) type Entry = Option<IpAddr>;

impl ProxyHeader {
    /// The header's name.
    #[must_use]
    pub fn name(&self) -> HeaderName {
        match self {
            ProxyHeader::Forwarded => FORWARDED,
            ProxyHeader::XForwardedFor => HeaderName::from_static("x-forwarded-for"),
            ProxyHeader::XRealIp => HeaderName::from_static("x-real-ip"),
            ProxyHeader::CfConnectingIp => HeaderName::from_static("cf-connecting-ip"),
            ProxyHeader::TrueClientIp => HeaderName::from_static("true-client-ip"),
            ProxyHeader::FlyClientIp => HeaderName::from_static("fly-client-ip"),
            ProxyHeader::Single(name) | ProxyHeader::List(name) => name.clone(),
        }
    }

    /// The header's entries, nearest hop first (right to left), at most [`MAX_HOPS`].
    pub(super) fn entries(&self, headers: &HeaderMap) -> VecDeque<Entry> {
        let name = self.name();
        let values = headers.get_all(&name);
        match self {
            ProxyHeader::Forwarded => last_entries(
                values
                    .iter()
                    .flat_map(|value| forwarded_elements(value.as_bytes()))
                    .map(|element| forwarded_for(element).and_then(parse_hop)),
            ),
            ProxyHeader::XForwardedFor | ProxyHeader::List(_) => last_entries(
                values
                    .iter()
                    .flat_map(|value| value.as_bytes().split(|&byte| byte == b','))
                    .map(parse_hop),
            ),
            _ => {
                let mut values = values.iter();
                let entry = match (values.next(), values.next()) {
                    (Some(value), None) => single(value),
                    (None, _) => return VecDeque::new(),
                    (Some(_), Some(_)) => None,
                };
                VecDeque::from([entry])
            }
        }
    }
}

/// The last [`MAX_HOPS`] entries of a list written left to right, nearest hop first.
fn last_entries(entries: impl Iterator<Item = Entry>) -> VecDeque<Entry> {
    let mut kept = VecDeque::new();
    for entry in entries {
        if kept.len() == MAX_HOPS {
            kept.pop_back();
        }
        kept.push_front(entry);
    }
    kept
}

fn single(value: &HeaderValue) -> Entry {
    let bytes = value.as_bytes();
    if bytes.contains(&b',') {
        return None;
    }
    parse_hop(bytes)
}

/// The elements of a `Forwarded` value, split at every comma. RFC 7239 lets a quoted string
/// hold a comma, but no node (`for=` value) ever does, and honouring quotes would let a client
/// open one (`for=1.2.3.4;x="`) that swallows what the proxy appends after it. A quoted value
/// split this way is just an entry that is not an address.
fn forwarded_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&byte| byte == b',')
}

/// The `for=` value of one `Forwarded` element (`for=192.0.2.1;proto=https`), unquoted.
fn forwarded_for(element: &[u8]) -> Option<&[u8]> {
    element.split(|&byte| byte == b';').find_map(|pair| {
        let at = pair.iter().position(|&byte| byte == b'=')?;
        let (key, value) = (pair[..at].trim_ascii(), pair[at + 1..].trim_ascii());
        key.eq_ignore_ascii_case(b"for").then(|| {
            value
                .strip_prefix(b"\"")
                .and_then(|inner| inner.strip_suffix(b"\""))
                .unwrap_or(value)
        })
    })
}

/// An address from a forwarding entry: `192.0.2.1`, `192.0.2.1:8080`, `2001:db8::1`,
/// `[2001:db8::1]:8080`; anything else (`unknown`, `_hidden`, not UTF-8) is `None`.
pub(super) fn parse_hop(hop: &[u8]) -> Entry {
    let hop = std::str::from_utf8(hop.trim_ascii()).ok()?;
    if let Ok(ip) = IpAddr::from_str(hop) {
        return Some(canonical(ip));
    }
    if let Ok(address) = SocketAddr::from_str(hop) {
        return Some(canonical(address.ip()));
    }
    let bracketed = hop.strip_prefix('[')?;
    let inside = &bracketed[..bracketed.find(']')?];
    Ipv6Addr::from_str(inside)
        .ok()
        .map(|ip| canonical(IpAddr::V6(ip)))
}

/// IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) as the IPv4 address they carry.
pub(super) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(header: &ProxyHeader, values: &[&[u8]]) -> Vec<Entry> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header.name(), HeaderValue::from_bytes(value).unwrap());
        }
        header.entries(&headers).into_iter().collect()
    }

    #[allow(clippy::unnecessary_wraps)] // builds an expected `Entry`, which is an `Option`
    fn ip(text: &str) -> Entry {
        Some(text.parse().unwrap())
    }

    #[test]
    fn list_headers_read_right_to_left_across_lines() {
        assert_eq!(
            entries(
                &ProxyHeader::XForwardedFor,
                &[b"198.51.100.1, unknown", b"[2001:db8::1]:443,10.0.0.1:80"]
            ),
            vec![ip("10.0.0.1"), ip("2001:db8::1"), None, ip("198.51.100.1")]
        );
        let custom = ProxyHeader::List(HeaderName::from_static("x-original-forwarded-for"));
        assert_eq!(entries(&custom, &[b"1.2.3.4"]), vec![ip("1.2.3.4")]);
    }

    #[test]
    fn forwarded_reads_the_for_value_of_each_element() {
        assert_eq!(
            entries(
                &ProxyHeader::Forwarded,
                &[b"for=198.51.100.7;proto=https, For=\"[2001:db8::1]:80\", by=10.0.0.1, for=_hidden, for=\"a,b\";by=x"]
            ),
            vec![None, None, None, None, ip("2001:db8::1"), ip("198.51.100.7")]
        );
    }

    #[test]
    fn a_quote_the_client_leaves_open_cannot_swallow_the_proxys_entry() {
        // The client sent `for=1.2.3.4;x="`; the proxy appended its peer to the same line.
        assert_eq!(
            entries(
                &ProxyHeader::Forwarded,
                &[b"for=1.2.3.4;x=\", for=198.51.100.7"]
            ),
            vec![ip("198.51.100.7"), ip("1.2.3.4")]
        );
    }

    #[test]
    fn a_non_utf8_entry_spoils_only_itself() {
        assert_eq!(
            entries(&ProxyHeader::XForwardedFor, &[b"\xff\xfe, 203.0.113.5"]),
            vec![ip("203.0.113.5"), None]
        );
    }

    #[test]
    fn single_headers_hold_exactly_one_address() {
        assert_eq!(
            entries(&ProxyHeader::XRealIp, &[b" 203.0.113.5 "]),
            vec![ip("203.0.113.5")]
        );
        assert_eq!(entries(&ProxyHeader::XRealIp, &[]), vec![]);
        assert_eq!(
            entries(&ProxyHeader::CfConnectingIp, &[b"1.2.3.4, 5.6.7.8"]),
            vec![None]
        );
        assert_eq!(
            entries(&ProxyHeader::FlyClientIp, &[b"1.2.3.4", b"5.6.7.8"]),
            vec![None]
        );
        assert_eq!(
            entries(&ProxyHeader::TrueClientIp, &[b"unknown"]),
            vec![None]
        );
        assert_eq!(
            entries(&ProxyHeader::XRealIp, &[b"::ffff:192.0.2.1"]),
            vec![ip("192.0.2.1")]
        );
    }

    #[test]
    fn long_lists_keep_only_the_nearest_hops() {
        let mut value = b"9.9.9.9,".repeat(1_000);
        value.extend_from_slice(b"1.1.1.1");
        let read = entries(&ProxyHeader::XForwardedFor, &[&value]);
        assert_eq!(read.len(), MAX_HOPS);
        assert_eq!(read[0], ip("1.1.1.1"));
    }

    #[test]
    fn names() {
        assert_eq!(ProxyHeader::Forwarded.name(), "forwarded");
        assert_eq!(ProxyHeader::TrueClientIp.name(), "true-client-ip");
        assert_eq!(
            ProxyHeader::Single(HeaderName::from_static("x-client-ip")).name(),
            "x-client-ip"
        );
    }
}
