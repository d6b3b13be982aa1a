//! One-shot client exchanges over UDP, TCP or TLS for operator commands
//! (`natter sip options|register|message`): runs the sans-IO [`UserAgent`] on
//! a socket until the request completes and returns every message sent and
//! received, so the CLI can print the exchange.
//!
//! Over TCP and TLS everything goes over one connection to the server, which
//! is also where responses come back (RFC 3261 §18.2.2). TLS is rustls; the
//! server certificate is checked against a PEM file, or not at all when the
//! operator asks (natter serve's first-start certificate is self-signed).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use natter_sip::transaction::TimerConfig;
use natter_sip::ua::{UaConfig, UaEvent, UserAgent};
use natter_sip::{Frame, Limits, StreamFramer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use crate::Error;

/// Who we are and where the server is.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Registrar/proxy address (all requests go there).
    pub server: SocketAddr,
    /// Local address to bind (port 0 = any).
    pub bind: SocketAddr,
    /// Our user name.
    pub user: String,
    /// Our domain (AOR host, registrar URI).
    pub domain: String,
    /// Password for digest challenges.
    pub password: Option<String>,
    /// Give up after this long.
    pub timeout: Duration,
    /// Contact URI to register instead of our own socket address.
    pub contact: Option<String>,
}

/// Direction of a logged message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// We sent it.
    Sent,
    /// We received it.
    Received,
}

/// Result of a client exchange.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Final status code (0 if none arrived).
    pub code: u16,
    /// Every message, in order, as wire text.
    pub log: Vec<(Direction, String)>,
}

/// Which transport carries the exchange.
#[derive(Debug, Clone, Default)]
pub enum ClientTransport {
    /// Datagrams (retransmitted by the transaction layer).
    #[default]
    Udp,
    /// One TCP connection to the server.
    Tcp,
    /// One TLS connection to the server.
    Tls(TlsTrust),
}

impl ClientTransport {
    /// The Via token.
    fn via(&self) -> &'static str {
        match self {
            ClientTransport::Udp => "UDP",
            ClientTransport::Tcp => "TCP",
            ClientTransport::Tls(_) => "TLS",
        }
    }
}

/// How to check the server's TLS certificate.
#[derive(Debug, Clone, Default)]
pub struct TlsTrust {
    /// PEM file with the CA (or the self-signed certificate) to trust.
    pub ca: Option<PathBuf>,
    /// Accept any certificate (signatures are still checked).
    pub insecure: bool,
    /// Name to verify the certificate against (host name or IP address).
    pub server_name: String,
}

trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncStream for T {}

/// An open socket: datagrams, or a framed stream to the server.
enum Conn {
    Udp(UdpSocket),
    Stream {
        io: Box<dyn AsyncStream>,
        framer: StreamFramer,
        peer: SocketAddr,
    },
}

impl Conn {
    async fn send(&mut self, to: SocketAddr, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Udp(s) => s.send_to(bytes, to).await.map(|_| ()),
            // A stream only reaches the server, whatever the UA addressed.
            Conn::Stream { io, .. } => {
                io.write_all(bytes).await?;
                io.flush().await
            }
        }
    }

    /// Next message. Cancel-safe: bytes are only consumed once a read
    /// completes, and complete frames stay buffered in the framer.
    async fn recv(&mut self, buf: &mut [u8]) -> std::io::Result<(SocketAddr, Vec<u8>)> {
        match self {
            Conn::Udp(s) => {
                let (n, from) = s.recv_from(buf).await?;
                Ok((from, buf.get(..n).unwrap_or(&[]).to_vec()))
            }
            Conn::Stream { io, framer, peer } => loop {
                match framer.next_frame().map_err(std::io::Error::other)? {
                    Some(Frame::Message(m)) => return Ok((*peer, m)),
                    // RFC 5626 §3.5.1: answer a CRLFCRLF ping with CRLF.
                    Some(Frame::Ping) => io.write_all(b"\r\n").await?,
                    None => {
                        let n = io.read(buf).await?;
                        if n == 0 {
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                "server closed the connection",
                            ));
                        }
                        framer
                            .push(buf.get(..n).unwrap_or(&[]))
                            .map_err(std::io::Error::other)?;
                    }
                }
            },
        }
    }
}

/// Opens the socket (and the connection for TCP/TLS); returns it with the
/// local address to put in Via and Contact.
async fn open(
    cfg: &ClientConfig,
    transport: &ClientTransport,
) -> Result<(Conn, SocketAddr), Error> {
    if let ClientTransport::Udp = transport {
        let sock = UdpSocket::bind(cfg.bind).await?;
        let mut local = sock.local_addr()?;
        if local.ip().is_unspecified() {
            // Via and Contact need an address the server can reach: the one the
            // kernel would route from (a connected probe socket tells us).
            let probe = UdpSocket::bind(SocketAddr::new(local.ip(), 0)).await?;
            if probe.connect(cfg.server).await.is_ok() {
                local.set_ip(probe.local_addr()?.ip());
            }
        }
        return Ok((Conn::Udp(sock), local));
    }
    let tcp = if cfg.bind.ip().is_unspecified() && cfg.bind.port() == 0 {
        tokio::time::timeout(cfg.timeout, TcpStream::connect(cfg.server)).await
    } else {
        let sock = if cfg.server.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        sock.bind(cfg.bind)?;
        tokio::time::timeout(cfg.timeout, sock.connect(cfg.server)).await
    }
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    tcp.set_nodelay(true)?;
    let local = tcp.local_addr()?;
    let io: Box<dyn AsyncStream> = match transport {
        ClientTransport::Tls(trust) => {
            let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(trust)?));
            let name = ServerName::try_from(trust.server_name.clone()).map_err(|e| {
                Error::Config(format!("TLS server name {:?}: {e}", trust.server_name))
            })?;
            let tls = tokio::time::timeout(cfg.timeout, connector.connect(name, tcp))
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
                })??;
            Box::new(tls)
        }
        _ => Box::new(tcp),
    };
    Ok((
        Conn::Stream {
            io,
            framer: StreamFramer::new(Limits::default()),
            peer: cfg.server,
        },
        local,
    ))
}

