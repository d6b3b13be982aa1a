#![no_main]
//! Feeds arbitrary datagrams to a server-role DTLS endpoint, optionally after a genuine
//! ClientHello so that the "waiting for the client's second flight" state is fuzzed too.
//! Nothing may panic, and no deadline may lie beyond the handshake limit. Input: a flag byte, then chunks of `u16 length (big-endian) | datagram`; a
//! zero-length chunk advances virtual time by one second instead.
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use natter_dtls::{DtlsCertificate, DtlsEndpoint, DtlsRole, HANDSHAKE_TIMEOUT};

fn certs() -> &'static (DtlsCertificate, DtlsCertificate) {
    static CERTS: OnceLock<(DtlsCertificate, DtlsCertificate)> = OnceLock::new();
    CERTS.get_or_init(|| {
        (
            DtlsCertificate::generate().expect("certificate"),
            DtlsCertificate::generate().expect("certificate"),
        )
    })
}

/// A genuine ClientHello flight, made once and replayed to every input's server: the
/// server's answer is what is fuzzed, and a fresh client per input cost a TLS context and
/// a key share each time.
fn client_hello() -> &'static [Vec<u8>] {
    static HELLO: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    HELLO.get_or_init(|| {
        let (_, client_cert) = certs();
        let mut client =
            DtlsEndpoint::new(DtlsRole::Client, client_cert, None, Instant::now()).expect("client");
        std::iter::from_fn(|| client.poll_datagram()).collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let (server_cert, client_cert) = certs();
    let start = Instant::now();
    let mut now = start;
    let expected = (flags & 2 != 0).then(|| client_cert.fingerprint_sha256());
    let Ok(mut server) = DtlsEndpoint::new(DtlsRole::Server, server_cert, expected, now) else {
        return;
    };
    if flags & 1 != 0 {
        for d in client_hello() {
            let _ = server.handle_datagram(d, now);
        }
    }
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
        if len == 0 {
            now += Duration::from_secs(1);
            server.handle_timeout(now);
        } else {
            let take = len.min(rest.len());
            let _ = server.handle_datagram(&rest[..take], now);
            rest = &rest[take..];
        }
        while server.poll_datagram().is_some() {}
        while server.poll_event().is_some() {}
        if let Some(at) = server.poll_timeout() {
            assert!(at <= start + HANDSHAKE_TIMEOUT);
        }
    }
    let _ = server.send_application_data(b"x");
    server.close();
});
