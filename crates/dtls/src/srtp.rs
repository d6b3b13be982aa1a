//! DTLS-SRTP protection profiles (RFC 5764 §4.1.2, RFC 7714 §14.2) and the split of the
//! exported keying material into per-direction keys and salts (RFC 5764 §4.2).

/// `SRTP_AES128_CM_HMAC_SHA1_80`.
pub const SRTP_AES128_CM_HMAC_SHA1_80: u16 = 0x0001;
/// `SRTP_AES128_CM_HMAC_SHA1_32`.
pub const SRTP_AES128_CM_HMAC_SHA1_32: u16 = 0x0002;
/// `SRTP_AEAD_AES_128_GCM`.
pub const SRTP_AEAD_AES_128_GCM: u16 = 0x0007;
/// `SRTP_AEAD_AES_256_GCM`.
pub const SRTP_AEAD_AES_256_GCM: u16 = 0x0008;

/// Exporter label for DTLS-SRTP (RFC 5764 §4.2).
pub const EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// Profiles we offer/accept, most preferred first, in OpenSSL's spelling. GCM first (cheaper
/// and authenticated as a whole), then the mandatory-to-implement CM_80, then CM_32 for old
/// peers, and AES-256-GCM last because not every SRTP stack has it.
pub(crate) const OFFERED_PROFILES: &str =
    "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80:SRTP_AES128_CM_SHA1_32:SRTP_AEAD_AES_256_GCM";

/// (master key length, master salt length) in bytes for a profile we know.
pub fn key_salt_len(profile_id: u16) -> Option<(usize, usize)> {
    match profile_id {
        SRTP_AES128_CM_HMAC_SHA1_80 | SRTP_AES128_CM_HMAC_SHA1_32 => Some((16, 14)),
        SRTP_AEAD_AES_128_GCM => Some((16, 12)),
        SRTP_AEAD_AES_256_GCM => Some((32, 12)),
        _ => None,
    }
}

/// Bytes to export for a profile: both directions' key and salt, `2 * (key + salt)`.
pub fn keying_material_len(profile_id: u16) -> Option<usize> {
    key_salt_len(profile_id).map(|(key, salt)| 2 * (key + salt))
}

/// Keys and salts for one association, already oriented for our side.
pub type SrtpKeys = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);

/// Splits exported keying material into `(tx_key, tx_salt, rx_key, rx_salt)`.
///
/// RFC 5764 §4.2 lays the material out as
/// `client_write_key | server_write_key | client_write_salt | server_write_salt`;
/// the DTLS client sends with the client half. `None` for an unknown profile or when
/// `material` is not exactly [`keying_material_len`] bytes (a length mix-up would silently
/// produce keys that never decrypt anything, so it is refused instead).
pub fn srtp_keys(profile_id: u16, material: &[u8], we_are_client: bool) -> Option<SrtpKeys> {
    let (key_len, salt_len) = key_salt_len(profile_id)?;
    if material.len() != 2 * (key_len + salt_len) {
        return None;
    }
    let (client_key, rest) = material.split_at(key_len);
    let (server_key, rest) = rest.split_at(key_len);
    let (client_salt, server_salt) = rest.split_at(salt_len);
    let client = (client_key.to_vec(), client_salt.to_vec());
    let server = (server_key.to_vec(), server_salt.to_vec());
    let ((tx_key, tx_salt), (rx_key, rx_salt)) = if we_are_client {
        (client, server)
    } else {
        (server, client)
    };
    Some((tx_key, tx_salt, rx_key, rx_salt))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn counting(len: usize) -> Vec<u8> {
        (0..len).map(|i| i as u8).collect()
    }

    #[test]
    fn cm_80_split_follows_rfc5764_layout() {
        // client_key(16) | server_key(16) | client_salt(14) | server_salt(14)
        let m = counting(60);
        let (tx_key, tx_salt, rx_key, rx_salt) =
            srtp_keys(SRTP_AES128_CM_HMAC_SHA1_80, &m, true).unwrap();
        assert_eq!(tx_key, counting(16));
        assert_eq!(rx_key, (16..32).collect::<Vec<u8>>());
        assert_eq!(tx_salt, (32..46).collect::<Vec<u8>>());
        assert_eq!(rx_salt, (46..60).collect::<Vec<u8>>());
        let (s_tx_key, s_tx_salt, s_rx_key, s_rx_salt) =
            srtp_keys(SRTP_AES128_CM_HMAC_SHA1_80, &m, false).unwrap();
        assert_eq!((s_tx_key, s_tx_salt), (rx_key, rx_salt));
        assert_eq!((s_rx_key, s_rx_salt), (tx_key, tx_salt));
    }

    #[test]
    fn gcm_splits_use_12_byte_salts() {
        let m = counting(56);
        let (tx_key, tx_salt, rx_key, rx_salt) =
            srtp_keys(SRTP_AEAD_AES_128_GCM, &m, true).unwrap();
        assert_eq!(tx_key, counting(16));
        assert_eq!(rx_key, (16..32).collect::<Vec<u8>>());
        assert_eq!(tx_salt, (32..44).collect::<Vec<u8>>());
        assert_eq!(rx_salt, (44..56).collect::<Vec<u8>>());

        let m = counting(88);
        let (tx_key, tx_salt, rx_key, rx_salt) =
            srtp_keys(SRTP_AEAD_AES_256_GCM, &m, false).unwrap();
        assert_eq!(rx_key, counting(32));
        assert_eq!(tx_key, (32..64).collect::<Vec<u8>>());
        assert_eq!(rx_salt, (64..76).collect::<Vec<u8>>());
        assert_eq!(tx_salt, (76..88).collect::<Vec<u8>>());
    }

    #[test]
    fn lengths_per_profile() {
        assert_eq!(keying_material_len(SRTP_AES128_CM_HMAC_SHA1_80), Some(60));
        assert_eq!(keying_material_len(SRTP_AES128_CM_HMAC_SHA1_32), Some(60));
        assert_eq!(keying_material_len(SRTP_AEAD_AES_128_GCM), Some(56));
        assert_eq!(keying_material_len(SRTP_AEAD_AES_256_GCM), Some(88));
        assert_eq!(keying_material_len(0x0005), None);
    }

    #[test]
    fn wrong_length_or_unknown_profile_is_refused() {
        assert_eq!(srtp_keys(SRTP_AES128_CM_HMAC_SHA1_80, &[0; 56], true), None);
        assert_eq!(srtp_keys(SRTP_AEAD_AES_128_GCM, &[0; 60], true), None);
        assert_eq!(srtp_keys(0x0006, &[0; 60], true), None);
    }
}
