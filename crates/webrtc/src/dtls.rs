//! The DTLS association of a PeerConnection behind one interface, with two engines:
//!
//! - [`DtlsImpl::OpenSsl`]: natter-dtls (system OpenSSL 3.0), DTLS 1.2 only; the engine the
//!   softphone uses against SIP peers.
//! - [`DtlsImpl::Dimpl`]: the `dimpl` crate (pure Rust, sans-IO) with DTLS 1.3 and 1.2. As
//!   server it takes the version the ClientHello asks for; as client it offers both. This
//!   is how we meet Chromium on DTLS 1.3, which it prefers.
//!
//! Both report [`natter_dtls::DtlsEvent`]s, so the PeerConnection does not care which runs.
//! The peer's certificate is checked against the SDP fingerprint either way.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use natter_dtls::{
    fingerprint_sha256_of_der, DtlsCertificate, DtlsEndpoint, DtlsError, DtlsEvent, DtlsRole,
};

/// Which DTLS engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DtlsImpl {
    /// natter-dtls over OpenSSL: DTLS 1.2.
    OpenSsl,
    /// dimpl: DTLS 1.3 (and 1.2 with peers that only do 1.2).
    #[default]
    Dimpl,
}

impl DtlsImpl {
    /// From `openssl`/`1.2` or `dimpl`/`1.3`.
    pub fn parse(s: &str) -> Option<DtlsImpl> {
        match s {
            "openssl" | "1.2" => Some(DtlsImpl::OpenSsl),
            "dimpl" | "1.3" | "auto" => Some(DtlsImpl::Dimpl),
            _ => None,
        }
    }
}

/// Most records queued for the owner between polls.
const MAX_EVENTS: usize = 4096;

/// dimpl's configuration, built once per process: `ConfigBuilder::build` self-tests the
/// crypto provider (a key exchange in every group and a signature check), which costs
/// several milliseconds of CPU, and it used to run for every association, on the setup
/// path. The config holds no per-association state (no RNG seed: each association draws
/// from the thread RNG).
pub fn dimpl_config() -> Result<Arc<dimpl::Config>, DtlsError> {
    static CONFIG: std::sync::OnceLock<Result<Arc<dimpl::Config>, String>> =
        std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            dimpl::Config::builder()
                .mtu(1200)
                // ICE already proved the peer can receive at its address.
                .use_server_cookie(false)
                .flight_start_rto(Duration::from_millis(500))
                .build()
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(DtlsError::Setup)
}

/// A dimpl association adapted to natter-dtls's event model.
pub struct DimplEndpoint {
    dtls: dimpl::Dtls,
    expected_fingerprint: String,
    peer_fingerprint: Option<String>,
    keying: Option<(u16, Vec<u8>)>,
    connected: bool,
    dead: bool,
    out: VecDeque<Vec<u8>>,
    events: VecDeque<DtlsEvent>,
    timeout: Option<Instant>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for DimplEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DimplEndpoint")
            .field("connected", &self.connected)
            .field("dead", &self.dead)
            .finish_non_exhaustive()
    }
}

fn srtp_id(p: dimpl::SrtpProfile) -> u16 {
    match p {
        dimpl::SrtpProfile::AES128_CM_SHA1_80 => natter_dtls::SRTP_AES128_CM_HMAC_SHA1_80,
        dimpl::SrtpProfile::AEAD_AES_128_GCM => natter_dtls::SRTP_AEAD_AES_128_GCM,
        _ => natter_dtls::SRTP_AEAD_AES_256_GCM,
    }
}

impl DimplEndpoint {
    /// A server (waits for a ClientHello of either version) or a client (offers 1.3 and
    /// 1.2 in one ClientHello, sent at once).
    pub fn new(
        role: DtlsRole,
        cert: &DtlsCertificate,
        expected_peer_fingerprint: String,
        now: Instant,
    ) -> Result<Self, DtlsError> {
        let config = dimpl_config()?;
        let certificate = dimpl::DtlsCertificate {
            certificate: cert.certificate_der(),
            private_key: cert.private_key_der(),
        };
        let mut dtls = dimpl::Dtls::new_auto(config, certificate, now);
        if role == DtlsRole::Client {
            dtls.set_active(true);
        }
        let mut e = DimplEndpoint {
            dtls,
            expected_fingerprint: expected_peer_fingerprint.to_ascii_uppercase(),
            peer_fingerprint: None,
            keying: None,
            connected: false,
            dead: false,
            out: VecDeque::new(),
            events: VecDeque::new(),
            timeout: None,
            buf: vec![0u8; 2048],
        };
        e.drain();
        Ok(e)
    }

    fn fail(&mut self, err: DtlsError) {
        if !self.dead {
            self.dead = true;
            self.events.push_back(DtlsEvent::Failed(err));
        }
    }

