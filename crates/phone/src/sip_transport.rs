//! The phone's SIP transport towards its registrar/proxy: UDP, TCP or TLS (RFC 3261 §18).
//!
//! Over TCP and TLS the phone keeps one connection to the proxy and everything goes over it,
//! both ways (the proxy reaches us over the flow we registered on, RFC 5626). A thread owns
//! the stream: it frames what arrives into SIP messages (natter-sip's `StreamFramer`) and
//! pushes them into the phone's channel as datagrams from the proxy, and it writes what the
//! loop hands it. TLS is rustls; the server certificate is checked against `--tls-ca`, or not
//! at all with `--tls-insecure` (natter serve's first-start certificate is self-signed).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::time::Duration;

use natter_ice_io::Datagram;
use natter_sip::{Frame, Limits, StreamFramer};

/// Which transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SipTransportKind {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl SipTransportKind {
    /// The Via token.
    pub fn via(self) -> &'static str {
        match self {
            SipTransportKind::Udp => "UDP",
            SipTransportKind::Tcp => "TCP",
            SipTransportKind::Tls => "TLS",
        }
    }
}

/// How to check the proxy's TLS certificate.
#[derive(Debug, Clone, Default)]
pub struct TlsTrust {
    /// PEM file with the CA (or the self-signed certificate) to trust.
    pub ca: Option<PathBuf>,
    /// Accept any certificate (testing against a self-signed server).
    pub insecure: bool,
    /// Name to verify (the registrar's host).
    pub server_name: String,
}

/// An open transport.
pub enum SipTransport {
    /// A UDP socket (sends anywhere).
    Udp(UdpSocket),
    /// A stream to the proxy; frames to write go to its I/O thread.
    Stream {
        /// Local address of the connection (Via / Contact).
        local: SocketAddr,
        /// The proxy.
        peer: SocketAddr,
        /// To the writer thread.
        tx: mpsc::Sender<Vec<u8>>,
        /// Set when the connection is gone.
        closed: Arc<AtomicBool>,
    },
}

/// Why the transport could not open.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Socket trouble.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// TLS set-up.
    #[error("TLS: {0}")]
    Tls(String),
}

impl SipTransport {
    /// Local address (for Via and Contact).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            SipTransport::Udp(s) => s.local_addr(),
            SipTransport::Stream { local, .. } => Ok(*local),
        }
    }

    /// Whether the transport is reliable (no SIP retransmissions).
    pub fn reliable(&self) -> bool {
        matches!(self, SipTransport::Stream { .. })
    }

    /// Whether a stream connection has closed.
    pub fn is_closed(&self) -> bool {
        match self {
            SipTransport::Udp(_) => false,
            SipTransport::Stream { closed, .. } => closed.load(Ordering::Relaxed),
        }
    }

    /// Sends a message (or keep-alive). On a stream `to` must be the proxy.
    pub fn send(&self, to: SocketAddr, bytes: &[u8]) {
        match self {
            SipTransport::Udp(s) => {
                let _ = s.send_to(bytes, to);
            }
            SipTransport::Stream { tx, .. } => {
                let _ = tx.send(bytes.to_vec());
            }
        }
    }

    /// Opens a stream transport to `peer` and starts its I/O thread, which delivers each
    /// framed message to `sink` tagged `tag`.
    pub fn connect(
        kind: SipTransportKind,
        peer: SocketAddr,
        trust: &TlsTrust,
        sink: Sender<Datagram>,
        tag: usize,
    ) -> Result<SipTransport, TransportError> {
        let tcp = TcpStream::connect_timeout(&peer, Duration::from_secs(5))?;
        tcp.set_nodelay(true)?;
        // Short reads let one thread both read and write the stream.
        tcp.set_read_timeout(Some(Duration::from_millis(5)))?;
        let local = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let closed = Arc::new(AtomicBool::new(false));
        let flag = closed.clone();
        let stream: Box<dyn ReadWrite> = match kind {
            SipTransportKind::Tls => Box::new(tls_stream(tcp, trust)?),
            _ => Box::new(tcp),
        };
        std::thread::Builder::new()
            .name("sip-stream".into())
            .spawn(move || io_loop(stream, peer, rx, sink, tag, flag))?;
        Ok(SipTransport::Stream {
            local,
            peer,
            tx,
            closed,
        })
    }
}

trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

fn io_loop(
    mut stream: Box<dyn ReadWrite>,
    peer: SocketAddr,
    out: mpsc::Receiver<Vec<u8>>,
    sink: Sender<Datagram>,
    tag: usize,
    closed: Arc<AtomicBool>,
) {
    let mut framer = StreamFramer::new(Limits::default());
    let mut buf = vec![0u8; 16 * 1024];
    'outer: loop {
        loop {
            match out.try_recv() {
                Ok(b) => {
                    if stream.write_all(&b).and_then(|_| stream.flush()).is_err() {
                        break 'outer;
                    }
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => break 'outer,
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if framer.push(buf.get(..n).unwrap_or(&[])).is_err() {
                    break;
                }
                loop {
                    match framer.next_frame() {
                        Ok(Some(Frame::Message(m))) => {
                            if sink
                                .send(Datagram {
                                    tag,
                                    from: peer,
                                    data: m,
                                })
                                .is_err()
                            {
                                break 'outer;
                            }
                        }
                        Ok(Some(Frame::Ping)) => {
                            // RFC 5626 §3.5.1: answer a CRLFCRLF ping with CRLF.
                            let _ = stream.write_all(b"\r\n");
                        }
                        Ok(None) => break,
                        Err(_) => break 'outer,
                    }
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    closed.store(true, Ordering::Relaxed);
}

/// Accepts any server certificate (for `--tls-insecure`), still checking signatures.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
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
        cert: &rustls::pki_types::CertificateDer<'_>,
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

/// A rustls client configuration that trusts what `trust` says: the CA file, or (for
/// `--tls-insecure`) any certificate with a valid signature. Shared with natter-xmpp.
pub fn tls_client_config(trust: &TlsTrust) -> Result<rustls::ClientConfig, TransportError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::Tls(e.to_string()))?;
    Ok(if trust.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        let path = trust
            .ca
            .as_ref()
            .ok_or_else(|| TransportError::Tls("give --tls-ca FILE or --tls-insecure".into()))?;
        let pem = std::fs::read(path)?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert?;
            roots
                .add(cert)
                .map_err(|e| TransportError::Tls(format!("{}: {e}", path.display())))?;
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    })
}

fn tls_stream(
    tcp: TcpStream,
    trust: &TlsTrust,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, TransportError> {
    let config = tls_client_config(trust)?;
    let name = rustls::pki_types::ServerName::try_from(trust.server_name.clone())
        .map_err(|e| TransportError::Tls(format!("server name {:?}: {e}", trust.server_name)))?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|e| TransportError::Tls(e.to_string()))?;
    Ok(rustls::StreamOwned::new(conn, tcp))
}
