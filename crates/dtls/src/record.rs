//! A cheap structural check of a datagram before it reaches the TLS engine.
//!
//! OpenSSL copes with noise, but every datagram it reads while a handshake is pending costs
//! one unit of its retransmission budget (see `timer.rs`), so obvious garbage is dropped here.
//! Only the record framing is checked (RFC 6347 §4.1): content type, version, and lengths that
//! tile the datagram exactly.

/// DTLS record header length (type, version, epoch, sequence number, length).
const HEADER_LEN: usize = 13;
/// Largest record body allowed by RFC 6347 §4.1 (2^14 plus expansion).
const MAX_RECORD_BODY: usize = (1 << 14) + 2048;

/// True if `datagram` is one or more complete DTLS 1.0/1.2 records.
pub(crate) fn is_plausible_dtls(datagram: &[u8]) -> bool {
    let mut rest = datagram;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let Some(header) = rest.get(..HEADER_LEN) else {
            return false;
        };
        let [content_type, major, minor, .., len_hi, len_lo] = *header else {
            return false;
        };
        // change_cipher_spec, alert, handshake, application_data.
        if !(20..=23).contains(&content_type) {
            return false;
        }
        // DTLS 1.0 is 254.255, DTLS 1.2 is 254.253.
        if major != 0xFE || !(minor == 0xFF || minor == 0xFD) {
            return false;
        }
        let body_len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        if body_len > MAX_RECORD_BODY {
            return false;
        }
        match rest.get(HEADER_LEN + body_len..) {
            Some(next) => rest = next,
            None => return false,
        }
    }
    true
}
