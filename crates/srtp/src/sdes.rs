//! SDES keying: the SDP `a=crypto` attribute (RFC 4568).

use rand::RngCore;
use thiserror::Error;

use crate::base64;
use crate::profile::SrtpProfile;

/// Why an `a=crypto` value or key-params string was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdesError {
    /// The crypto suite name is not one this crate implements.
    #[error("unknown or unsupported crypto suite {0:?}")]
    UnknownSuite(String),
    /// The attribute is not `tag SP suite SP key-params ...`.
    #[error("malformed crypto attribute")]
    Malformed,
    /// The key method is not `inline:`.
    #[error("unsupported key method (only inline: is defined)")]
    NotInline,
    /// The key-salt is not valid base64.
    #[error("key-salt is not valid base64")]
    BadBase64,
    /// The decoded key-salt has the wrong length for the suite.
    #[error("key-salt has {got} octets, suite needs {expected}")]
    BadKeyLength {
        /// Key + salt length of the suite.
        expected: usize,
        /// What was decoded.
        got: usize,
    },
    /// The lifetime field is neither a decimal number nor `2^n`.
    #[error("malformed key lifetime")]
    BadLifetime,
    /// The key carries an MKI; this implementation sends and expects no MKI on the wire.
    #[error("MKI of {length} octets not supported")]
    MkiNotSupported {
        /// MKI value from the attribute.
        value: u64,
        /// MKI length in octets.
        length: u8,
    },
}

/// One SDES master key and salt for a profile.
#[derive(Clone, PartialEq, Eq)]
pub struct SdesKey {
    /// The crypto suite.
    pub profile: SrtpProfile,
    /// Master key, `profile.master_key_len()` octets.
    pub key: Vec<u8>,
    /// Master salt, `profile.master_salt_len()` octets.
    pub salt: Vec<u8>,
}

impl std::fmt::Debug for SdesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys end up in logs through Debug; print only their shape.
        f.debug_struct("SdesKey")
            .field("profile", &self.profile)
            .field("key_len", &self.key.len())
            .field("salt_len", &self.salt.len())
            .finish()
    }
}

/// Master keys are wiped from memory when dropped.
impl Drop for SdesKey {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.key.zeroize();
        self.salt.zeroize();
    }
}

impl SdesKey {
    /// A fresh random master key and salt.
    pub fn generate(profile: SrtpProfile, rng: &mut impl RngCore) -> SdesKey {
        let mut key = vec![0; profile.master_key_len()];
        let mut salt = vec![0; profile.master_salt_len()];
        rng.fill_bytes(&mut key);
        rng.fill_bytes(&mut salt);
        SdesKey { profile, key, salt }
    }

    /// `inline:` + base64(key || salt), without lifetime or MKI.
    pub fn to_inline(&self) -> String {
        let mut ks = zeroize::Zeroizing::new(Vec::with_capacity(self.key.len() + self.salt.len()));
        ks.extend_from_slice(&self.key);
        ks.extend_from_slice(&self.salt);
        format!("inline:{}", base64::encode(&ks))
    }

    /// The `a=crypto` attribute value: `"<tag> <suite> inline:<key||salt>"`.
    pub fn crypto_attribute_value(&self, tag: u32) -> String {
        format!("{} {} {}", tag, self.profile.sdes_name(), self.to_inline())
    }

    /// Parse key-params such as `inline:<b64>|2^31|1:4`.
    ///
    /// A lifetime is accepted and ignored (keys are replaced by re-INVITE long before
    /// 2^31 packets). An MKI of length zero is accepted; a non-zero MKI length is refused
    /// with [`SdesError::MkiNotSupported`] because every packet would carry MKI octets this
    /// implementation does not insert or strip. When several key-params are listed
    /// (`;`-separated), the first is used.
    pub fn parse_key_params(profile: SrtpProfile, params: &str) -> Result<SdesKey, SdesError> {
        let first = params.split(';').next().unwrap_or(params).trim();
        let rest = first.strip_prefix("inline:").ok_or(SdesError::NotInline)?;
        let mut fields = rest.split('|');
        let key_salt = fields.next().unwrap_or("");
        let mut lifetime_seen = false;
        for field in fields {
            if let Some((value, length)) = field.split_once(':') {
                let value: u64 = value.parse().map_err(|_| SdesError::Malformed)?;
                let length: u8 = length.parse().map_err(|_| SdesError::Malformed)?;
                if length != 0 {
                    return Err(SdesError::MkiNotSupported { value, length });
                }
            } else if !lifetime_seen && is_lifetime(field) {
                lifetime_seen = true;
            } else {
                return Err(SdesError::BadLifetime);
            }
        }
        let raw = base64::decode(key_salt).ok_or(SdesError::BadBase64)?;
        let (kl, sl) = (profile.master_key_len(), profile.master_salt_len());
        if raw.len() != kl + sl {
            return Err(SdesError::BadKeyLength {
                expected: kl + sl,
                got: raw.len(),
            });
        }
        let raw = zeroize::Zeroizing::new(raw);
        let (key, salt) = raw.split_at(kl);
        Ok(SdesKey {
            profile,
            key: key.to_vec(),
            salt: salt.to_vec(),
        })
    }

    /// Parse a whole `a=crypto` value: `"<tag> <suite> <key-params> [session-params]"`.
    /// Session parameters are ignored. Returns the tag and the key.
    pub fn parse_crypto_attribute(value: &str) -> Result<(u32, SdesKey), SdesError> {
        let mut parts = value.split_ascii_whitespace();
        let tag = parts
            .next()
            .and_then(|t| t.parse::<u32>().ok())
            .ok_or(SdesError::Malformed)?;
        let suite = parts.next().ok_or(SdesError::Malformed)?;
        let profile = SrtpProfile::from_sdes_name(suite)
            .ok_or_else(|| SdesError::UnknownSuite(suite.to_owned()))?;
        let params = parts.next().ok_or(SdesError::Malformed)?;
        Ok((tag, SdesKey::parse_key_params(profile, params)?))
    }
}

/// `2^n` or a decimal number.
fn is_lifetime(field: &str) -> bool {
    let digits = field.strip_prefix("2^").unwrap_or(field);
    !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit())
}
