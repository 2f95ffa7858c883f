//! Certificate authorities and certificates made for the TLS tests (rcgen).

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

pub type Ca = CertifiedIssuer<'static, KeyPair>;

/// A self-signed certificate authority.
pub fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A certificate for `localhost` and its key, in PEM, signed by `ca`: a client certificate
/// when `client`, else a server one.
pub fn leaf(ca: &Ca, common_name: &str, client: bool) -> (String, String) {
    leaf_with(ca, common_name, client, |_| {})
}

/// A server certificate as [`leaf`] makes them, valid until the start of the day `(year,
/// month, day)` (UTC).
pub fn server_leaf_until(ca: &Ca, (year, month, day): (i32, u8, u8)) -> (String, String) {
    leaf_with(ca, "card-lookup", false, |params| {
        params.not_after = rcgen::date_time_ymd(year, month, day);
    })
}

fn leaf_with(
    ca: &Ca,
    common_name: &str,
    client: bool,
    adjust: impl FnOnce(&mut CertificateParams),
) -> (String, String) {
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    adjust(&mut params);
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    (cert.pem(), key.serialize_pem())
}