    /// Moves everything dimpl has for us into our queues.
    fn drain(&mut self) {
        for _ in 0..10_000 {
            if self.dead {
                return;
            }
            match self.dtls.poll_output(&mut self.buf) {
                dimpl::Output::Packet(p) => self.out.push_back(p.to_vec()),
                dimpl::Output::BufferTooSmall { needed } => {
                    let n = needed.min(1 << 17);
                    if n <= self.buf.len() {
                        self.fail(DtlsError::Handshake("dimpl output too large".into()));
                        return;
                    }
                    self.buf.resize(n, 0);
                }
                dimpl::Output::Timeout(t) => {
                    self.timeout = Some(t);
                    return;
                }
                dimpl::Output::PeerCert(der) => {
                    let fp = fingerprint_sha256_of_der(der);
                    if fp != self.expected_fingerprint {
                        self.fail(DtlsError::FingerprintMismatch);
                        return;
                    }
                    self.peer_fingerprint = Some(fp);
                }
                dimpl::Output::KeyingMaterial(km, profile) => {
                    self.keying = Some((srtp_id(profile), km.to_vec()));
                    self.maybe_connected();
                }
                dimpl::Output::Connected => {
                    self.connected = true;
                    self.maybe_connected();
                }
                dimpl::Output::ApplicationData(d) if self.events.len() < MAX_EVENTS => {
                    self.events
                        .push_back(DtlsEvent::ApplicationData(d.to_vec()));
                }
                dimpl::Output::CloseNotify => {
                    self.dead = true;
                    self.events.push_back(DtlsEvent::Closed);
                    return;
                }
                _ => {}
            }
        }
    }

    fn maybe_connected(&mut self) {
        if !self.connected {
            return;
        }
        let Some(peer_fingerprint) = self.peer_fingerprint.clone() else {
            // No certificate seen: dimpl requires one, so this is a protocol failure.
            self.fail(DtlsError::Handshake("peer sent no certificate".into()));
            return;
        };
        let Some((profile_id, keying_material)) = self.keying.take() else {
            return;
        };
        let version = match self.dtls.protocol_version() {
            Some(v) if v == dimpl::ProtocolVersion::DTLS1_3 => "1.3",
            _ => "1.2",
        };
        self.events.push_back(DtlsEvent::Connected {
            profile_id,
            keying_material,
            peer_fingerprint,
            version,
        });
    }

    fn result(&mut self, r: Result<(), dimpl::Error>) {
        match r {
            Ok(()) => self.drain(),
            Err(e) => self.fail(DtlsError::Handshake(e.to_string())),
        }
    }
}

/// One DTLS association, either engine.
#[derive(Debug)]
pub enum Dtls {
    /// OpenSSL.
    OpenSsl(DtlsEndpoint),
    /// dimpl.
    Dimpl(Box<DimplEndpoint>),
}

impl Dtls {
    /// Creates the association for `role`, checking the peer against `fingerprint`.
    pub fn new(
        which: DtlsImpl,
        role: DtlsRole,
        cert: &DtlsCertificate,
        fingerprint: String,
        now: Instant,
    ) -> Result<Dtls, DtlsError> {
        Ok(match which {
            DtlsImpl::OpenSsl => {
                Dtls::OpenSsl(DtlsEndpoint::new(role, cert, Some(fingerprint), now)?)
            }
            DtlsImpl::Dimpl => {
                Dtls::Dimpl(Box::new(DimplEndpoint::new(role, cert, fingerprint, now)?))
            }
        })
    }

    /// One received datagram.
    pub fn handle_datagram(&mut self, data: &[u8], now: Instant) {
        match self {
            Dtls::OpenSsl(d) => {
                let _ = d.handle_datagram(data, now);
            }
            Dtls::Dimpl(d) => {
                if d.dead {
                    return;
                }
                // dimpl learns the time from handle_timeout.
                let r = d.dtls.handle_timeout(now);
                d.result(r);
                let r = d.dtls.handle_packet(data);
                d.result(r);
            }
        }
    }

    /// Runs due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self {
            Dtls::OpenSsl(d) => {
                if d.poll_timeout().is_some_and(|t| t <= now) {
                    d.handle_timeout(now);
                }
            }
            Dtls::Dimpl(d) => {
                if d.dead || d.timeout.is_some_and(|t| t > now) {
                    return;
                }
                let r = d.dtls.handle_timeout(now);
                d.result(r);
            }
        }
    }

    /// Next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Dtls::OpenSsl(d) => d.poll_timeout(),
            Dtls::Dimpl(d) => (!d.dead).then_some(d.timeout).flatten(),
        }
    }

    /// Next datagram to send.
    pub fn poll_datagram(&mut self) -> Option<Vec<u8>> {
        match self {
            Dtls::OpenSsl(d) => d.poll_datagram(),
            Dtls::Dimpl(d) => d.out.pop_front(),
        }
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<DtlsEvent> {
        match self {
            Dtls::OpenSsl(d) => d.poll_event(),
            Dtls::Dimpl(d) => d.events.pop_front(),
        }
    }

    /// Encrypts one record (an SCTP packet).
    pub fn send_application_data(&mut self, data: &[u8]) -> Result<(), DtlsError> {
        match self {
            Dtls::OpenSsl(d) => d.send_application_data(data),
            Dtls::Dimpl(d) => {
                if d.dead {
                    return Err(DtlsError::Closed);
                }
                match d.dtls.send_application_data(data) {
                    Ok(_) => {
                        d.drain();
                        Ok(())
                    }
                    Err(e) => {
                        let err = DtlsError::Handshake(e.to_string());
                        d.fail(err.clone());
                        Err(err)
                    }
                }
            }
        }
    }

    /// Sends close_notify.
    pub fn close(&mut self) {
        match self {
            Dtls::OpenSsl(d) => d.close(),
            Dtls::Dimpl(d) => {
                if !d.dead {
                    let _ = d.dtls.close();
                    d.drain();
                    d.dead = true;
                }
            }
        }
    }
}
