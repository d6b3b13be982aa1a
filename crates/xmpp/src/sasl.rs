//! SASL client mechanisms for XMPP (RFC 6120 §6): SCRAM-SHA-256 and SCRAM-SHA-1
//! (RFC 7677 / RFC 5802, no channel binding: `n,,`) and PLAIN (RFC 4616).
//!
//! PLAIN sends the password itself, so the stream core offers it only over TLS unless the
//! user explicitly allowed otherwise; SCRAM proves knowledge of the password and checks the
//! server's signature, so a server that does not know the password is caught too.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Highest SCRAM iteration count we compute (a hostile server could ask for billions).
pub const MAX_ITERATIONS: u32 = 1_000_000;

/// Why authentication cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// A server message that does not follow the mechanism.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// The server's nonce does not extend ours.
    #[error("server nonce does not extend the client nonce")]
    Nonce,
    /// The iteration count is out of bounds.
    #[error("iteration count {0} out of bounds")]
    Iterations(u64),
    /// The server's signature is wrong: it does not know the password (or is an impostor).
    #[error("server signature mismatch")]
    ServerSignature,
    /// The server reported an error (`e=`).
    #[error("server error: {0}")]
    Server(String),
    /// Called out of order.
    #[error("SCRAM step out of order")]
    State,
}

/// The hash behind a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    /// SCRAM-SHA-1.
    Sha1,
    /// SCRAM-SHA-256.
    Sha256,
}

impl ScramHash {
    /// The SASL mechanism name.
    pub fn mechanism(self) -> &'static str {
        match self {
            ScramHash::Sha1 => "SCRAM-SHA-1",
            ScramHash::Sha256 => "SCRAM-SHA-256",
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha1 => {
                let Ok(mut m) = Hmac::<Sha1>::new_from_slice(key) else {
                    return Vec::new();
                };
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            ScramHash::Sha256 => {
                let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key) else {
                    return Vec::new();
                };
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha1 => Sha1::digest(data).to_vec(),
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
        }
    }

