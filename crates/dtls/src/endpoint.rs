//! One DTLS association as a sans-IO state machine: datagrams and time in, datagrams, events
//! and the next deadline out.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openssl::ssl::{
    ErrorCode, Ssl, SslContextBuilder, SslMethod, SslOptions, SslSessionCacheMode, SslStream,
    SslVerifyMode, SslVersion,
};

use crate::cert::{fingerprint_sha256_of_der, normalize_fingerprint};
use crate::pipe::DatagramPipe;
use crate::srtp::{keying_material_len, EXPORTER_LABEL, OFFERED_PROFILES};
use crate::timer::Retransmit;
use crate::{record, timer, DtlsCertificate, DtlsError, DtlsRole};

/// How long a handshake may take, from [`DtlsEndpoint::new`], before it fails with
/// [`DtlsError::Timeout`]. Long enough for five retransmissions (1+2+4+8+8 s).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// First retransmission timeout (RFC 6347 §4.2.4.1 recommends 1 s).
const INITIAL_RTO: Duration = Duration::from_secs(1);
/// Backoff cap; lower than RFC 6347's 60 s so that several retries fit in
/// [`HANDSHAKE_TIMEOUT`].
const MAX_RTO: Duration = Duration::from_secs(8);
/// How soon to ask again when OpenSSL's wall-clock latch was still closed (see `timer.rs`).
const LATCH_RETRY: Duration = Duration::from_micros(5);
/// Largest datagram OpenSSL builds for handshake flights (it fragments messages to fit):
/// safe on any IPv6 path even inside a TURN channel.
const MTU: u32 = 1200;
/// Largest plaintext of one record.
const MAX_PLAINTEXT: usize = 1 << 14;
/// Most events kept for the caller; beyond it received application data is dropped (the
/// one-shot Connected/Closed/Failed events are always kept).
const MAX_QUEUED_EVENTS: usize = 1024;

/// Cipher suites, AEAD first. ECDSA suites serve our own certificate; the RSA ones are there
/// for peers with RSA certificates (baresip 1.0 generates RSA) when we are the client.
const CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:\
ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:\
ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:\
ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA";

/// What the association reports to its owner. `Debug` leaves the keying material out, so
/// events can be logged.
#[derive(Clone, PartialEq, Eq)]
pub enum DtlsEvent {
    /// Handshake complete, peer authenticated by fingerprint, SRTP keys ready.
    Connected {
        /// Negotiated SRTP protection profile (RFC 5764 §4.1.2), e.g. 0x0001.
        profile_id: u16,
        /// `2 * (key + salt)` bytes exported with label "EXTRACTOR-dtls_srtp"; split it with
        /// [`crate::srtp_keys`].
        keying_material: Vec<u8>,
        /// SHA-256 fingerprint of the peer's certificate, `AB:CD:…`.
        peer_fingerprint: String,
        /// DTLS version in use, "1.2" (this backend does not do DTLS 1.3).
        version: &'static str,
    },
    /// Decrypted application data (SCTP for data channels).
    ApplicationData(Vec<u8>),
    /// The peer closed the association (close_notify).
    Closed,
    /// The association failed for good; drop it.
    Failed(DtlsError),
}

impl std::fmt::Debug for DtlsEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connected {
                profile_id,
                keying_material,
                peer_fingerprint,
                version,
            } => f
                .debug_struct("Connected")
                .field("profile_id", &format_args!("{profile_id:#06x}"))
                .field("keying_material_len", &keying_material.len())
                .field("peer_fingerprint", peer_fingerprint)
                .field("version", version)
                .finish(),
            Self::ApplicationData(data) => write!(f, "ApplicationData({} bytes)", data.len()),
            Self::Closed => f.write_str("Closed"),
            Self::Failed(err) => f.debug_tuple("Failed").field(err).finish(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Handshaking,
    Connected,
    Closed,
    Failed,
}

/// What the certificate callback found, shared with the callback closure.
#[derive(Debug, Default)]
struct PeerCheck {
    /// The peer's leaf certificate did not match the expected fingerprint.
    mismatch: bool,
}

