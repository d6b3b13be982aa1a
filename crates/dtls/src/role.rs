//! Which side of the DTLS handshake we play, derived from SDP `a=setup` (RFC 4145, RFC 5763 §5).

/// DTLS handshake role. The offerer usually says `actpass` and the answerer picks; the side
/// whose final `a=setup` is `active` opens the DTLS handshake (it is the DTLS client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtlsRole {
    /// Sends the ClientHello (`a=setup:active`).
    Client,
    /// Waits for the ClientHello (`a=setup:passive`).
    Server,
}

impl DtlsRole {
    /// Role from our own negotiated `a=setup` value: `active` is the client, `passive` the
    /// server. `actpass` and `holdconn` are not final roles, so they give `None`; the caller
    /// resolves `actpass` through offer/answer first. Case-insensitive, surrounding blanks
    /// ignored.
    pub fn from_setup(local_setup: &str) -> Option<Self> {
        let value = local_setup.trim();
        if value.eq_ignore_ascii_case("active") {
            Some(Self::Client)
        } else if value.eq_ignore_ascii_case("passive") {
            Some(Self::Server)
        } else {
            None
        }
    }

    /// True for [`DtlsRole::Client`]; the SRTP key split (RFC 5764 §4.2) depends on it.
    pub fn is_client(self) -> bool {
        matches!(self, Self::Client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_values_map_to_roles() {
        assert_eq!(DtlsRole::from_setup("active"), Some(DtlsRole::Client));
        assert_eq!(DtlsRole::from_setup(" Passive "), Some(DtlsRole::Server));
        assert_eq!(DtlsRole::from_setup("actpass"), None);
        assert_eq!(DtlsRole::from_setup("holdconn"), None);
        assert_eq!(DtlsRole::from_setup(""), None);
        assert!(DtlsRole::Client.is_client());
        assert!(!DtlsRole::Server.is_client());
    }
}
