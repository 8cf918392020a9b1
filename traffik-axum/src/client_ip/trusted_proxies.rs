//! [`TrustedProxies`]: which hops in front of the application are its own proxies.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

/// Which hops of a request's path are the application's own proxies, whose forwarding header
/// is believed.
///
/// Hop 1 is the TCP peer; hop 2 is the address hop 1 wrote into the forwarding header (its own
/// peer); hop 3 the one to its left, and so on. A hop is trusted when:
///
/// | configured | a hop is trusted when |
/// |---|---|
/// | [`networks`](Self::networks) | its address is in one of the networks |
/// | [`hops`](Self::hops) | it is among the first `count` hops, whatever its address (express's `trust proxy N`) |
/// | both ([`networks`](Self::networks) then [`within_hops`](Self::within_hops)) | both hold |
///
/// ```
/// use traffik_axum::TrustedProxies;
///
/// // The load balancers of a VPC, and no more than two of them in a row.
/// let vpc = TrustedProxies::parse_networks(["10.0.0.0/16", "10.1.0.7"])?.within_hops(2);
/// // Exactly one proxy, wherever it is (a platform's edge proxy the app is only reachable through).
/// let edge = TrustedProxies::hops(1);
/// # let _ = (vpc, edge);
/// # Ok::<(), traffik_axum::InvalidProxyNetwork>(())
/// ```
#[derive(Clone, Default)]
pub struct TrustedProxies {
    networks: Option<Arc<[IpNet]>>,
    hops: Option<usize>,
}

/// A trusted proxy network that is neither an address nor a network in CIDR notation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not an IP address or a network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`)"
)]
pub struct InvalidProxyNetwork {
    /// The text that did not parse.
    pub input: String,
}

impl TrustedProxies {
    /// Trusts the hops whose address is in one of `networks` (a single address is a `/32` or
    /// `/128` network).
    #[must_use]
    pub fn networks(networks: impl IntoIterator<Item = IpNet>) -> Self {
        TrustedProxies {
            networks: Some(networks.into_iter().collect()),
            hops: None,
        }
    }

    /// [`networks`](Self::networks) from text: networks in CIDR notation or single addresses
    /// (`"10.0.0.0/8"`, `"127.0.0.1"`, `"::1"`), as they come from configuration.
    ///
    /// # Errors
    ///
    /// [`InvalidProxyNetwork`] for the first entry that is neither a network nor an address.
    pub fn parse_networks<I, S>(networks: I) -> Result<Self, InvalidProxyNetwork>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let parsed = networks
            .into_iter()
            .map(|text| {
                let text = text.as_ref().trim();
                text.parse::<IpNet>()
                    .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| InvalidProxyNetwork {
                        input: text.to_owned(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::networks(parsed))
    }

    /// Trusts the first `count` hops, whatever their addresses (hop 1 is the TCP peer). Use it
    /// when the application can only be reached through exactly `count` proxies.
    #[must_use]
    pub fn hops(count: usize) -> Self {
        TrustedProxies {
            networks: None,
            hops: Some(count),
        }
    }

    /// Also requires a trusted hop to be among the first `count` hops.
    #[must_use]
    pub fn within_hops(mut self, count: usize) -> Self {
        self.hops = Some(count);
        self
    }

    /// The loopback networks (`127.0.0.0/8`, `::1`): a proxy on the same host.
    #[must_use]
    pub fn loopback() -> Self {
        Self::networks(["127.0.0.0/8", "::1/128"].map(network))
    }

    /// The private networks (RFC 1918 `10/8`, `172.16/12`, `192.168/16`; RFC 4193 `fc00::/7`)
    /// and loopback: proxies inside the same private network, such as a Kubernetes ingress or
    /// a cloud load balancer in the application's VPC.
    #[must_use]
    pub fn private_networks() -> Self {
        Self::networks(
            [
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "127.0.0.0/8",
                "fc00::/7",
                "::1/128",
            ]
            .map(network),
        )
    }

    /// Whether hop number `position` (1 = the TCP peer), at `ip`, is a trusted proxy.
    pub(crate) fn trusts(&self, ip: IpAddr, position: usize) -> bool {
        if self.networks.is_none() && self.hops.is_none() {
            return false;
        }
        let by_network = self
            .networks
            .as_ref()
            .is_none_or(|networks| networks.iter().any(|net| net.contains(&ip)));
        let by_position = self.hops.is_none_or(|hops| position <= hops);
        by_network && by_position
    }
}

fn network(text: &str) -> IpNet {
    match text.parse() {
        Ok(network) => network,
        Err(error) => unreachable!("the built-in network {text} is valid: {error}"),
    }
}

impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedProxies")
            .field("networks", &self.networks.as_deref())
            .field("hops", &self.hops)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_hops_and_both() {
        let networks = TrustedProxies::parse_networks(["10.0.0.0/8", "192.0.2.1"]).unwrap();
        assert!(networks.trusts(ip("10.9.9.9"), 7));
        assert!(networks.trusts(ip("192.0.2.1"), 1));
        assert!(!networks.trusts(ip("192.0.2.2"), 1));

        let hops = TrustedProxies::hops(2);
        assert!(hops.trusts(ip("203.0.113.1"), 1));
        assert!(hops.trusts(ip("203.0.113.1"), 2));
        assert!(!hops.trusts(ip("203.0.113.1"), 3));

        let both = networks.within_hops(1);
        assert!(both.trusts(ip("10.0.0.1"), 1));
        assert!(!both.trusts(ip("10.0.0.1"), 2));
        assert!(!both.trusts(ip("203.0.113.1"), 1));
    }

    #[test]
    fn nothing_configured_trusts_nothing() {
        assert!(!TrustedProxies::default().trusts(ip("127.0.0.1"), 1));
        assert!(!TrustedProxies::hops(0).trusts(ip("127.0.0.1"), 1));
        assert!(!TrustedProxies::networks([]).trusts(ip("127.0.0.1"), 1));
    }

    #[test]
    fn ready_made_sets() {
        assert!(TrustedProxies::loopback().trusts(ip("127.0.0.53"), 1));
        assert!(TrustedProxies::loopback().trusts(ip("::1"), 1));
        assert!(!TrustedProxies::loopback().trusts(ip("10.0.0.1"), 1));
        let private = TrustedProxies::private_networks();
        for inside in ["10.1.2.3", "172.31.255.255", "192.168.0.1", "fd12::1"] {
            assert!(private.trusts(ip(inside), 1), "{inside}");
        }
        for outside in ["172.32.0.1", "8.8.8.8", "2001:db8::1"] {
            assert!(!private.trusts(ip(outside), 1), "{outside}");
        }
    }

    #[test]
    fn parse_errors_name_the_input() {
        let error = TrustedProxies::parse_networks(["10.0.0.0/8", "10.0.0.0/33"]).unwrap_err();
        assert_eq!(error.input, "10.0.0.0/33");
        assert!(error.to_string().contains("CIDR"), "{error}");
        assert!(TrustedProxies::parse_networks(["localhost"]).is_err());
    }
}