/// One DTLS association (one peer, one 5-tuple), sans-IO.
pub struct DtlsEndpoint {
    stream: SslStream<DatagramPipe>,
    role: DtlsRole,
    state: State,
    expected_fingerprint: Option<String>,
    peer_check: Arc<Mutex<PeerCheck>>,
    events: VecDeque<DtlsEvent>,
    handshake_deadline: Instant,
    retransmit_at: Option<Instant>,
    /// When the pending retransmission was first due, while OpenSSL's latch holds it back.
    /// The next one is scheduled from this instant, so latch waits never push the schedule
    /// (1, 3, 7, 15, 23 s) later: the number of retransmissions before
    /// [`HANDSHAKE_TIMEOUT`] does not depend on how fast the wall clock runs against ours.
    held_since: Option<Instant>,
    rto: Duration,
    /// Plaintext buffer for reads, kept to avoid a 16 KiB allocation per datagram.
    read_buf: Vec<u8>,
    /// DTLS-SRTP (the default): peer certificate and an SRTP profile are required. Off for
    /// [`DtlsEndpoint::new_plain_server`].
    srtp: bool,
}

impl std::fmt::Debug for DtlsEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsEndpoint")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("retransmit_at", &self.retransmit_at)
            .finish_non_exhaustive()
    }
}

/// Length of a HelloVerifyRequest cookie (RFC 6347 allows up to 255 bytes).
const COOKIE_LEN: usize = 16;

/// Compares without an early exit, so the time taken does not tell how much of a guess
/// matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn setup_err(e: impl std::fmt::Display) -> DtlsError {
    DtlsError::Setup(e.to_string())
}

impl DtlsEndpoint {
    /// Creates the association. A client queues its ClientHello at once (poll it with
    /// [`Self::poll_datagram`]); a server waits for one. When `expected_peer_fingerprint` is
    /// `Some` (the SDP `a=fingerprint:sha-256` value, any hex case), a peer whose certificate
    /// does not match fails with [`DtlsError::FingerprintMismatch`]. The handshake must finish
    /// within [`HANDSHAKE_TIMEOUT`] of `now`.
    pub fn new(
        role: DtlsRole,
        cert: &DtlsCertificate,
        expected_peer_fingerprint: Option<String>,
        now: Instant,
    ) -> Result<Self, DtlsError> {
        Self::build(role, cert, expected_peer_fingerprint, now, true, None)
    }

    /// A plain DTLS 1.2 server, for protocols other than DTLS-SRTP (TURN over DTLS, RFC
    /// 7350): no client certificate is asked for and no SRTP profile is negotiated;
    /// [`DtlsEvent::Connected`] then has profile 0, no keying material, and the client's
    /// certificate fingerprint if it sent one (else empty).
    ///
    /// The server answers a ClientHello without a cookie with a HelloVerifyRequest (RFC 6347
    /// §4.2.1) and sends its certificate flight only to a client that echoes the cookie, so a
    /// spoofed source address gets one small datagram, not an amplified flight. The cookie is
    /// random per association; the association must be kept between the two ClientHellos
    /// (OpenSSL's stateful exchange), which the caller bounds by count and handshake time.
    pub fn new_plain_server(cert: &DtlsCertificate, now: Instant) -> Result<Self, DtlsError> {
        let mut cookie = [0u8; COOKIE_LEN];
        openssl::rand::rand_bytes(&mut cookie).map_err(setup_err)?;
        Self::build(DtlsRole::Server, cert, None, now, false, Some(cookie))
    }

    /// The client side of [`Self::new_plain_server`]: no SRTP; the server's certificate is
    /// checked against `expected_server_fingerprint` when given (else accepted as is: use
    /// only where the channel needs no server authentication, e.g. tests).
    pub fn new_plain_client(
        cert: &DtlsCertificate,
        expected_server_fingerprint: Option<String>,
        now: Instant,
    ) -> Result<Self, DtlsError> {
        Self::build(
            DtlsRole::Client,
            cert,
            expected_server_fingerprint,
            now,
            false,
            None,
        )
    }

