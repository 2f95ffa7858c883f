//! Who a call comes from, by the rules the operator trusts.
//!
//! A client certificate (mutual TLS) is proof: its identity is the client. Without one, the
//! `x-client-id` header is only the caller's word, and a caller that could choose its own
//! identity could buy a fresh rate-limit budget, concurrency share and card-testing window with
//! every call by changing the header. So the peer's address is the client, and the header only
//! labels the call; unless the peer is in a network the operator names with
//! `--trust-client-id-from` (a gateway, a service mesh's sidecar, an internal network whose
//! callers are known), whose `x-client-id` is then taken as the client.

use std::net::IpAddr;
use std::sync::Arc;

use tonic::codegen::http;

use super::CLIENT_ID_HEADER;
use crate::incoming::PeerInfo;
use crate::token::is_safe_token;

/// A network whose callers' `x-client-id` is trusted: `10.0.0.0/8`, `fd00::/8`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedNetwork {
    address: IpAddr,
    prefix: u8,
}

impl TrustedNetwork {
    /// Whether `ip` is in this network (an IPv4 address mapped into IPv6 as the IPv4 address).
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => prefix_matches(
                u32::from(network).into(),
                u32::from(ip).into(),
                32,
                self.prefix,
            ),
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                prefix_matches(u128::from(network), u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// Whether the first `prefix` of `bits` bits of `a` and `b` agree.
fn prefix_matches(a: u128, b: u128, bits: u8, prefix: u8) -> bool {
    let ignored = bits - prefix;
    prefix == 0 || (a >> ignored) == (b >> ignored)
}

impl std::str::FromStr for TrustedNetwork {
    type Err = String;

    /// `ADDRESS/PREFIX`, or an address alone (the one host).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{text}`: expected a network such as 10.0.0.0/8 or fd00::/8");
        let (address, prefix) = text.trim().split_once('/').unwrap_or((text.trim(), ""));
        let address: IpAddr = address.parse().map_err(|_| bad())?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            bits
        } else {
            prefix.parse().map_err(|_| bad())?
        };
        if prefix > bits {
            return Err(bad());
        }
        Ok(Self { address, prefix })
    }
}

/// The identity admission trusts for `request`, and the untrusted `x-client-id` that labels
/// it, if any.
pub(super) fn identify<B>(
    request: &http::Request<B>,
    trusted: &[TrustedNetwork],
) -> (Arc<str>, Option<Arc<str>>) {
    let peer = request.extensions().get::<PeerInfo>();
    if let Some(subject) = peer.and_then(|p| p.client_subject.clone()) {
        return (subject, None);
    }
    let claimed = request
        .headers()
        .get(&CLIENT_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_safe_token(id))
        .map(Arc::from);
    // The networks are looked at only for a call that names its client.
    let trusted_peer = || {
        peer.and_then(|p| p.remote_addr)
            .is_some_and(|ip| trusted.iter().any(|network| network.contains(ip)))
    };
    match (claimed, peer.and_then(|p| p.remote_ip.clone())) {
        (Some(claimed), _) if trusted_peer() => (claimed, None),
        (claimed, Some(address)) => (address, claimed),
        // No address: a connection not accepted by `incoming`, which never serves calls.
        (claimed, None) => (Arc::from("unknown"), claimed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::address_identity;

    fn request(from: &str, client_id: Option<&str>) -> http::Request<()> {
        let ip: IpAddr = from.parse().unwrap();
        let mut request = http::Request::new(());
        request.extensions_mut().insert(PeerInfo {
            remote_addr: Some(ip),
            remote_ip: Some(Arc::from(address_identity(ip))),
            client_subject: None,
        });
        if let Some(id) = client_id {
            request
                .headers_mut()
                .insert(&CLIENT_ID_HEADER, id.parse().unwrap());
        }
        request
    }

    fn networks(list: &[&str]) -> Vec<TrustedNetwork> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn an_untrusted_client_id_labels_the_call_and_the_address_is_the_client() {
        let (id, label) = identify(&request("192.0.2.7", Some("checkout")), &[]);
        assert_eq!((&*id, label.as_deref()), ("192.0.2.7", Some("checkout")));
        let trusted = networks(&["10.0.0.0/8"]);
        let (id, label) = identify(&request("192.0.2.7", Some("checkout")), &trusted);
        assert_eq!((&*id, label.as_deref()), ("192.0.2.7", Some("checkout")));
    }

    #[test]
    fn a_trusted_network_names_its_callers() {
        let trusted = networks(&["10.0.0.0/8", "fd00::/8", "192.0.2.1"]);
        for from in ["10.200.3.4", "::ffff:10.0.0.1", "fd12::1", "192.0.2.1"] {
            let (id, label) = identify(&request(from, Some("checkout")), &trusted);
            assert_eq!((&*id, label.as_deref()), ("checkout", None), "{from}");
        }
        for from in ["11.0.0.1", "fe80::1", "192.0.2.2"] {
            let (id, _) = identify(&request(from, Some("checkout")), &trusted);
            assert_ne!(&*id, "checkout", "{from}");
        }
        // A trusted caller that names nobody, or an unsafe name, is its address.
        let (id, _) = identify(&request("10.0.0.1", None), &trusted);
        assert_eq!(&*id, "10.0.0.1");
        let (id, _) = identify(&request("10.0.0.1", Some("4111111111111111")), &trusted);
        assert_eq!(&*id, "10.0.0.1");
    }

    #[test]
    fn networks_parse_and_nonsense_is_refused() {
        assert!(networks(&["0.0.0.0/0"])[0].contains("203.0.113.9".parse().unwrap()));
        assert!(networks(&["::/0"])[0].contains("2001:db8::1".parse().unwrap()));
        for bad in [
            "10.0.0.0/33",
            "fd00::/129",
            "10.0.0/8",
            "ten",
            "10.0.0.0/x",
            "",
        ] {
            assert!(bad.parse::<TrustedNetwork>().is_err(), "{bad}");
        }
    }
}
