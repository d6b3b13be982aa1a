#![no_main]
//! Fuzzes RFC 6062 TCP relaying in the TURN server core: arbitrary frames on a control and
//! on data connections (CONNECT, CONNECTION-BIND, anything), interleaved with peer
//! connections arriving, connects finishing or failing, and time passing; also the
//! ConnectionBind router `connection_bind_id`. Nothing may panic.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use natter_turn::server::tcp_relay::connection_bind_id;
use natter_turn::server::{
    Authenticator, FiveTuple, Quotas, RelayError, RelayGrant, RelayProvider, RelayRequest, Server,
    ServerConfig, TcpAction, Transport, UserKeys,
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
    fn listen_tcp(&mut self, _relay: SocketAddr) -> Result<(), RelayError> {
        Ok(())
    }
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
    let five = |port: u16| FiveTuple {
        client: SocketAddr::from(([198, 51, 100, 1], port)),
        server: SocketAddr::from(([192, 0, 2, 1], 3478)),
        transport: Transport::Tcp,
    };
    let mut out = Vec::new();
    let mut ids: Vec<u32> = Vec::new();
    for (i, chunk) in data.split(|b| *b == 0xFF).enumerate() {
        let now = t0 + Duration::from_millis(i as u64 * 997);
        let _ = connection_bind_id(chunk);
        let sel = chunk.first().copied().unwrap_or(0);
        match sel % 5 {
            0 => {
                let relay = SocketAddr::from(([192, 0, 2, 1], 1025));
                let peer = SocketAddr::from(([203, 0, 113, sel], 5000));
                if let Some(id) = s.tcp_peer_incoming(now, relay, peer) {
                    ids.push(id);
                }
            }
            1 => {
                if let Some(id) = ids.get(usize::from(sel) % ids.len().max(1)) {
                    s.tcp_connect_result(now, *id, sel & 0x80 != 0);
                }
            }
            2 => s.connection_closed(five(4000 + u16::from(sel % 4))),
            _ => {
                let _ = s.handle_client(now, five(4000 + u16::from(sel % 4)), chunk, &mut out);
            }
        }
        s.handle_timeout(now);
        while let Some(a) = s.poll_tcp_action() {
            if let TcpAction::Connect { id, .. } = a {
                ids.push(id);
            }
        }
        while s.poll_event().is_some() {}
    }
});