/// The rustls client configuration for `trust` (also used by the proxy
/// for its outbound TLS connections).
pub fn tls_config(trust: &TlsTrust) -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?;
    if trust.insecure {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth());
    }
    let path = trust
        .ca
        .as_ref()
        .ok_or_else(|| Error::Config("TLS: give --tls-ca FILE or --tls-insecure".into()))?;
    let pem = std::fs::read(path)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        roots
            .add(cert)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(Error::Config(format!(
            "{}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// Accepts any server certificate (for `--tls-insecure`), still checking the
/// handshake signatures so the connection is at least consistent.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

enum Op<'a> {
    Options(&'a str),
    Register(u32),
    Message(&'a str, &'a str),
}

async fn run(
    cfg: &ClientConfig,
    transport: &ClientTransport,
    op: Op<'_>,
) -> Result<Exchange, Error> {
    let (mut conn, local) = open(cfg, transport).await?;
    let mut ua = UserAgent::new(UaConfig {
        user: cfg.user.clone(),
        domain: cfg.domain.clone(),
        display: None,
        password: cfg.password.clone(),
        local: local.to_string(),
        transport: transport.via().into(),
        reliable: !matches!(transport, ClientTransport::Udp),
        outbound: cfg.server,
        timers: TimerConfig::default(),
        seed: u64::from(local.port()) ^ 0x6e61_7474_6572,
    });
    if let Some(c) = &cfg.contact {
        ua.set_contact(c.clone());
    }
    let start = Instant::now();
    match op {
        Op::Options(uri) => {
            ua.options(start, uri);
        }
        Op::Register(exp) => ua.register(start, exp),
        Op::Message(uri, text) => {
            ua.message(start, uri, "text/plain", text.as_bytes().to_vec());
        }
    }
    let deadline = start + cfg.timeout;
    let mut log = Vec::new();
    let mut buf = vec![0u8; 65_535];
    loop {
        while let Some((to, bytes)) = ua.poll_transmit() {
            log.push((
                Direction::Sent,
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
            conn.send(to, &bytes).await?;
        }
        while let Some(ev) = ua.poll_event() {
            match ev {
                UaEvent::Response { code, .. } | UaEvent::Registration { code, .. } => {
                    return Ok(Exchange { code, log });
                }
                UaEvent::RequestFailed { .. } => return Ok(Exchange { code: 408, log }),
                _ => {}
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(Exchange { code: 0, log });
        }
        let wake = ua.next_timeout().unwrap_or(deadline).min(deadline);
        let wait = wake.saturating_duration_since(now);
        match tokio::time::timeout(wait, conn.recv(&mut buf)).await {
            Ok(Ok((from, data))) => {
                log.push((
                    Direction::Received,
                    String::from_utf8_lossy(&data).into_owned(),
                ));
                ua.handle(Instant::now(), from, &data);
            }
            Ok(Err(e)) => return Err(Error::Io(e)),
            Err(_) => ua.on_timer(Instant::now()),
        }
    }
}

/// OPTIONS to `uri` over UDP.
pub async fn options(cfg: &ClientConfig, uri: &str) -> Result<Exchange, Error> {
    options_over(cfg, &ClientTransport::Udp, uri).await
}

/// REGISTER our contact for `expires` seconds (0 removes it) over UDP.
pub async fn register(cfg: &ClientConfig, expires: u32) -> Result<Exchange, Error> {
    register_over(cfg, &ClientTransport::Udp, expires).await
}

/// MESSAGE (text/plain) to `uri` over UDP.
pub async fn message(cfg: &ClientConfig, uri: &str, text: &str) -> Result<Exchange, Error> {
    message_over(cfg, &ClientTransport::Udp, uri, text).await
}

/// OPTIONS to `uri` over `transport`.
pub async fn options_over(
    cfg: &ClientConfig,
    transport: &ClientTransport,
    uri: &str,
) -> Result<Exchange, Error> {
    run(cfg, transport, Op::Options(uri)).await
}

/// REGISTER our contact for `expires` seconds (0 removes it) over `transport`.
pub async fn register_over(
    cfg: &ClientConfig,
    transport: &ClientTransport,
    expires: u32,
) -> Result<Exchange, Error> {
    run(cfg, transport, Op::Register(expires)).await
}

/// MESSAGE (text/plain) to `uri` over `transport`.
pub async fn message_over(
    cfg: &ClientConfig,
    transport: &ClientTransport,
    uri: &str,
    text: &str,
) -> Result<Exchange, Error> {
    run(cfg, transport, Op::Message(uri, text)).await
}
