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
