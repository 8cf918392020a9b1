//! Who the client is behind proxies, over real TCP: the peer (127.0.0.1) plays the proxy.

use axum::Router;
use axum::routing::get;
use traffik_axum::{ClientIp, ProxyHeader, ThrottleLayer, TrustedProxies};

use crate::support::serve;
use crate::throttle;

/// A server allowing 3 requests a minute per client, where the loopback peer is a trusted
/// proxy writing `header`.
async fn three_per_minute_behind(header: ProxyHeader) -> String {
    let limit = throttle("3/min")
        .identifier(ClientIp::behind(header, TrustedProxies::loopback()).identifier())
        .build()
        .unwrap();
    serve(
        Router::new()
            .route("/", get(|| async { "ok" }))
            .layer(ThrottleLayer::new(limit)),
    )
    .await
}

/// The statuses of one request per header set, in order.
async fn statuses(base: &str, requests: Vec<Vec<(&str, String)>>) -> Vec<u16> {
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for headers in requests {
        let mut request = client.get(base);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        statuses.push(request.send().await.unwrap().status().as_u16());
    }
    statuses
}

/// Three admitted, then refused: five requests that all land in one bucket.
const ONE_BUCKET: [u16; 5] = [200, 200, 200, 429, 429];

#[tokio::test]
async fn a_header_the_proxy_passes_through_cannot_choose_the_bucket() {
    // The proxy appends the client (203.0.113.5) to X-Forwarded-For and passes the client's own
    // `Forwarded` through untouched.
    let base = three_per_minute_behind(ProxyHeader::XForwardedFor).await;
    let requests = (1..=5)
        .map(|n| {
            vec![
                ("forwarded", format!("for=198.51.100.{n}")),
                ("x-forwarded-for", "203.0.113.5".to_owned()),
            ]
        })
        .collect();
    assert_eq!(statuses(&base, requests).await, ONE_BUCKET);

    // The proxy sets X-Real-IP; the client sends X-Forwarded-For.
    let base = three_per_minute_behind(ProxyHeader::XRealIp).await;
    let requests = (1..=5)
        .map(|n| {
            vec![
                ("x-forwarded-for", format!("198.51.100.{n}")),
                ("x-real-ip", "203.0.113.5".to_owned()),
            ]
        })
        .collect();
    assert_eq!(statuses(&base, requests).await, ONE_BUCKET);
}

#[tokio::test]
async fn an_entry_that_is_not_an_address_never_lets_the_client_pick_the_entry_to_its_left() {
    for (header, template) in [
        (ProxyHeader::Forwarded, "for=198.51.100.N, for=unknown"),
        (ProxyHeader::Forwarded, "for=198.51.100.N, for=_hidden"),
        (ProxyHeader::XForwardedFor, "198.51.100.N, unknown"),
    ] {
        let name = header.name();
        let base = three_per_minute_behind(header).await;
        let requests = (1..=5)
            .map(|n| vec![(name.as_str(), template.replace('N', &n.to_string()))])
            .collect();
        assert_eq!(statuses(&base, requests).await, ONE_BUCKET, "{template}");
    }
}

#[tokio::test]
async fn ipv6_addresses_rotated_inside_one_64_share_a_budget_by_default() {
    let base = three_per_minute_behind(ProxyHeader::XForwardedFor).await;
    let requests = ["::1", "::2", "::ffff:1", ":aaaa:bbbb:cccc:dddd", "::9"]
        .map(|host| vec![("x-forwarded-for", format!("2001:db8:1:2{host}"))])
        .to_vec();
    assert_eq!(statuses(&base, requests).await, ONE_BUCKET);
    // The next /64 is another subscriber.
    let next = vec![vec![("x-forwarded-for", "2001:db8:1:3::1".to_owned())]];
    assert_eq!(statuses(&base, next).await, [200]);
}

#[tokio::test]
async fn a_prefix_of_128_keys_every_ipv6_address_alone() {
    let limit = throttle("1/min")
        .identifier(
            ClientIp::behind(ProxyHeader::XForwardedFor, TrustedProxies::loopback())
                .ipv6_prefix(128)
                .identifier(),
        )
        .build()
        .unwrap();
    let base = serve(
        Router::new()
            .route("/", get(|| async { "ok" }))
            .layer(ThrottleLayer::new(limit)),
    )
    .await;
    let requests = ["1", "2", "1"]
        .map(|host| vec![("x-forwarded-for", format!("2001:db8:1:2::{host}"))])
        .to_vec();
    assert_eq!(statuses(&base, requests).await, [200, 200, 429]);
}
