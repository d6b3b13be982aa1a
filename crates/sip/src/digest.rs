//! HTTP Digest authentication for SIP (RFC 3261 §22.4, RFC 2617, RFC 7616,
//! RFC 8760): challenge/credential parsing and formatting, the response
//! computation for MD5 and SHA-256 (and their `-sess` variants), a client
//! helper that answers 401/407, and a server that issues stateless,
//! HMAC-protected nonces, detects stale ones and rejects nonce-count replays.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use md5::{Digest as _, Md5};
use sha2::Sha256;
use thiserror::Error;

use crate::error::ParseError;
use crate::syntax::{
    for_each_comma_part, is_token, is_ws, push_quoted, quote, split_once_byte, trim_ws,
    unescape_quoted,
};

/// Digest errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DigestError {
    /// Not a `Digest` challenge or credential.
    #[error("not a Digest header")]
    NotDigest,
    /// Syntax error in the parameters.
    #[error("malformed Digest parameters")]
    Syntax,
    /// A required parameter is missing.
    #[error("missing Digest parameter {0}")]
    Missing(&'static str),
    /// Algorithm not supported.
    #[error("unsupported digest algorithm")]
    Algorithm,
    /// Only qop=auth (or no qop) is supported.
    #[error("unsupported qop")]
    Qop,
}

/// A malformed comma-separated list is a syntax error in the parameters.
impl From<ParseError> for DigestError {
    fn from(_: ParseError) -> Self {
        DigestError::Syntax
    }
}

/// Hash algorithm (RFC 7616 §3.3; RFC 8760 adds SHA-256 to SIP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// MD5 (the default when absent).
    Md5,
    /// MD5-sess.
    Md5Sess,
    /// SHA-256.
    Sha256,
    /// SHA-256-sess.
    Sha256Sess,
}

impl Algorithm {
    /// Parse the `algorithm` parameter value.
    pub fn parse(s: &str) -> Result<Algorithm, DigestError> {
        match s.to_ascii_uppercase().as_str() {
            "MD5" => Ok(Algorithm::Md5),
            "MD5-SESS" => Ok(Algorithm::Md5Sess),
            "SHA-256" => Ok(Algorithm::Sha256),
            "SHA-256-SESS" => Ok(Algorithm::Sha256Sess),
            _ => Err(DigestError::Algorithm),
        }
    }

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// Hex digest of `data`.
    pub fn hash(self, data: &[u8]) -> String {
        self.hash_parts(&[data]).as_str().to_owned()
    }

    /// Hex digest of the concatenation of `parts`, on the stack: the request-digest is three
    /// or four such hashes over short colon-joined fields, on every authenticated request.
    fn hash_parts(self, parts: &[&[u8]]) -> HexDigest {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => {
                let mut h = Md5::new();
                parts.iter().for_each(|p| h.update(p));
                HexDigest::of(&h.finalize())
            }
            Algorithm::Sha256 | Algorithm::Sha256Sess => {
                let mut h = Sha256::new();
                parts.iter().for_each(|p| h.update(p));
                HexDigest::of(&h.finalize())
            }
        }
    }

    /// Preference order when several challenges are offered (RFC 8760 §2.4).
    fn strength(self) -> u8 {
        match self {
            Algorithm::Sha256 | Algorithm::Sha256Sess => 2,
            Algorithm::Md5 | Algorithm::Md5Sess => 1,
        }
    }
}

/// A lower-case hex digest of up to 32 bytes (SHA-256), kept on the stack.
#[derive(Clone, Copy)]
struct HexDigest {
    buf: [u8; 64],
    len: usize,
}

