//! `binding`: STUN Binding requests at a paced rate, answers matched by transaction id.
//!
//! Each request's transaction id is the run cookie (4 bytes) followed by a global sequence
//! number (8 bytes, big endian), so matching an answer needs no table lookup: check the header
//! bytes, read the sequence number, and tick it off in a bitset (which also drops duplicates).
//! The hot path reads fixed header offsets instead of parsing attributes: the answer's
//! content (XOR-MAPPED-ADDRESS) does not matter for throughput, and a full parse would make the
//! generator, not the server, the bottleneck sooner.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use crate::batch::bind_udp;
use crate::flow::{paced_send, PaceConfig, Sink};
use crate::measure::Measurement;
use crate::report::Report;
use crate::LoadgenError;

/// STUN magic cookie (RFC 5389 section 6).
pub const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
/// Message type of a Binding request.
pub const BINDING_REQUEST: [u8; 2] = [0x00, 0x01];
/// Message type of a Binding success response.
pub const BINDING_SUCCESS: [u8; 2] = [0x01, 0x01];

/// Most requests one run may offer; the bitset of answers is `MAX_REQUESTS / 8` bytes.
pub const MAX_REQUESTS: u64 = 200_000_000;

/// Settings of a Binding run.
#[derive(Clone, Debug)]
pub struct BindingConfig {
    /// Server (or echo forwarder) address.
    pub server: SocketAddr,
    /// Pacing of the requests.
    pub pace: PaceConfig,
    /// Client sockets (distinct 5-tuples) the load is spread over.
    pub sockets: usize,
    /// Accept the request itself echoed back (bare forwarder in echo mode) as an answer.
    pub accept_echo: bool,
    /// How long to wait for late answers after the last request.
    pub drain: Duration,
    /// Server process to measure, if any.
    pub server_pid: Option<u32>,
}

/// The 20-byte Binding request with sequence number `seq` under run `cookie`.
pub fn request(cookie: [u8; 4], seq: u64) -> [u8; 20] {
    let mut message = [0u8; 20];
    message[0..2].copy_from_slice(&BINDING_REQUEST);
    // Length 0: no attributes, so no FINGERPRINT to recompute when the id changes.
    message[4..8].copy_from_slice(&MAGIC_COOKIE);
    write_transaction_id(&mut message, cookie, seq);
    message
}

/// Rewrites the transaction id of a request buffer in place (no-op on short buffers).
pub fn write_transaction_id(message: &mut [u8], cookie: [u8; 4], seq: u64) {
    if let Some(tid) = message.get_mut(8..20) {
        tid[0..4].copy_from_slice(&cookie);
        tid[4..12].copy_from_slice(&seq.to_be_bytes());
    }
}

/// If `packet` answers one of this run's requests, the request's sequence number.
///
/// Accepts a Binding success response whose transaction id carries `cookie` and a sequence
/// number below `total`; with `accept_echo`, also the request itself coming back.
pub fn answered_seq(packet: &[u8], cookie: [u8; 4], total: u64, accept_echo: bool) -> Option<u64> {
    let header = packet.first_chunk::<20>()?;
    let typ = [header[0], header[1]];
    if typ != BINDING_SUCCESS && !(accept_echo && typ == BINDING_REQUEST) {
        return None;
    }
    if header[4..8] != MAGIC_COOKIE || header[8..12] != cookie {
        return None;
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&header[12..20]);
    let seq = u64::from_be_bytes(seq);
    (seq < total).then_some(seq)
}

/// Marks `seq` in `seen`; true when it was not marked before.
pub fn mark_seen(seen: &mut [u64], seq: u64) -> bool {
    let Some(word) = seen.get_mut((seq / 64) as usize) else {
        return false;
    };
    let bit = 1u64 << (seq % 64);
    let fresh = *word & bit == 0;
    *word |= bit;
    fresh
}

