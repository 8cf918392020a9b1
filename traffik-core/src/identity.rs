//! [`Identity`]: who a hit is counted against, or [`EXEMPTED`].

use std::borrow::Cow;
use std::fmt::{self, Write};
use std::net::{IpAddr, Ipv4Addr};

/// The result of an identifier: the client's key, or an exemption.
///
/// ```
/// use traffik_core::{EXEMPTED, Identity};
///
/// let alice = Identity::from("user:alice");
/// assert_eq!(alice.key().as_deref(), Some("user:alice"));
/// let peer = Identity::from(std::net::IpAddr::from([192, 0, 2, 7]));
/// assert_eq!(peer.key().as_deref(), Some("192.0.2.7"));
/// assert!(EXEMPTED.is_exempted());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity<'a> {
    /// Count the hit against this key (an IP address, a user id, an API key, …).
    Key(Cow<'a, str>),
    /// Count the hit against this IP address, keyed by its text form (written into the key
    /// without allocating: the identity of most HTTP requests).
    Address(IpAddr),
    /// Skip the throttle entirely: no backend call, nothing consumed.
    Exempted,
}

/// The identity that skips a throttle entirely.
pub const EXEMPTED: Identity<'static> = Identity::Exempted;

impl Identity<'_> {
    /// The key, unless exempted.
    #[must_use]
    pub fn key(&self) -> Option<Cow<'_, str>> {
        match self {
            Identity::Key(key) => Some(Cow::Borrowed(key)),
            Identity::Address(ip) => Some(Cow::Owned(AddressText::of(*ip).as_str().to_owned())),
            Identity::Exempted => None,
        }
    }

    /// Whether this is [`EXEMPTED`].
    #[must_use]
    pub fn is_exempted(&self) -> bool {
        matches!(self, Identity::Exempted)
    }

    /// An owned copy that outlives the borrowed input.
    #[must_use]
    pub fn into_owned(self) -> Identity<'static> {
        match self {
            Identity::Key(key) => Identity::Key(Cow::Owned(key.into_owned())),
            Identity::Address(ip) => Identity::Address(ip),
            Identity::Exempted => Identity::Exempted,
        }
    }
}

impl<'a> From<&'a str> for Identity<'a> {
    fn from(key: &'a str) -> Self {
        Identity::Key(Cow::Borrowed(key))
    }
}

impl From<String> for Identity<'static> {
    fn from(key: String) -> Self {
        Identity::Key(Cow::Owned(key))
    }
}

impl<'a> From<Cow<'a, str>> for Identity<'a> {
    fn from(key: Cow<'a, str>) -> Self {
        Identity::Key(key)
    }
}

impl From<IpAddr> for Identity<'static> {
    fn from(ip: IpAddr) -> Self {
        Identity::Address(ip)
    }
}

/// An IP address's text on the stack (an IPv6 address takes at most 39 bytes; IPv4-mapped
/// forms up to 45).
pub(crate) struct AddressText {
    bytes: [u8; 45],
    len: usize,
}

impl AddressText {
    /// The text of `ip`: dotted decimal for IPv4 (without the formatting machinery, which costs
    /// ten times as much), the standard compressed form for IPv6.
    pub(crate) fn of(ip: IpAddr) -> Self {
        let mut text = AddressText {
            bytes: [0; 45],
            len: 0,
        };
        match ip {
            IpAddr::V4(v4) => text.push_v4(v4),
            IpAddr::V6(v6) => {
                let _ = write!(text, "{v6}");
            }
        }
        text
    }

    fn push_v4(&mut self, ip: Ipv4Addr) {
        for (i, octet) in ip.octets().into_iter().enumerate() {
            if i > 0 {
                self.push(b'.');
            }
            if octet >= 100 {
                self.push(b'0' + octet / 100);
            }
            if octet >= 10 {
                self.push(b'0' + octet / 10 % 10);
            }
            self.push(b'0' + octet % 10);
        }
    }

    fn push(&mut self, byte: u8) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII is ever pushed.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl Write for AddressText {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        text.bytes().for_each(|byte| self.push(byte));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_text_matches_display() {
        for ip in [
            "0.0.0.0",
            "1.2.3.4",
            "10.20.30.40",
            "100.200.250.255",
            "255.255.255.255",
            "9.99.100.109",
            "::",
            "::1",
            "2001:db8::7",
            "2001:db8:85a3:1234:5678:8a2e:370:7334",
            "::ffff:192.0.2.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(AddressText::of(ip).as_str(), ip.to_string());
        }
    }
}