impl HexDigest {
    fn of(bytes: &[u8]) -> HexDigest {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 64];
        let n = bytes.len().min(32);
        for (i, b) in bytes.iter().take(n).enumerate() {
            buf[2 * i] = HEX[usize::from(b >> 4)];
            buf[2 * i + 1] = HEX[usize::from(b & 0x0f)];
        }
        HexDigest { buf, len: 2 * n }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn as_str(&self) -> &str {
        // Only ASCII hex digits were written.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

/// The parameters of a `Digest` header value, in order. A challenge or credentials value
/// has about ten, so a list searched without regard to case beats a map: no lowercased copy
/// of each name, no hashing (this runs on every authenticated request).
struct Params<'a>(Vec<(&'a str, Cow<'a, str>)>);

impl<'a> Params<'a> {
    /// The value of parameter `name` (ASCII case-insensitive); the last one if repeated.
    fn get(&self, name: &str) -> Option<&Cow<'a, str>> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// Split `Digest a=b, c="d"` into the scheme check and its parameters.
fn parse_params(value: &str) -> Result<Params<'_>, DigestError> {
    let mut params = Vec::with_capacity(12);
    each_param(value, |name, val| {
        params.push((name, val));
        Ok(())
    })?;
    Ok(Params(params))
}

/// Check the `Digest` scheme and hand each `name=value` parameter to `f` in
/// order (quoted values unquoted, escapes resolved), collecting nothing.
fn each_param<'a>(
    value: &'a str,
    mut f: impl FnMut(&'a str, Cow<'a, str>) -> Result<(), DigestError>,
) -> Result<(), DigestError> {
    let v = trim_ws(value);
    let (scheme, rest) = v.split_once(is_ws).ok_or(DigestError::NotDigest)?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(DigestError::NotDigest);
    }
    for_each_comma_part(rest, |part| {
        let (name, val) = split_once_byte(part, b'=').ok_or(DigestError::Syntax)?;
        let name = trim_ws(name);
        let val = trim_ws(val);
        if !is_token(name) {
            return Err(DigestError::Syntax);
        }
        let val = if let Some(q) = val.strip_prefix('"') {
            let inner = q.strip_suffix('"').ok_or(DigestError::Syntax)?;
            if inner.as_bytes().contains(&b'\\') {
                Cow::Owned(unescape_quoted(inner))
            } else {
                Cow::Borrowed(inner)
            }
        } else {
            Cow::Borrowed(val)
        };
        f(name, val)
    })
}

/// A `WWW-Authenticate` / `Proxy-Authenticate` Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Protection realm.
    pub realm: String,
    /// Server nonce.
    pub nonce: String,
    /// Opaque value to echo.
    pub opaque: Option<String>,
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Offered qop values (empty: RFC 2069 compatibility mode).
    pub qop: Vec<String>,
    /// The previous nonce was stale: retry without asking the user.
    pub stale: bool,
}

