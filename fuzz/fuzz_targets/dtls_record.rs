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
        if let Ok(mut client) = DtlsEndpoint::new(DtlsRole::Client, client_cert, None, now) {
            while let Some(d) = client.poll_datagram() {
                let _ = server.handle_datagram(&d, now);
            }
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
