//! `relay`: one-way relayed traffic, client -> server -> peer, counted at the peer.
//!
//! Every session is its own client socket (its own 5-tuple, so its own allocation). In
//! `channel` mode a session allocates and binds a channel to the peer, then sends ChannelData;
//! in `send` mode it allocates, creates a permission and sends Send indications; in `raw` mode
//! it sends the bare payload to a forwarder. The peer is a sink socket of this process on
//! loopback. The payload starts with a tag and the run cookie so only this run is counted.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use crate::batch::bind_udp;
use crate::flow::{paced_send, PaceConfig, Sink};
use crate::measure::Measurement;
use crate::report::Report;
use crate::turn_client::{self, Credentials, TurnClient};
use crate::LoadgenError;

/// First bytes of every payload this generator sends.
pub const PAYLOAD_TAG: [u8; 4] = *b"NLG1";
/// Smallest payload: tag, cookie, session index.
pub const MIN_PAYLOAD: usize = 12;
/// First channel number (RFC 8656 section 12: 0x4000 through 0x4FFF).
pub const FIRST_CHANNEL: u16 = 0x4000;
/// Most sessions: the channel range has 4096 numbers.
pub const MAX_SESSIONS: usize = 4096;

/// How sessions reach the peer.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum RelayMode {
    /// TURN ChannelData after ChannelBind.
    Channel,
    /// Bare UDP through the forwarder (no TURN).
    Raw,
    /// TURN Send indications after CreatePermission.
    Send,
}

impl RelayMode {
    /// The word used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Channel => "channel",
            Self::Raw => "raw",
            Self::Send => "send",
        }
    }
}

/// Settings of a relay run.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// TURN server, or forwarder in raw mode.
    pub server: SocketAddr,
    /// Long-term credentials (TURN modes).
    pub credentials: Option<Credentials>,
    /// Sessions (client sockets).
    pub sessions: usize,
    /// Aggregate pacing.
    pub pace: PaceConfig,
    /// Application payload size in bytes (at least [`MIN_PAYLOAD`]).
    pub payload: usize,
    /// Channel, Send or raw.
    pub mode: RelayMode,
    /// Where the peer sink binds (raw mode: the forwarder's `--to`).
    pub peer_bind: SocketAddr,
    /// How long to wait for stragglers after the last datagram.
    pub drain: Duration,
    /// Server process to measure, if any.
    pub server_pid: Option<u32>,
}

/// The payload of session `session` in run `cookie`, `len` bytes (at least [`MIN_PAYLOAD`]).
pub fn payload(cookie: [u8; 4], session: u32, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len.max(MIN_PAYLOAD)];
    data[0..4].copy_from_slice(&PAYLOAD_TAG);
    data[4..8].copy_from_slice(&cookie);
    data[8..12].copy_from_slice(&session.to_be_bytes());
    data
}

/// Whether a datagram received at the peer is one of this run's payloads.
pub fn is_our_payload(packet: &[u8], cookie: [u8; 4]) -> bool {
    packet.get(0..4) == Some(&PAYLOAD_TAG[..]) && packet.get(4..8) == Some(&cookie[..])
}

/// Runs the load and returns its report. TURN sessions are torn down (Refresh lifetime 0)
/// afterwards, so repeated runs do not pile up allocations.
pub fn run(config: &RelayConfig) -> Result<Report, LoadgenError> {
    if config.sessions == 0 || config.sessions > MAX_SESSIONS {
        return Err(LoadgenError::Settings("sessions must be 1..=4096"));
    }
    let total =
        (u128::from(config.pace.rate_per_s) * config.pace.duration.as_micros() / 1_000_000) as u64;
    if total > crate::binding::MAX_REQUESTS {
        return Err(LoadgenError::TooMuchLoad(total));
    }
    crate::batch::raise_fd_limit();
    let cookie = crate::run_cookie();
    let peer = Arc::new(bind_udp(config.peer_bind, 4 << 20)?);
    let peer_addr = peer.local_addr()?;
    let local = crate::any_local_for(config.server);

    let mut sockets = Vec::with_capacity(config.sessions);
    let mut clients = Vec::new();
    let mut packets = Vec::with_capacity(config.sessions);
    for index in 0..config.sessions {
        let socket = Arc::new(bind_udp(local, 1 << 20)?);
        socket.connect(config.server)?;
        let data = payload(cookie, index as u32, config.payload);
        let packet = match config.mode {
            RelayMode::Raw => data,
            RelayMode::Channel | RelayMode::Send => {
                let credentials = config
                    .credentials
                    .clone()
                    .ok_or(LoadgenError::Settings("TURN modes need --user"))?;
                let mut client = TurnClient::new(Arc::clone(&socket), credentials);
                client.allocate(turn_client::DEFAULT_LIFETIME)?;
                let packet = if config.mode == RelayMode::Channel {
                    let channel = FIRST_CHANNEL + index as u16;
                    client.channel_bind(peer_addr, channel)?;
                    turn_client::channel_data(channel, &data)?
                } else {
                    client.create_permission(peer_addr)?;
                    turn_client::send_indication(peer_addr, &data)?
                };
                clients.push(client);
                packet
            }
        };
        packets.push(packet);
        sockets.push(socket);
    }
    let fds: Vec<RawFd> = sockets.iter().map(|s| s.as_raw_fd()).collect();

    let sink = Sink::spawn(vec![peer], move |_, packet| is_our_payload(packet, cookie));
    let measurement = Measurement::start(config.server_pid);
    let stats = paced_send(&fds, &mut packets, config.pace, |_, _, _| {});
    sink.drain(stats.sent, config.drain);
    let sample = measurement.finish();
    let (relayed, stray) = sink.stop();

    let mut teardown_failures = 0u64;
    for client in &mut clients {
        if client.refresh(0).is_err() {
            teardown_failures += 1;
        }
    }

    let mut report = Report::new("relay");
    report
        .word("mode", config.mode.name())
        .int("sessions", config.sessions as u64)
        .int("payload", config.payload.max(MIN_PAYLOAD) as u64)
        .int("offered_rate", config.pace.rate_per_s)
        .int("sent", stats.sent)
        .int("send_errors", stats.send_errors)
        .int("received", relayed)
        .int("lost", total.saturating_sub(relayed))
        .float("loss_pct", crate::loss_pct(total, relayed), 4)
        .float(
            "achieved_rate",
            crate::per_second(relayed, stats.elapsed),
            0,
        )
        .int("stray", stray)
        .int("sender_lag_ms", crate::lag_ms(&stats, config.pace.duration))
        .int("teardown_failures", teardown_failures);
    sample.add_to(&mut report, relayed);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_layout_is_exact() {
        assert_eq!(
            payload([1, 2, 3, 4], 0x0506, 14),
            vec![b'N', b'L', b'G', b'1', 1, 2, 3, 4, 0, 0, 5, 6, 0, 0]
        );
        assert_eq!(payload([0; 4], 0, 3).len(), MIN_PAYLOAD);
    }

    #[test]
    fn only_this_runs_payloads_are_counted() {
        let ours = payload([9, 9, 9, 9], 1, 100);
        assert!(is_our_payload(&ours, [9, 9, 9, 9]));
        assert!(!is_our_payload(&ours, [9, 9, 9, 8]));
        assert!(!is_our_payload(&ours[..7], [9, 9, 9, 9]));
        assert!(!is_our_payload(b"", [9, 9, 9, 9]));
    }
}