    fn build(
        role: DtlsRole,
        cert: &DtlsCertificate,
        expected_peer_fingerprint: Option<String>,
        now: Instant,
        srtp: bool,
        cookie: Option<[u8; COOKIE_LEN]>,
    ) -> Result<Self, DtlsError> {
        let expected_fingerprint = expected_peer_fingerprint.map(|fp| normalize_fingerprint(&fp));

        let mut ctx = SslContextBuilder::new(SslMethod::dtls()).map_err(setup_err)?;
        ctx.set_min_proto_version(Some(SslVersion::DTLS1_2))
            .map_err(setup_err)?;
        ctx.set_max_proto_version(Some(SslVersion::DTLS1_2))
            .map_err(setup_err)?;
        ctx.set_cipher_list(CIPHERS).map_err(setup_err)?;
        if srtp {
            ctx.set_tlsext_use_srtp(OFFERED_PROFILES)
                .map_err(setup_err)?;
        }
        ctx.set_certificate(&cert.cert).map_err(setup_err)?;
        ctx.set_private_key(&cert.key).map_err(setup_err)?;
        ctx.check_private_key().map_err(setup_err)?;
        // We set the MTU ourselves; tickets and a session cache are useless for one-shot
        // associations keyed by SDP; renegotiation could swap the peer's certificate (and
        // OpenSSL's retransmission clock) under an established association.
        ctx.set_options(
            SslOptions::NO_QUERY_MTU | SslOptions::NO_TICKET | SslOptions::NO_RENEGOTIATION,
        );
        ctx.set_session_cache_mode(SslSessionCacheMode::OFF);
        if let Some(cookie) = cookie {
            ctx.set_options(SslOptions::COOKIE_EXCHANGE);
            ctx.set_cookie_generate_cb(move |_, out| {
                let n = COOKIE_LEN.min(out.len());
                out[..n].copy_from_slice(&cookie[..n]);
                Ok(n)
            });
            ctx.set_cookie_verify_cb(move |_, got| constant_time_eq(got, &cookie));
        }
        let ctx = ctx.build();

        let mut ssl = Ssl::new(&ctx).map_err(setup_err)?;
        ssl.set_mtu(MTU).map_err(setup_err)?;
        timer::install(&mut ssl);

        // Both sides demand a certificate (RFC 5763 §5); there is no chain to validate, only
        // the fingerprint of the leaf.
        let peer_check = Arc::new(Mutex::new(PeerCheck::default()));
        let check = Arc::clone(&peer_check);
        let expected = expected_fingerprint.clone();
        let mode = if srtp || role == DtlsRole::Client {
            SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT
        } else {
            SslVerifyMode::NONE
        };
        ssl.set_verify_callback(mode, move |_chain_ok, ctx| {
            if ctx.error_depth() != 0 {
                return true;
            }
            let Some(der) = ctx.current_cert().and_then(|c| c.to_der().ok()) else {
                return false;
            };
            let seen = fingerprint_sha256_of_der(&der);
            let ok = expected.as_ref().map_or(true, |want| *want == seen);
            if let Ok(mut check) = check.lock() {
                check.mismatch |= !ok;
            }
            ok
        });
        match role {
            DtlsRole::Client => ssl.set_connect_state(),
            DtlsRole::Server => ssl.set_accept_state(),
        }
        let stream = SslStream::new(ssl, DatagramPipe::default()).map_err(setup_err)?;

        let mut endpoint = Self {
            stream,
            role,
            state: State::Handshaking,
            expected_fingerprint,
            peer_check,
            events: VecDeque::new(),
            handshake_deadline: now + HANDSHAKE_TIMEOUT,
            retransmit_at: None,
            held_since: None,
            rto: INITIAL_RTO,
            read_buf: Vec::new(),
            srtp,
        };
        if role == DtlsRole::Client {
            endpoint.drive(None, now);
        }
        Ok(endpoint)
    }

    /// Feeds one whole received UDP datagram (first byte 20..=63 per RFC 7983).
    ///
    /// `Err` means only that this datagram was dropped (not DTLS, or the association is
    /// already over); the association itself is unaffected. Failures of the association are
    /// reported once, as [`DtlsEvent::Failed`].
    pub fn handle_datagram(&mut self, datagram: &[u8], now: Instant) -> Result<(), DtlsError> {
        if matches!(self.state, State::Closed | State::Failed) {
            return Err(DtlsError::Closed);
        }
        if !record::is_plausible_dtls(datagram) {
            return Err(DtlsError::NotDtls);
        }
        self.drive(Some(datagram.to_vec()), now);
        Ok(())
    }

