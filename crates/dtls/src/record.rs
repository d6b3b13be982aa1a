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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(content_type: u8, minor: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![content_type, 0xFE, minor, 0, 1, 0, 0, 0, 0, 0, 7];
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn accepts_whole_records() {
        assert!(is_plausible_dtls(&record(22, 0xFD, &[1, 2, 3])));
        assert!(is_plausible_dtls(&record(22, 0xFF, &[])));
        let mut two = record(20, 0xFD, &[1]);
        two.extend(record(22, 0xFD, &[9; 40]));
        assert!(is_plausible_dtls(&two));
    }

    #[test]
    fn rejects_everything_else() {
        assert!(!is_plausible_dtls(&[]));
        // Wrong content types: 19 (below), 24 (heartbeat), 25 (cid), 0x2F (DTLS 1.3 header).
        for t in [19, 24, 25, 0x2F] {
            assert!(!is_plausible_dtls(&record(t, 0xFD, &[1])));
        }
        // TLS 1.2 version, DTLS 1.3 legacy version is still FEFD so only odd minors fail.
        let mut tls = record(22, 0xFD, &[1]);
        tls[1] = 0x03;
        tls[2] = 0x03;
        assert!(!is_plausible_dtls(&tls));
        assert!(!is_plausible_dtls(&record(22, 0xFC, &[1])));
        // Length running past the end, trailing partial header.
        let mut short = record(22, 0xFD, &[1, 2, 3]);
        short.pop();
        assert!(!is_plausible_dtls(&short));
        let mut trailing = record(22, 0xFD, &[1, 2, 3]);
        trailing.extend_from_slice(&[22, 0xFE]);
        assert!(!is_plausible_dtls(&trailing));
    }
}