impl Challenge {
    /// Parse a challenge header value.
    pub fn parse(value: &str) -> Result<Challenge, DigestError> {
        let p = parse_params(value)?;
        let get = |k: &str| p.get(k).map(|v| v.to_string());
        Ok(Challenge {
            realm: get("realm").ok_or(DigestError::Missing("realm"))?,
            nonce: get("nonce").ok_or(DigestError::Missing("nonce"))?,
            opaque: get("opaque"),
            algorithm: match p.get("algorithm") {
                Some(a) => Algorithm::parse(a)?,
                None => Algorithm::Md5,
            },
            qop: p
                .get("qop")
                .map(|q| {
                    q.split(',')
                        .map(|s| trim_ws(s).to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            stale: p
                .get("stale")
                .is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// Header value.
    pub fn to_header_value(&self) -> String {
        let mut s = format!(
            "Digest realm={}, nonce={}, algorithm={}",
            quote(&self.realm),
            quote(&self.nonce),
            self.algorithm.as_str()
        );
        if !self.qop.is_empty() {
            s.push_str(&format!(", qop={}", quote(&self.qop.join(","))));
        }
        if let Some(o) = &self.opaque {
            s.push_str(&format!(", opaque={}", quote(o)));
        }
        if self.stale {
            s.push_str(", stale=TRUE");
        }
        s
    }

    /// Pick the strongest supported challenge among several header values
    /// (RFC 8760 §2.4: a server may offer SHA-256 and MD5).
    pub fn pick_best<'v>(values: impl IntoIterator<Item = &'v str>) -> Option<Challenge> {
        values
            .into_iter()
            .filter_map(|v| Challenge::parse(v).ok())
            .max_by_key(|c| c.algorithm.strength())
    }
}

/// `Authorization` / `Proxy-Authorization` Digest credentials. Parsed credentials borrow
/// from the header value (a server checks one on every authenticated request); built ones
/// ([`answer`]) own their strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestCredentials<'a> {
    /// User name.
    pub username: Cow<'a, str>,
    /// Realm.
    pub realm: Cow<'a, str>,
    /// Nonce being answered.
    pub nonce: Cow<'a, str>,
    /// digest-uri (the Request-URI).
    pub uri: Cow<'a, str>,
    /// Response hash (hex).
    pub response: Cow<'a, str>,
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Client nonce (with qop).
    pub cnonce: Option<Cow<'a, str>>,
    /// Echoed opaque.
    pub opaque: Option<Cow<'a, str>>,
    /// qop chosen (`auth`) or none.
    pub qop: Option<Cow<'a, str>>,
    /// Nonce count (with qop).
    pub nc: Option<u32>,
}

impl<'a> DigestCredentials<'a> {
    /// Parse a credentials header value.
    pub fn parse(value: &'a str) -> Result<DigestCredentials<'a>, DigestError> {
        // One pass over the parameters into their fields (the last of a
        // repeated name wins): this runs on every authenticated request.
        let (mut username, mut realm, mut nonce, mut uri, mut response) =
            (None, None, None, None, None);
        let (mut algorithm, mut cnonce, mut opaque, mut qop, mut nc) =
            (None, None, None, None, None);
        each_param(value, |name, val| {
            let slot = match name.len() {
                2 if name.eq_ignore_ascii_case("nc") => &mut nc,
                3 if name.eq_ignore_ascii_case("uri") => &mut uri,
                3 if name.eq_ignore_ascii_case("qop") => &mut qop,
                5 if name.eq_ignore_ascii_case("realm") => &mut realm,
                5 if name.eq_ignore_ascii_case("nonce") => &mut nonce,
                6 if name.eq_ignore_ascii_case("cnonce") => &mut cnonce,
                6 if name.eq_ignore_ascii_case("opaque") => &mut opaque,
                8 if name.eq_ignore_ascii_case("username") => &mut username,
                8 if name.eq_ignore_ascii_case("response") => &mut response,
                9 if name.eq_ignore_ascii_case("algorithm") => &mut algorithm,
                _ => return Ok(()),
            };
            *slot = Some(val);
            Ok(())
        })?;
        let nc = match nc {
            Some(n) => {
                if n.len() != 8 {
                    return Err(DigestError::Syntax);
                }
                Some(u32::from_str_radix(&n, 16).map_err(|_| DigestError::Syntax)?)
            }
            None => None,
        };
        Ok(DigestCredentials {
            username: username.ok_or(DigestError::Missing("username"))?,
            realm: realm.ok_or(DigestError::Missing("realm"))?,
            nonce: nonce.ok_or(DigestError::Missing("nonce"))?,
            uri: uri.ok_or(DigestError::Missing("uri"))?,
            response: response.ok_or(DigestError::Missing("response"))?,
            algorithm: match algorithm {
                Some(a) => Algorithm::parse(&a)?,
                None => Algorithm::Md5,
            },
            cnonce,
            opaque,
            qop,
            nc,
        })
    }

    /// Header value.
    pub fn to_header_value(&self) -> String {
        let mut s = format!(
            "Digest username={}, realm={}, nonce={}, uri={}, response={}, algorithm={}",
            quote(&self.username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(&self.uri),
            quote(&self.response),
            self.algorithm.as_str()
        );
        if let (Some(qop), Some(nc), Some(cnonce)) = (&self.qop, self.nc, &self.cnonce) {
            s.push_str(&format!(
                ", qop={qop}, nc={nc:08x}, cnonce={}",
                quote(cnonce)
            ));
        }
        if let Some(o) = &self.opaque {
            s.push_str(&format!(", opaque={}", quote(o)));
        }
        s
    }
}

/// H(username:realm:password).
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    alg.hash_parts(&[
        username.as_bytes(),
        b":",
        realm.as_bytes(),
        b":",
        password.as_bytes(),
    ])
    .as_str()
    .to_owned()
}

/// The request-digest (RFC 7616 §3.4.1; RFC 2069 form when `qop` is None).
/// `ha1` is H(username:realm:password); for `-sess` algorithms the session
/// key is derived here.
#[allow(clippy::too_many_arguments)]
pub fn response(
    alg: Algorithm,
    ha1: &str,
    nonce: &str,
    nc: Option<u32>,
    cnonce: Option<&str>,
    qop: Option<&str>,
    method: &str,
    uri: &str,
) -> String {
    response_digest(alg, ha1, nonce, nc, cnonce, qop, method, uri)
        .as_str()
        .to_owned()
}

/// [`response`] without allocating: every hash input is fed to the hasher in pieces.
#[allow(clippy::too_many_arguments)]
fn response_digest(
    alg: Algorithm,
    ha1: &str,
    nonce: &str,
    nc: Option<u32>,
    cnonce: Option<&str>,
    qop: Option<&str>,
    method: &str,
    uri: &str,
) -> HexDigest {
    let cnonce = cnonce.unwrap_or("").as_bytes();
    let sess;
    let ha1 = if alg.is_sess() {
        sess = alg.hash_parts(&[ha1.as_bytes(), b":", nonce.as_bytes(), b":", cnonce]);
        sess.as_bytes()
    } else {
        ha1.as_bytes()
    };
    let ha2 = alg.hash_parts(&[method.as_bytes(), b":", uri.as_bytes()]);
    let nonce = nonce.as_bytes();
    match qop {
        Some(q) => {
            let nc = nc_hex(nc.unwrap_or(0));
            alg.hash_parts(&[
                ha1,
                b":",
                nonce,
                b":",
                nc.as_bytes(),
                b":",
                cnonce,
                b":",
                q.as_bytes(),
                b":",
                ha2.as_bytes(),
            ])
        }
        None => alg.hash_parts(&[ha1, b":", nonce, b":", ha2.as_bytes()]),
    }
}

/// A nonce-count as eight lower-case hex digits (RFC 7616 `nc-value`).
fn nc_hex(nc: u32) -> HexDigest {
    HexDigest::of(&nc.to_be_bytes())
}

/// Build credentials answering `challenge` (client side, §22.2/§22.3).
/// `cnonce` should be random; `nc` counts uses of this nonce starting at 1.
pub fn answer(
    challenge: &Challenge,
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    cnonce: &str,
    nc: u32,
) -> Result<DigestCredentials<'static>, DigestError> {
    let use_qop = if challenge.qop.is_empty() {
        None
    } else if challenge.qop.iter().any(|q| q.eq_ignore_ascii_case("auth")) {
        Some("auth".to_owned())
    } else {
        return Err(DigestError::Qop);
    };
    let h1 = ha1(challenge.algorithm, username, &challenge.realm, password);
    let (nc, cnonce) = match use_qop {
        Some(_) => (Some(nc), Some(cnonce.to_owned())),
        None => (None, None),
    };
    let resp = response(
        challenge.algorithm,
        &h1,
        &challenge.nonce,
        nc,
        cnonce.as_deref(),
        use_qop.as_deref(),
        method,
        uri,
    );
    Ok(DigestCredentials {
        username: Cow::Owned(username.to_owned()),
        realm: Cow::Owned(challenge.realm.clone()),
        nonce: Cow::Owned(challenge.nonce.clone()),
        uri: Cow::Owned(uri.to_owned()),
        response: Cow::Owned(resp),
        algorithm: challenge.algorithm,
        cnonce: cnonce.map(Cow::Owned),
        opaque: challenge.opaque.clone().map(Cow::Owned),
        qop: use_qop.map(Cow::Owned),
        nc,
    })
}

/// Outcome of checking credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Credentials are valid.
    Ok,
    /// Response correct but the nonce expired: challenge again with `stale=true`.
    Stale,
    /// Nonce not issued by us (or tampered with).
    BadNonce,
    /// Wrong password / response.
    BadResponse,
    /// Nonce count not increasing (replay).
    Replay,
    /// Realm, algorithm or qop not what we offer.
    Mismatch,
}

/// Server side: issues nonces and verifies credentials. Nonces are
/// `<issue-second-hex>.<serial-hex>.<HMAC-SHA256(secret, second|serial|realm) prefix>`, so no
/// per-nonce state is needed except the last nonce-count seen.
#[derive(Debug)]
pub struct DigestServer {
    realm: String,
    /// HMAC-SHA256 keyed with the secret, cloned per nonce: keying hashes two blocks that
    /// every MAC would otherwise repeat.
    keyed: HmacSha256,
    epoch: Instant,
    nonce_ttl: Duration,
    check_nc: bool,
    /// The last nonce-count seen per nonce, in a ring indexed by the nonce's serial: serials
    /// are issued in sequence, so the ring holds the most recent `max_tracked` nonces with no
    /// hashing and no allocation per request. Each slot also keeps part of its nonce's MAC, so
    /// a nonce from another shard or instance (same secret, its own serials) that lands on the
    /// same slot is told apart. Grows on demand up to `max_tracked` slots.
    nc_ring: Vec<NcSlot>,
    max_tracked: usize,
    counter: u64,
}

/// One nonce's replay state: `nc == 0` means the slot is free (a nonce-count starts at 1).
#[derive(Debug, Clone, Copy, Default)]
struct NcSlot {
    /// The first 64 bits of the nonce's MAC: which nonce holds the slot.
    tag: u64,
    /// The highest nonce-count accepted with it.
    nc: u32,
}

type HmacSha256 = Hmac<Sha256>;

impl DigestServer {
    /// A server for `realm`. `secret` keys the nonce MAC; `now` is the epoch
    /// nonce timestamps count from.
    pub fn new(realm: impl Into<String>, secret: [u8; 32], now: Instant) -> DigestServer {
        // HMAC accepts keys of any length, so keying cannot fail.
        let keyed = <HmacSha256 as Mac>::new_from_slice(&secret)
            .unwrap_or_else(|_| <HmacSha256 as Mac>::new(&Default::default()));
        DigestServer {
            realm: realm.into(),
            keyed,
            epoch: now,
            nonce_ttl: Duration::from_secs(300),
            check_nc: true,
            nc_ring: Vec::new(),
            max_tracked: 100_000,
            counter: 0,
        }
    }

    /// Change how long a nonce stays fresh (default 300 s).
    pub fn with_nonce_ttl(mut self, ttl: Duration) -> DigestServer {
        self.nonce_ttl = ttl;
        self
    }

    /// Enable or disable nonce-count replay checks (default on).
    pub fn with_nc_check(mut self, on: bool) -> DigestServer {
        self.check_nc = on;
        self
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    fn mac(&self, stamp: u64, serial: u64) -> HexDigest {
        let mut mac = self.keyed.clone();
        mac.update(&stamp.to_be_bytes());
        mac.update(&serial.to_be_bytes());
        mac.update(self.realm.as_bytes());
        let tag = mac.finalize().into_bytes();
        HexDigest::of(tag.get(..16).unwrap_or(&[]))
    }

    /// A fresh nonce, unique per call (the serial keeps two clients
    /// challenged in the same second from sharing a nonce-count space).
    pub fn nonce(&mut self, now: Instant) -> String {
        let mut out = String::with_capacity(2 * 16 + 2 + 32);
        self.write_nonce(now, &mut out);
        out
    }

    fn write_nonce(&mut self, now: Instant, out: &mut String) {
        use std::fmt::Write as _;
        let stamp = now.saturating_duration_since(self.epoch).as_secs();
        self.counter = self.counter.wrapping_add(1);
        let serial = self.counter;
        let _ = write!(out, "{stamp:x}.{serial:x}.");
        out.push_str(self.mac(stamp, serial).as_str());
    }

    /// The header value of [`DigestServer::challenge`], written straight into one string:
    /// a registrar sends one with every first REGISTER of a registration.
    pub fn challenge_value(&mut self, now: Instant, alg: Algorithm, stale: bool) -> String {
        let mut out = String::with_capacity(self.realm.len() + 120);
        out.push_str("Digest realm=");
        push_quoted(&mut out, &self.realm);
        out.push_str(", nonce=\"");
        self.write_nonce(now, &mut out);
        out.push_str("\", algorithm=");
        out.push_str(alg.as_str());
        out.push_str(", qop=\"auth\"");
        if stale {
            out.push_str(", stale=TRUE");
        }
        out
    }

    /// A challenge (qop=auth) for `alg`.
    pub fn challenge(&mut self, now: Instant, alg: Algorithm, stale: bool) -> Challenge {
        Challenge {
            realm: self.realm.clone(),
            nonce: self.nonce(now),
            opaque: None,
            algorithm: alg,
            qop: vec!["auth".to_owned()],
            stale,
        }
    }

    /// Verify credentials for `method` given the user's HA1 for the
    /// credentials' algorithm.
    pub fn verify(
        &mut self,
        now: Instant,
        creds: &DigestCredentials<'_>,
        method: &str,
        ha1: &str,
    ) -> Verdict {
        if creds.realm != self.realm {
            return Verdict::Mismatch;
        }
        if creds
            .qop
            .as_deref()
            .is_some_and(|q| !q.eq_ignore_ascii_case("auth"))
        {
            return Verdict::Mismatch;
        }
        let mut parts = creds.nonce.splitn(3, '.');
        let (Some(stamp_hex), Some(serial_hex), Some(mac)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Verdict::BadNonce;
        };
        let (Ok(stamp), Ok(serial)) = (
            u64::from_str_radix(stamp_hex, 16),
            u64::from_str_radix(serial_hex, 16),
        ) else {
            return Verdict::BadNonce;
        };
        if !constant_time_eq(mac.as_bytes(), self.mac(stamp, serial).as_bytes()) {
            return Verdict::BadNonce;
        }
        let expected = response_digest(
            creds.algorithm,
            ha1,
            &creds.nonce,
            creds.nc,
            creds.cnonce.as_deref(),
            creds.qop.as_deref(),
            method,
            &creds.uri,
        );
        if !constant_time_eq(expected.as_bytes(), creds.response.as_bytes()) {
            return Verdict::BadResponse;
        }
        let age = now
            .saturating_duration_since(self.epoch)
            .as_secs()
            .saturating_sub(stamp);
        if age > self.nonce_ttl.as_secs() {
            return Verdict::Stale;
        }
        if self.check_nc {
            if let Some(nc) = creds.nc {
                // The MAC was checked above, so its first 16 characters are hex.
                let tag = mac
                    .get(..16)
                    .and_then(|t| u64::from_str_radix(t, 16).ok())
                    .unwrap_or(0);
                if !self.accept_nc(serial, tag, nc) {
                    return Verdict::Replay;
                }
            }
        }
        Verdict::Ok
    }

    /// Record nonce-count `nc` for the nonce (`serial`, `tag`); false when it is not above the
    /// last one accepted with that nonce (a replay). A slot held by an older nonce is taken
    /// over: that nonce loses its replay protection, as bounded memory requires.
    fn accept_nc(&mut self, serial: u64, tag: u64, nc: u32) -> bool {
        let cap = self.max_tracked.max(1);
        let idx = usize::try_from(serial % cap as u64).unwrap_or(0);
        if idx >= self.nc_ring.len() {
            let len = (idx + 1).next_power_of_two().clamp(1024, cap);
            self.nc_ring.resize(len.max(idx + 1), NcSlot::default());
        }
        let Some(slot) = self.nc_ring.get_mut(idx) else {
            return true;
        };
        if slot.nc != 0 && slot.tag == tag && nc <= slot.nc {
            return false;
        }
        *slot = NcSlot { tag, nc };
        true
    }

    /// Convenience: verify with a clear-text password.
    pub fn verify_password(
        &mut self,
        now: Instant,
        creds: &DigestCredentials<'_>,
        method: &str,
        password: &str,
    ) -> Verdict {
        let h = ha1(creds.algorithm, &creds.username, &creds.realm, password);
        self.verify(now, creds, method, &h)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_vector() {
        let h1 = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        let r = response(
            Algorithm::Md5,
            &h1,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some(1),
            Some("0a4f113b"),
            Some("auth"),
            "GET",
            "/dir/index.html",
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc7616_vectors_md5_and_sha256() {
        let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        for (alg, expected) in [
            (Algorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
            (
                Algorithm::Sha256,
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ] {
            let h1 = ha1(alg, "Mufasa", "http-auth@example.org", "Circle of Life");
            let r = response(
                alg,
                &h1,
                nonce,
                Some(1),
                Some(cnonce),
                Some("auth"),
                "GET",
                "/dir/index.html",
            );
            assert_eq!(r, expected, "{alg:?}");
        }
    }

    #[test]
    fn challenge_round_trip_and_best_pick() {
        let c = Challenge::parse(
            "Digest realm=\"atlanta.example.com\", qop=\"auth,auth-int\", nonce=\"84a4cc6f3082121f32b42a2187831a9e\", opaque=\"o\", stale=FALSE, algorithm=MD5",
        )
        .unwrap();
        assert_eq!(c.realm, "atlanta.example.com");
        assert_eq!(c.qop, vec!["auth", "auth-int"]);
        assert_eq!(Challenge::parse(&c.to_header_value()).unwrap(), c);
        let best = Challenge::pick_best([
            "Digest realm=\"r\", nonce=\"n1\", algorithm=MD5, qop=\"auth\"",
            "Digest realm=\"r\", nonce=\"n2\", algorithm=SHA-256, qop=\"auth\"",
            "Basic realm=\"r\"",
        ])
        .unwrap();
        assert_eq!(best.algorithm, Algorithm::Sha256);
        assert_eq!(
            Challenge::parse("Basic realm=x"),
            Err(DigestError::NotDigest)
        );
    }

    #[test]
    fn client_server_round_trip() {
        let t0 = Instant::now();
        let mut server = DigestServer::new("natter", [7; 32], t0);
        for alg in [
            Algorithm::Md5,
            Algorithm::Sha256,
            Algorithm::Md5Sess,
            Algorithm::Sha256Sess,
        ] {
            let ch = server.challenge(t0, alg, false);
            let parsed = Challenge::parse(&ch.to_header_value()).unwrap();
            let creds = answer(&parsed, "REGISTER", "sip:natter", "alice", "pw", "abc", 1).unwrap();
            let value = creds.to_header_value();
            let wire = DigestCredentials::parse(&value).unwrap();
            assert_eq!(wire, creds);
            assert_eq!(
                server.verify_password(t0, &wire, "REGISTER", "pw"),
                Verdict::Ok,
                "{alg:?}"
            );
            // Same nc again: replay.
            assert_eq!(
                server.verify_password(t0, &wire, "REGISTER", "pw"),
                Verdict::Replay
            );
            let next = answer(&parsed, "REGISTER", "sip:natter", "alice", "pw", "abc", 2).unwrap();
            assert_eq!(
                server.verify_password(t0, &next, "REGISTER", "pw"),
                Verdict::Ok
            );
            let wrong =
                answer(&parsed, "REGISTER", "sip:natter", "alice", "nope", "abc", 3).unwrap();
            assert_eq!(
                server.verify_password(t0, &wrong, "REGISTER", "pw"),
                Verdict::BadResponse
            );
        }
    }

    #[test]
    fn stale_and_forged_nonces() {
        let t0 = Instant::now();
        let mut server =
            DigestServer::new("natter", [1; 32], t0).with_nonce_ttl(Duration::from_secs(30));
        let ch = server.challenge(t0, Algorithm::Md5, false);
        let creds = answer(&ch, "INVITE", "sip:bob@natter", "alice", "pw", "c", 1).unwrap();
        assert_eq!(
            server.verify_password(t0 + Duration::from_secs(31), &creds, "INVITE", "pw"),
            Verdict::Stale
        );
        let mut forged = ch.clone();
        forged.nonce = "0.1.00000000000000000000000000000000".to_owned();
        let creds = answer(&forged, "INVITE", "sip:bob@natter", "alice", "pw", "c", 1).unwrap();
        assert_eq!(
            server.verify_password(t0, &creds, "INVITE", "pw"),
            Verdict::BadNonce
        );
        let mut other = DigestServer::new("natter", [2; 32], t0);
        let foreign = other.challenge(t0, Algorithm::Md5, false);
        let creds = answer(&foreign, "INVITE", "sip:bob@natter", "alice", "pw", "c", 1).unwrap();
        assert_eq!(
            server.verify_password(t0, &creds, "INVITE", "pw"),
            Verdict::BadNonce
        );
    }

    #[test]
    fn replays_are_caught_per_nonce_across_servers_sharing_a_secret() {
        // Two shards (or cluster instances) share the secret and issue the same serials.
        let t0 = Instant::now();
        let mut a = DigestServer::new("natter", [3; 32], t0);
        let mut b = DigestServer::new("natter", [3; 32], t0);
        let from_a = a.challenge(t0, Algorithm::Md5, false);
        let from_b = b.challenge(t0 + Duration::from_secs(2), Algorithm::Md5, false);
        assert_eq!(
            from_a.nonce.split('.').nth(1),
            from_b.nonce.split('.').nth(1)
        );
        let ca = answer(&from_a, "REGISTER", "sip:natter", "alice", "pw", "x", 1).unwrap();
        let cb = answer(&from_b, "REGISTER", "sip:natter", "bob", "pw", "y", 1).unwrap();
        let now = t0 + Duration::from_secs(3);
        assert_eq!(b.verify_password(now, &cb, "REGISTER", "pw"), Verdict::Ok);
        assert_eq!(b.verify_password(now, &ca, "REGISTER", "pw"), Verdict::Ok);
        assert_eq!(
            b.verify_password(now, &ca, "REGISTER", "pw"),
            Verdict::Replay
        );
        assert_eq!(b.verify_password(now, &cb, "REGISTER", "pw"), Verdict::Ok);
        assert_eq!(
            b.verify_password(now, &cb, "REGISTER", "pw"),
            Verdict::Replay
        );
    }

    #[test]
    fn the_replay_ring_holds_the_latest_nonces() {
        let t0 = Instant::now();
        let mut s = DigestServer::new("natter", [4; 32], t0);
        s.max_tracked = 3000;
        let creds: Vec<_> = (0..5000)
            .map(|i| {
                let ch = s.challenge(t0, Algorithm::Md5, false);
                answer(&ch, "REGISTER", "sip:natter", "u", "pw", &i.to_string(), 1).unwrap()
            })
            .collect();
        for c in &creds {
            assert_eq!(s.verify_password(t0, c, "REGISTER", "pw"), Verdict::Ok);
        }
        assert!(s.nc_ring.len() <= 3000);
        for c in &creds[2000..] {
            assert_eq!(s.verify_password(t0, c, "REGISTER", "pw"), Verdict::Replay);
        }
    }

    #[test]
    fn challenge_value_is_the_challenge_written_out() {
        let t0 = Instant::now();
        for (alg, stale) in [(Algorithm::Md5, false), (Algorithm::Sha256, true)] {
            let mut a = DigestServer::new("a \"quoted\" realm", [5; 32], t0);
            let mut b = DigestServer::new("a \"quoted\" realm", [5; 32], t0);
            assert_eq!(
                a.challenge_value(t0, alg, stale),
                b.challenge(t0, alg, stale).to_header_value()
            );
        }
    }

    #[test]
    fn nonce_counts_are_eight_hex_digits() {
        assert_eq!(nc_hex(1).as_str(), "00000001");
        assert_eq!(nc_hex(0xdead_beef).as_str(), "deadbeef");
        assert_eq!(nc_hex(0x1000).as_str(), "00001000");
    }

    #[test]
    fn rfc2069_mode_without_qop() {
        let t0 = Instant::now();
        let mut server = DigestServer::new("r", [3; 32], t0);
        let mut ch = server.challenge(t0, Algorithm::Md5, false);
        ch.qop.clear();
        let creds = answer(&ch, "REGISTER", "sip:r", "u", "p", "ignored", 1).unwrap();
        assert_eq!(creds.qop, None);
        assert!(!creds.to_header_value().contains("nc="));
        assert_eq!(
            server.verify_password(t0, &creds, "REGISTER", "p"),
            Verdict::Ok
        );
    }

    #[test]
    fn sipp_style_credentials_parse() {
        let v = "Digest username=\"1000\",realm=\"natter\",cnonce=\"6b8b4567\",nc=00000001,qop=auth,uri=\"sip:127.0.0.1:5060\",nonce=\"1.abcd\",response=\"0123\",algorithm=MD5";
        let c = DigestCredentials::parse(v).unwrap();
        assert_eq!(c.username, "1000");
        assert_eq!(c.nc, Some(1));
        assert_eq!(c.qop.as_deref(), Some("auth"));
    }

    #[test]
    fn parameter_names_are_case_insensitive_and_the_last_repeat_wins() {
        let c = DigestCredentials::parse(
            "digest USERNAME=\"bob\", Realm=r, nonce=\"n1\", uri=\"sip:x\", \
             response=\"00\", NC=0000000a, nonce=\"n2\"",
        )
        .expect("parses");
        assert_eq!(c.username, "bob");
        assert_eq!(c.realm, "r");
        assert_eq!(c.nonce, "n2");
        assert_eq!(c.nc, Some(10));
        assert_eq!(c.qop, None);
        assert_eq!(
            DigestCredentials::parse("Digest realm=r, nonce=n, uri=u, response=x"),
            Err(DigestError::Missing("username"))
        );
        assert_eq!(
            DigestCredentials::parse("Basic dXNlcjpwdw=="),
            Err(DigestError::NotDigest)
        );
    }

    #[test]
    fn credentials_unescape_quotes_and_refuse_broken_lists() {
        let c = DigestCredentials::parse(
            r#"Digest username="a\"b, c", realm="r", nonce="n", uri="sip:x", response="00""#,
        )
        .expect("parses");
        assert_eq!(c.username, "a\"b, c");
        for bad in [
            r#"Digest username="abc, realm=r, nonce=n, uri=u, response=x"#,
            "Digest username=a,, realm=r, nonce=n, uri=u, response=x",
            "Digest username=a, realm=r, nonce=n, uri=u, response=x,",
            "Digest username, realm=r, nonce=n, uri=u, response=x",
        ] {
            assert_eq!(
                DigestCredentials::parse(bad),
                Err(DigestError::Syntax),
                "{bad}"
            );
        }
    }
}
