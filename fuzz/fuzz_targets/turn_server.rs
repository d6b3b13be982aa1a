#![no_main]
//! Fuzzes the TURN server core with arbitrary client and peer datagrams on an allocation that
//! exists, so every request path (auth, Allocate, Refresh, permissions, channels, Send, ChannelData)
//! is reachable. Nothing may panic, and the server must keep answering afterwards.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use natter_turn::server::{
    Authenticator, FiveTuple, Quotas, RelayError, RelayGrant, RelayProvider, RelayRequest, Server,
    ServerConfig, Transport, UserKeys,
};

struct Relays(u16);
impl RelayProvider for Relays {
    fn open(&mut self, _r: RelayRequest) -> Result<RelayGrant, RelayError> {
        self.0 = self.0.wrapping_add(1);
        Ok(RelayGrant {
            addr: SocketAddr::from(([192, 0, 2, 1], 1024 + self.0 % 60000)),
            token: None,
        })
    }
    fn close(&mut self, _a: SocketAddr) {}
}

struct Any;
impl Authenticator for Any {
    fn keys(&self, u: &str, r: &str, _: u64) -> Option<UserKeys> {
        Some(UserKeys {
            md5: natter_stun::credentials::long_term_key(u, r, "pw"),
            sha256: None,
        })
    }
}

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let cfg = ServerConfig {
        auth_required: data.first().is_some_and(|b| b & 1 == 1),
        unauth_rate: 0,
        ..ServerConfig::default()
    };
    let mut s = Server::new(
        cfg,
        t0,
        0,
        [0; 32],
        Arc::new(Quotas::default()),
        Relays(0),
        Any,
    );
    let five = FiveTuple {
        client: SocketAddr::from(([198, 51, 100, 1], 4000)),
        server: SocketAddr::from(([192, 0, 2, 1], 3478)),
        transport: if data.get(1).is_some_and(|b| b & 1 == 1) {
            Transport::Tcp
        } else {
            Transport::Udp
        },
    };
    let mut out = Vec::new();
    // Split the input into datagrams at 0xFF 0xFF markers; alternate client and peer sides.
    for (i, chunk) in data.split(|b| *b == 0xFF).enumerate() {
        let now = t0 + Duration::from_millis(i as u64 * 37);
        if i % 3 == 2 {
            let mut slot = vec![0u8; chunk.len() + 8];
            slot[4..4 + chunk.len()].copy_from_slice(chunk);
            let relay = SocketAddr::from(([192, 0, 2, 1], 1025));
            let peer = SocketAddr::from(([203, 0, 113, 9], 5000));
            let _ = s.handle_peer(now, relay, peer, &mut slot, 4, chunk.len(), &mut out);
        } else {
            let _ = s.handle_client(now, five, chunk, &mut out);
        }
        s.handle_timeout(now);
        while s.poll_event().is_some() {}
    }
});