/// Runs the load and returns its report.
pub fn run(config: &BindingConfig) -> Result<Report, LoadgenError> {
    let total =
        (u128::from(config.pace.rate_per_s) * config.pace.duration.as_micros() / 1_000_000) as u64;
    if total > MAX_REQUESTS {
        return Err(LoadgenError::TooMuchLoad(total));
    }
    let cookie = crate::run_cookie();
    let local: SocketAddr = crate::any_local_for(config.server);
    let mut sockets = Vec::new();
    for _ in 0..config.sockets.max(1) {
        let socket = bind_udp(local, 4 << 20)?;
        socket.connect(config.server)?;
        sockets.push(Arc::new(socket));
    }
    let fds: Vec<RawFd> = sockets.iter().map(|s| s.as_raw_fd()).collect();
    let accept_echo = config.accept_echo;
    let mut seen = vec![0u64; (total / 64 + 1) as usize];
    let sink = Sink::spawn(sockets.clone(), move |_, packet| {
        answered_seq(packet, cookie, total, accept_echo)
            .is_some_and(|seq| mark_seen(&mut seen, seq))
    });
    let mut templates: Vec<Vec<u8>> = fds.iter().map(|_| request(cookie, 0).to_vec()).collect();
    let measurement = Measurement::start(config.server_pid);
    let stats = paced_send(&fds, &mut templates, config.pace, |_, seq, buf| {
        write_transaction_id(buf, cookie, seq);
    });
    sink.drain(stats.sent, config.drain);
    let sample = measurement.finish();
    let (answered, stray) = sink.stop();
    drop::<Vec<Arc<UdpSocket>>>(sockets);

    let mut report = Report::new("binding");
    report
        .int("offered_rate", config.pace.rate_per_s)
        .int("sent", stats.sent)
        .int("send_errors", stats.send_errors)
        .int("received", answered)
        .int("lost", total.saturating_sub(answered))
        .float("loss_pct", crate::loss_pct(total, answered), 4)
        .float(
            "achieved_rate",
            crate::per_second(answered, stats.elapsed),
            0,
        )
        .int("stray", stray)
        .int("sender_lag_ms", crate::lag_ms(&stats, config.pace.duration));
    sample.add_to(&mut report, answered);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOKIE: [u8; 4] = [0xde, 0xad, 0xbe, 0xef];

    #[test]
    fn request_bytes_are_exact() {
        assert_eq!(
            request(COOKIE, 0x0102),
            [
                0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0,
                0, 0, 0x01, 0x02
            ]
        );
    }

    #[test]
    fn success_answers_are_matched_by_transaction_id() {
        let mut answer = request(COOKIE, 7).to_vec();
        answer[0..2].copy_from_slice(&BINDING_SUCCESS);
        // XOR-MAPPED-ADDRESS content is not looked at.
        answer.extend_from_slice(&[0x00, 0x20, 0x00, 0x08, 0, 1, 0, 0, 1, 2, 3, 4]);
        assert_eq!(answered_seq(&answer, COOKIE, 10, false), Some(7));
        assert_eq!(
            answered_seq(&answer, COOKIE, 7, false),
            None,
            "beyond the run"
        );
        assert_eq!(answered_seq(&answer, [0; 4], 10, false), None, "other run");
    }

    #[test]
    fn echoed_requests_count_only_in_echo_mode() {
        let echo = request(COOKIE, 3);
        assert_eq!(answered_seq(&echo, COOKIE, 10, false), None);
        assert_eq!(answered_seq(&echo, COOKIE, 10, true), Some(3));
        let mut error = echo;
        error[0..2].copy_from_slice(&[0x01, 0x11]);
        assert_eq!(answered_seq(&error, COOKIE, 10, true), None);
        let mut bad_cookie = request(COOKIE, 3);
        bad_cookie[4] = 0;
        assert_eq!(answered_seq(&bad_cookie, COOKIE, 10, true), None);
        assert_eq!(answered_seq(&echo[..19], COOKIE, 10, true), None);
    }

    #[test]
    fn duplicates_are_counted_once() {
        let mut seen = vec![0u64; 2];
        assert!(mark_seen(&mut seen, 0));
        assert!(mark_seen(&mut seen, 127));
        assert!(!mark_seen(&mut seen, 127));
        assert!(!mark_seen(&mut seen, 128), "out of range is never fresh");
        assert_eq!(seen, vec![1, 1 << 63]);
    }
}