    /// Advances time: retransmits the last flight when due, and gives up on a handshake
    /// that ran out of time.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state != State::Handshaking {
            return;
        }
        if now >= self.handshake_deadline {
            self.fail(DtlsError::Timeout);
            return;
        }
        let Some(due) = self.retransmit_at else {
            return;
        };
        if now < due {
            return;
        }
        // This retransmission is wanted: let the writes through.
        self.stream.get_mut().begin(None, false);
        match timer::retransmit(self.stream.ssl()) {
            Retransmit::Sent => {
                let sent_at = self.held_since.take().unwrap_or(now);
                self.rto = (self.rto * 2).min(MAX_RTO);
                self.retransmit_at = Some(sent_at + self.rto);
            }
            Retransmit::NotYet => {
                self.held_since.get_or_insert(due);
                self.retransmit_at = Some(now + LATCH_RETRY);
            }
            Retransmit::GaveUp => self.fail(DtlsError::Timeout),
        }
    }

    /// Next datagram to send to the peer.
    pub fn poll_datagram(&mut self) -> Option<Vec<u8>> {
        self.stream.get_mut().pop_outbound()
    }

    /// Next event for the owner.
    pub fn poll_event(&mut self) -> Option<DtlsEvent> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] wants to be called next; `None` once the handshake is over.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state != State::Handshaking {
            return None;
        }
        Some(match self.retransmit_at {
            Some(at) => at.min(self.handshake_deadline),
            None => self.handshake_deadline,
        })
    }

    /// Encrypts `data` as one application-data record, i.e. one datagram (queued for
    /// [`Self::poll_datagram`]). Not fragmented: the caller (SCTP) keeps its packets within
    /// the path MTU minus the DTLS overhead (37 bytes with AES-GCM). At most 2^14 bytes.
    pub fn send_application_data(&mut self, data: &[u8]) -> Result<(), DtlsError> {
        match self.state {
            State::Connected => {}
            State::Handshaking => return Err(DtlsError::NotConnected),
            State::Closed | State::Failed => return Err(DtlsError::Closed),
        }
        if data.len() > MAX_PLAINTEXT {
            return Err(DtlsError::TooLarge(data.len()));
        }
        if data.is_empty() {
            return Ok(());
        }
        self.stream.get_mut().begin(None, false);
        match self.stream.ssl_write(data) {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = DtlsError::Handshake(e.to_string());
                self.fail(err.clone());
                Err(err)
            }
        }
    }

    /// Sends close_notify and ends the association. Idempotent.
    pub fn close(&mut self) {
        if matches!(self.state, State::Closed | State::Failed) {
            return;
        }
        self.stream.get_mut().begin(None, false);
        // Best effort: the alert is queued if OpenSSL can produce it.
        let _ = self.stream.shutdown();
        self.state = State::Closed;
        self.retransmit_at = None;
    }

    /// True once the handshake completed (and until close or failure).
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// Our role in the handshake.
    pub fn role(&self) -> DtlsRole {
        self.role
    }

    /// Runs the engine on one inbound datagram (or none, to start a client handshake).
    fn drive(&mut self, inbound: Option<Vec<u8>>, now: Instant) {
        let written_before = self.stream.get_mut().written;
        self.stream.get_mut().begin(inbound, true);
        if self.state == State::Handshaking {
            match self.stream.do_handshake() {
                Ok(()) => self.on_handshake_done(),
                Err(e) if e.code() == ErrorCode::WANT_READ => {}
                Err(e) => {
                    let err = if self.peer_check.lock().is_ok_and(|c| c.mismatch) {
                        DtlsError::FingerprintMismatch
                    } else {
                        DtlsError::Handshake(e.to_string())
                    };
                    self.fail(err);
                    return;
                }
            }
        }
        if self.state == State::Connected {
            self.read_application_data();
        }
        if self.state == State::Handshaking {
            self.schedule_retransmit(written_before, now);
        }
    }

    /// Re-arms our retransmission clock after an engine call during the handshake.
    fn schedule_retransmit(&mut self, written_before: u64, now: Instant) {
        if !timer::is_armed(self.stream.ssl()) {
            self.retransmit_at = None;
            self.held_since = None;
            self.rto = INITIAL_RTO;
        } else if self.stream.get_mut().written != written_before || self.retransmit_at.is_none() {
            // A new flight (or a re-send prompted by the peer): start its clock afresh.
            self.rto = INITIAL_RTO;
            self.held_since = None;
            self.retransmit_at = Some(now + self.rto);
        }
    }

    fn on_handshake_done(&mut self) {
        if !self.srtp {
            let peer_fingerprint = self
                .stream
                .ssl()
                .peer_certificate()
                .and_then(|c| c.to_der().ok())
                .map(|der| fingerprint_sha256_of_der(&der))
                .unwrap_or_default();
            self.state = State::Connected;
            self.retransmit_at = None;
            self.events.push_back(DtlsEvent::Connected {
                profile_id: 0,
                keying_material: Vec::new(),
                peer_fingerprint,
                version: "1.2",
            });
            return;
        }
        let ssl = self.stream.ssl();
        let Some(peer_der) = ssl.peer_certificate().and_then(|c| c.to_der().ok()) else {
            self.fail(DtlsError::Handshake("peer sent no certificate".to_owned()));
            return;
        };
        let peer_fingerprint = fingerprint_sha256_of_der(&peer_der);
        // Checked again here, on the certificate OpenSSL actually used.
        if let Some(want) = &self.expected_fingerprint {
            if *want != peer_fingerprint {
                self.fail(DtlsError::FingerprintMismatch);
                return;
            }
        }
        let Some(profile_id) = ssl
            .selected_srtp_profile()
            .and_then(|p| u16::try_from(p.id().as_raw()).ok())
        else {
            self.fail(DtlsError::NoSrtpProfile);
            return;
        };
        let Some(len) = keying_material_len(profile_id) else {
            self.fail(DtlsError::NoSrtpProfile);
            return;
        };
        let mut keying_material = vec![0u8; len];
        if let Err(e) = ssl.export_keying_material(&mut keying_material, EXPORTER_LABEL, None) {
            self.fail(DtlsError::Handshake(format!("exporter: {e}")));
            return;
        }
        self.state = State::Connected;
        self.retransmit_at = None;
        self.events.push_back(DtlsEvent::Connected {
            profile_id,
            keying_material,
            peer_fingerprint,
            version: "1.2",
        });
    }

    /// Drains decrypted records (and close_notify) after the handshake.
    fn read_application_data(&mut self) {
        let mut buf = std::mem::take(&mut self.read_buf);
        buf.resize(MAX_PLAINTEXT + 1, 0);
        loop {
            match self.stream.ssl_read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if self.events.len() < MAX_QUEUED_EVENTS {
                        let data = buf.get(..n).unwrap_or_default().to_vec();
                        self.events.push_back(DtlsEvent::ApplicationData(data));
                    }
                }
                Err(e) if e.code() == ErrorCode::WANT_READ => break,
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => {
                    self.state = State::Closed;
                    self.events.push_back(DtlsEvent::Closed);
                    break;
                }
                Err(e) => {
                    self.fail(DtlsError::Handshake(e.to_string()));
                    break;
                }
            }
        }
        self.read_buf = buf;
    }

    fn fail(&mut self, err: DtlsError) {
        if matches!(self.state, State::Closed | State::Failed) {
            return;
        }
        self.state = State::Failed;
        self.retransmit_at = None;
        self.events.push_back(DtlsEvent::Failed(err));
    }
}