    fn hi(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha1 => {
                let mut out = [0u8; 20];
                pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            ScramHash::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

/// `saslname` escaping (RFC 5802 §5.1): `=` and `,` cannot appear raw.
fn escape_name(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

#[derive(Debug, Clone)]
enum Step {
    Initial,
    SentFirst,
    SentFinal { server_signature: Vec<u8> },
    Done,
}

/// One SCRAM exchange from the client's side.
#[derive(Debug, Clone)]
pub struct Scram {
    hash: ScramHash,
    username: String,
    password: String,
    nonce: String,
    client_first_bare: String,
    step: Step,
}

impl Scram {
    /// An exchange with the given client nonce (random printable characters, no comma).
    pub fn new(hash: ScramHash, username: &str, password: &str, nonce: &str) -> Self {
        Scram {
            hash,
            username: username.to_owned(),
            password: password.to_owned(),
            nonce: nonce.to_owned(),
            client_first_bare: String::new(),
            step: Step::Initial,
        }
    }

    /// The mechanism name.
    pub fn mechanism(&self) -> &'static str {
        self.hash.mechanism()
    }

    /// client-first-message (`n,,n=user,r=nonce`).
    pub fn client_first(&mut self) -> Vec<u8> {
        self.client_first_bare = format!("n={},r={}", escape_name(&self.username), self.nonce);
        self.step = Step::SentFirst;
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Takes server-first-message, returns client-final-message.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, SaslError> {
        if !matches!(self.step, Step::SentFirst) {
            return Err(SaslError::State);
        }
        let sf = std::str::from_utf8(server_first).map_err(|_| SaslError::Malformed("utf-8"))?;
        let (mut r, mut s, mut i) = (None, None, None);
        for part in sf.split(',') {
            match part.split_once('=') {
                Some(("r", v)) => r = Some(v),
                Some(("s", v)) => s = Some(v),
                Some(("i", v)) => i = Some(v),
                Some(("e", v)) => return Err(SaslError::Server(v.to_owned())),
                Some(("m", _)) => return Err(SaslError::Malformed("mandatory extension")),
                _ => {}
            }
        }
        let r = r.ok_or(SaslError::Malformed("no nonce"))?;
        if !r.starts_with(&self.nonce) || r.len() <= self.nonce.len() {
            return Err(SaslError::Nonce);
        }
        let salt = B64
            .decode(s.ok_or(SaslError::Malformed("no salt"))?)
            .map_err(|_| SaslError::Malformed("salt is not base64"))?;
        let iterations: u64 = i
            .ok_or(SaslError::Malformed("no iteration count"))?
            .parse()
            .map_err(|_| SaslError::Malformed("iteration count"))?;
        if iterations == 0 || iterations > u64::from(MAX_ITERATIONS) {
            return Err(SaslError::Iterations(iterations));
        }
        let h = self.hash;
        let salted = h.hi(self.password.as_bytes(), &salt, iterations as u32);
        let client_key = h.hmac(&salted, b"Client Key");
        let stored_key = h.hash(&client_key);
        let without_proof = format!("c=biws,r={r}");
        let auth_message = format!("{},{},{}", self.client_first_bare, sf, without_proof);
        let client_signature = h.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = h.hmac(&salted, b"Server Key");
        let server_signature = h.hmac(&server_key, auth_message.as_bytes());
        self.step = Step::SentFinal { server_signature };
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks server-final-message (`v=...`).
    pub fn verify_server_final(&mut self, server_final: &[u8]) -> Result<(), SaslError> {
        let Step::SentFinal { server_signature } = &self.step else {
            return Err(SaslError::State);
        };
        let sf = std::str::from_utf8(server_final).map_err(|_| SaslError::Malformed("utf-8"))?;
        if let Some(e) = sf.strip_prefix("e=") {
            return Err(SaslError::Server(e.to_owned()));
        }
        let v = sf
            .split(',')
            .find_map(|p| p.strip_prefix("v="))
            .ok_or(SaslError::Malformed("no verifier"))?;
        let v = B64
            .decode(v)
            .map_err(|_| SaslError::Malformed("verifier is not base64"))?;
        // Constant-time compare: the verifier is a secret-derived value.
        let same = v.len() == server_signature.len()
            && v.iter()
                .zip(server_signature)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !same {
            return Err(SaslError::ServerSignature);
        }
        self.step = Step::Done;
        Ok(())
    }

    /// Whether the server has proved itself.
    pub fn is_done(&self) -> bool {
        matches!(self.step, Step::Done)
    }
}

/// PLAIN's initial response (`\0user\0password`).
pub fn plain(username: &str, password: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(username.len() + password.len() + 2);
    v.push(0);
    v.extend_from_slice(username.as_bytes());
    v.push(0);
    v.extend_from_slice(password.as_bytes());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5802_scram_sha1_vector() {
        let mut s = Scram::new(
            ScramHash::Sha1,
            "user",
            "pencil",
            "fyko+d2lbbFgONRv9qkxdawL",
        );
        assert_eq!(s.client_first(), b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        let f = s
            .client_final(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
            .expect("final");
        assert_eq!(
            String::from_utf8(f).expect("utf8"),
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
        );
        s.verify_server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")
            .expect("server proves itself");
        assert!(s.is_done());
    }

    #[test]
    fn rfc7677_scram_sha256_vector() {
        let mut s = Scram::new(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(s.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let f = s
            .client_final(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .expect("final");
        assert_eq!(
            String::from_utf8(f).expect("utf8"),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        s.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .expect("server proves itself");
    }

    #[test]
    fn impostor_server_and_bad_messages_are_caught() {
        let mut s = Scram::new(
            ScramHash::Sha1,
            "user",
            "pencil",
            "fyko+d2lbbFgONRv9qkxdawL",
        );
        s.client_first();
        s.client_final(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
            .expect("final");
        assert_eq!(
            s.verify_server_final(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            Err(SaslError::ServerSignature)
        );
        let mut s = Scram::new(ScramHash::Sha256, "u", "p", "abc");
        s.client_first();
        assert_eq!(
            s.client_final(b"r=xyz123,s=AAAA,i=4096"),
            Err(SaslError::Nonce)
        );
        let mut s = Scram::new(ScramHash::Sha256, "u", "p", "abc");
        s.client_first();
        assert_eq!(
            s.client_final(b"r=abcdef,s=AAAA,i=4000000000"),
            Err(SaslError::Iterations(4_000_000_000))
        );
        let mut s = Scram::new(ScramHash::Sha256, "u", "p", "abc");
        assert_eq!(s.client_final(b"r=abcd,s=AAAA,i=1"), Err(SaslError::State));
    }

    #[test]
    fn names_are_escaped_and_plain_is_nul_separated() {
        let mut s = Scram::new(ScramHash::Sha1, "a=b,c", "p", "n");
        assert_eq!(s.client_first(), b"n,,n=a=3Db=2Cc,r=n");
        assert_eq!(plain("bob", "pw"), b"\0bob\0pw");
    }
}
