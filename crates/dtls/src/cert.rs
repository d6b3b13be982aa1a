//! Self-signed certificates for DTLS-SRTP and their SDP fingerprints (RFC 8122).
//!
//! WebRTC and SIP peers do not validate a chain: the certificate is trusted because its
//! SHA-256 fingerprint arrived over the (authenticated) signalling channel. So the
//! certificate only needs a key, a name and a validity range wide enough that no peer
//! rejects it as expired.

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509Builder, X509NameBuilder, X509};

use crate::DtlsError;

/// Start of the validity range: a fixed date in the past, so no clock is read here.
/// 2024-01-01T00:00:00Z.
const NOT_BEFORE_UNIX: i64 = 1_704_067_200;
/// End of the validity range: 2054-01-01T00:00:00Z.
const NOT_AFTER_UNIX: i64 = 2_651_184_000;

/// A certificate and its private key, as used for one or many DTLS associations.
#[derive(Clone)]
pub struct DtlsCertificate {
    pub(crate) cert: X509,
    pub(crate) key: PKey<Private>,
}

impl std::fmt::Debug for DtlsCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key.
        f.debug_struct("DtlsCertificate")
            .field("fingerprint_sha256", &self.fingerprint_sha256())
            .finish_non_exhaustive()
    }
}

impl DtlsCertificate {
    /// A fresh self-signed ECDSA P-256 certificate with CN "natter", signed with SHA-256.
    /// Key and serial number come from OpenSSL's CSPRNG.
    pub fn generate() -> Result<Self, DtlsError> {
        Self::build().map_err(|e| DtlsError::Certificate(e.to_string()))
    }

    fn build() -> Result<Self, openssl::error::ErrorStack> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        let key = PKey::from_ec_key(EcKey::generate(&group)?)?;

        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(Nid::COMMONNAME, "natter")?;
        let name = name.build();

        // Positive 64-bit serial; uniqueness per generated certificate is what matters.
        let mut serial = BigNum::new()?;
        serial.rand(64, MsbOption::MAYBE_ZERO, false)?;
        let serial: Asn1Integer = serial.to_asn1_integer()?;

        let mut builder = X509Builder::new()?;
        builder.set_version(2)?;
        builder.set_serial_number(&serial)?;
        builder.set_subject_name(&name)?;
        builder.set_issuer_name(&name)?;
        builder.set_pubkey(&key)?;
        let not_before = Asn1Time::from_unix(NOT_BEFORE_UNIX as _)?;
        let not_after = Asn1Time::from_unix(NOT_AFTER_UNIX as _)?;
        builder.set_not_before(&not_before)?;
        builder.set_not_after(&not_after)?;
        builder.sign(&key, MessageDigest::sha256())?;
        Ok(Self {
            cert: builder.build(),
            key,
        })
    }

    /// Loads a certificate (DER) and its private key (DER: PKCS#8, or SEC1/PKCS#1), e.g. to
    /// keep one identity across restarts. The key must belong to the certificate.
    pub fn from_der(certificate_der: &[u8], private_key_der: &[u8]) -> Result<Self, DtlsError> {
        let err = |e: openssl::error::ErrorStack| DtlsError::Certificate(e.to_string());
        let cert = X509::from_der(certificate_der).map_err(err)?;
        let key = PKey::private_key_from_der(private_key_der).map_err(err)?;
        let public = cert.public_key().map_err(err)?;
        if !public.public_eq(&key) {
            return Err(DtlsError::Certificate(
                "private key does not belong to the certificate".to_owned(),
            ));
        }
        Ok(Self { cert, key })
    }

    /// The certificate in DER form.
    pub fn certificate_der(&self) -> Vec<u8> {
        self.cert.to_der().unwrap_or_default()
    }

    /// The private key as PKCS#8 DER.
    pub fn private_key_der(&self) -> Vec<u8> {
        self.key.private_key_to_pkcs8().unwrap_or_default()
    }

    /// SHA-256 fingerprint for `a=fingerprint:sha-256 …`: uppercase hex pairs joined by `:`.
    pub fn fingerprint_sha256(&self) -> String {
        fingerprint_sha256_of_der(&self.certificate_der())
    }
}

/// SHA-256 fingerprint of a DER certificate in SDP form (RFC 8122 §5): `AB:CD:…`.
pub fn fingerprint_sha256_of_der(der: &[u8]) -> String {
    let digest = openssl::sha::sha256(der);
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, byte) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{byte:02X}"));
    }
    out
}

/// Canonical form of a signalled fingerprint for comparison: SDP allows either hex case, and
/// some stacks pad with blanks.
pub(crate) fn normalize_fingerprint(fingerprint: &str) -> String {
    fingerprint
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fingerprint_is_sdp_formatted_sha256_of_the_der() {
        // SHA-256("abc") (FIPS 180-2 example).
        assert_eq!(
            fingerprint_sha256_of_der(b"abc"),
            "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:\
             B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
        let cert = DtlsCertificate::generate().unwrap();
        let fp = cert.fingerprint_sha256();
        assert_eq!(fp, fingerprint_sha256_of_der(&cert.certificate_der()));
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert!(fp.split(':').all(
            |pair| pair.len() == 2 && pair.chars().all(|c| matches!(c, '0'..='9' | 'A'..='F'))
        ));
        assert_ne!(
            fp,
            DtlsCertificate::generate().unwrap().fingerprint_sha256()
        );
    }

    #[test]
    fn generated_certificate_is_self_signed_p256_for_natter() {
        let cert = DtlsCertificate::generate().unwrap();
        let x509 = X509::from_der(&cert.certificate_der()).unwrap();
        let cn = x509
            .subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .next()
            .unwrap()
            .data()
            .as_slice()
            .to_vec();
        assert_eq!(cn, b"natter");
        let key = x509.public_key().unwrap();
        assert!(x509.verify(&key).unwrap());
        let ec = key.ec_key().unwrap();
        assert_eq!(ec.group().curve_name(), Some(Nid::X9_62_PRIME256V1));
        assert_eq!(
            x509.signature_algorithm().object().nid(),
            Nid::ECDSA_WITH_SHA256
        );
    }

    #[test]
    fn der_round_trip_keeps_identity_and_checks_the_key() {
        let cert = DtlsCertificate::generate().unwrap();
        let again =
            DtlsCertificate::from_der(&cert.certificate_der(), &cert.private_key_der()).unwrap();
        assert_eq!(again.fingerprint_sha256(), cert.fingerprint_sha256());
        let other = DtlsCertificate::generate().unwrap();
        assert!(matches!(
            DtlsCertificate::from_der(&cert.certificate_der(), &other.private_key_der()),
            Err(DtlsError::Certificate(_))
        ));
        assert!(DtlsCertificate::from_der(b"junk", b"junk").is_err());
    }

    #[test]
    fn normalizing_accepts_lowercase_and_blanks() {
        assert_eq!(normalize_fingerprint(" ab:cD:01 "), "AB:CD:01");
    }
}