#[cfg(test)]
mod plain_tests {
    use super::*;

    fn pump(a: &mut DtlsEndpoint, b: &mut DtlsEndpoint, now: Instant) {
        for _ in 0..20 {
            let mut moved = false;
            while let Some(d) = a.poll_datagram() {
                let _ = b.handle_datagram(&d, now);
                moved = true;
            }
            while let Some(d) = b.poll_datagram() {
                let _ = a.handle_datagram(&d, now);
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }

    #[test]
    fn plain_server_needs_no_client_certificate_check_nor_srtp() {
        let now = Instant::now();
        let server_cert = DtlsCertificate::generate().unwrap();
        let client_cert = DtlsCertificate::generate().unwrap();
        let mut server = DtlsEndpoint::new_plain_server(&server_cert, now).unwrap();
        let mut client = DtlsEndpoint::new_plain_client(
            &client_cert,
            Some(server_cert.fingerprint_sha256()),
            now,
        )
        .unwrap();
        pump(&mut client, &mut server, now);
        assert!(client.is_connected() && server.is_connected());
        let Some(DtlsEvent::Connected {
            profile_id,
            keying_material,
            ..
        }) = server.poll_event()
        else {
            panic!("server not connected");
        };
        assert_eq!((profile_id, keying_material.len()), (0, 0));
        client.send_application_data(b"allocate").unwrap();
        pump(&mut client, &mut server, now);
        assert_eq!(
            server.poll_event(),
            Some(DtlsEvent::ApplicationData(b"allocate".to_vec()))
        );
        // A client expecting another server certificate refuses this one.
        let other = DtlsCertificate::generate().unwrap();
        let mut server = DtlsEndpoint::new_plain_server(&server_cert, now).unwrap();
        let mut client =
            DtlsEndpoint::new_plain_client(&client_cert, Some(other.fingerprint_sha256()), now)
                .unwrap();
        pump(&mut client, &mut server, now);
        assert!(!client.is_connected());
        assert!(matches!(
            std::iter::from_fn(|| client.poll_event()).last(),
            Some(DtlsEvent::Failed(DtlsError::FingerprintMismatch))
        ));
    }

    /// Record type 22 (handshake), then the handshake type at byte 13 of the record.
    fn handshake_type(datagram: &[u8]) -> Option<u8> {
        (datagram.first() == Some(&22)).then(|| datagram.get(13).copied())?
    }

    #[test]
    fn plain_server_verifies_the_client_address_with_a_cookie_first() {
        let now = Instant::now();
        let server_cert = DtlsCertificate::generate().unwrap();
        let client_cert = DtlsCertificate::generate().unwrap();
        let mut server = DtlsEndpoint::new_plain_server(&server_cert, now).unwrap();
        let mut client = DtlsEndpoint::new_plain_client(&client_cert, None, now).unwrap();
        let hello = client.poll_datagram().unwrap();
        assert_eq!(handshake_type(&hello), Some(1), "ClientHello");
        server.handle_datagram(&hello, now).unwrap();
        // One small HelloVerifyRequest (type 3) and nothing else: no certificate flight to
        // an address that has not answered yet.
        let hvr = server.poll_datagram().unwrap();
        assert_eq!(handshake_type(&hvr), Some(3), "HelloVerifyRequest");
        assert!(hvr.len() < hello.len(), "{} >= {}", hvr.len(), hello.len());
        assert_eq!(server.poll_datagram(), None);
        // Another association answers the same ClientHello with its own cookie.
        let mut other = DtlsEndpoint::new_plain_server(&server_cert, now).unwrap();
        other.handle_datagram(&hello, now).unwrap();
        let other_hvr = other.poll_datagram().unwrap();
        assert_eq!(handshake_type(&other_hvr), Some(3));
        assert_ne!(other_hvr, hvr, "cookies differ per association");
        // The real client echoes the cookie and the handshake completes.
        client.handle_datagram(&hvr, now).unwrap();
        let hello2 = client.poll_datagram().unwrap();
        assert_eq!(handshake_type(&hello2), Some(1));
        assert!(
            hello2.len() > hello.len(),
            "second ClientHello carries the cookie"
        );
        server.handle_datagram(&hello2, now).unwrap();
        let flight = server.poll_datagram().unwrap();
        assert_eq!(handshake_type(&flight), Some(2), "ServerHello");
        let _ = client.handle_datagram(&flight, now);
        pump(&mut client, &mut server, now);
        assert!(client.is_connected() && server.is_connected());
    }

    #[test]
    fn plain_server_refuses_a_wrong_cookie() {
        let now = Instant::now();
        let server_cert = DtlsCertificate::generate().unwrap();
        let client_cert = DtlsCertificate::generate().unwrap();
        let mut server = DtlsEndpoint::new_plain_server(&server_cert, now).unwrap();
        let mut client = DtlsEndpoint::new_plain_client(&client_cert, None, now).unwrap();
        let hello = client.poll_datagram().unwrap();
        server.handle_datagram(&hello, now).unwrap();
        let mut hvr = server.poll_datagram().unwrap();
        // Flip the cookie's last byte: the client echoes a cookie the server never issued.
        let last = hvr.len() - 1;
        hvr[last] ^= 0x55;
        client.handle_datagram(&hvr, now).unwrap();
        let hello2 = client.poll_datagram().unwrap();
        let _ = server.handle_datagram(&hello2, now);
        let answer = server.poll_datagram();
        assert!(
            answer.as_deref().and_then(handshake_type) != Some(2),
            "no ServerHello for a wrong cookie"
        );
        assert!(!server.is_connected());
    }
}
