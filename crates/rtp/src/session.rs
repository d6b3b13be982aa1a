//! The RTCP side of one RTP session, sans-IO (RFC 3550 §6, §8.2; RFC 4585 feedback).
//!
//! One local sender SSRC, many remote sources. The caller feeds sent and received packets
//! with the current `Instant`, and at [`RtpSession::poll_timeout`] calls
//! [`RtpSession::handle_timeout`] (source time-outs) and [`RtpSession::poll_rtcp`]
//! (scheduled reports and queued BYEs).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::interval::{self, IntervalParams};
use crate::ntp;
use crate::packet::RtpPacket;
use crate::rtcp::{self, ReportBlock, RtcpPacket, SdesChunk, SDES_CNAME};
use crate::stats::ReceiverStats;

/// Remote sources tracked at most; later ones are ignored, so a flood of random SSRCs
/// cannot grow the table (a softphone talks to a handful).
pub const MAX_SOURCES: usize = 64;
/// A source silent for this many deterministic intervals is timed out (§6.3.5).
pub const TIMEOUT_INTERVALS: u32 = 5;
/// UDP + IPv4 header bytes counted into the average RTCP size (§6.3.3 counts lower layers).
const LOWER_LAYER_OVERHEAD: usize = 28;
/// Remembered addresses of SSRC collisions with our own identifier (§8.2).
const MAX_CONFLICTS: usize = 8;
/// Upper bound on sequence numbers in one NACK we build, to stay within one MTU.
const MAX_NACK_SEQS: usize = 1000;

/// Session parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Our SSRC (the session may change it after a collision).
    pub local_ssrc: u32,
    /// RTP clock rate of the media, Hz.
    pub clock_rate: u32,
    /// Canonical name sent in every SDES.
    pub cname: String,
    /// Session bandwidth in bits per second; RTCP uses 5 % of it.
    pub bandwidth_bps: u32,
    /// Reduced-size RTCP (RFC 5506) negotiated: accept non-compound datagrams and send
    /// feedback as lone packets.
    pub reduced_size: bool,
    /// NTP wallclock at the `now` passed to [`RtpSession::new`] (see [`ntp::unix_to_ntp`]);
    /// SR timestamps advance from it with the monotonic clock.
    pub ntp_at_start: u64,
    /// Seed for the interval randomisation and for a new SSRC after a collision.
    pub seed: u64,
}

impl SessionConfig {
    /// Defaults: 64 kbit/s session bandwidth, compound RTCP only, NTP starting at 0, seed
    /// derived from the SSRC (set `ntp_at_start` and `seed` in real use).
    pub fn new(local_ssrc: u32, clock_rate: u32, cname: impl Into<String>) -> Self {
        Self {
            local_ssrc,
            clock_rate,
            cname: cname.into(),
            bandwidth_bps: 64_000,
            reduced_size: false,
            ntp_at_start: 0,
            seed: u64::from(local_ssrc),
        }
    }
}

/// Something the caller may act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// Round-trip time from a report block about us (A - LSR - DLSR).
    Rtt(Duration),
    /// A report block about our stream.
    RemoteReport {
        /// SSRC of the reporter.
        reporter: u32,
        /// The block.
        block: ReportBlock,
    },
    /// A source said goodbye.
    Bye {
        /// The leaving source.
        ssrc: u32,
        /// Its reason, if given.
        reason: Option<String>,
    },
    /// Retransmission request for our stream.
    Nack {
        /// Who asks.
        sender_ssrc: u32,
        /// Lost sequence numbers.
        lost: Vec<u16>,
    },
    /// Key frame request (PLI) for our stream.
    Pli {
        /// Who asks.
        sender_ssrc: u32,
    },
    /// Full intra request for our stream.
    Fir {
        /// Who asks.
        sender_ssrc: u32,
        /// Command sequence number (repeats of one request share it).
        seq: u8,
    },
    /// A source sent neither RTP nor RTCP for [`TIMEOUT_INTERVALS`] intervals and was
    /// dropped; with one peer this means the call is dead.
    SourceTimeout {
        /// The silent source.
        ssrc: u32,
    },
    /// Another participant uses our SSRC; we moved to `new_ssrc` and queued a BYE for
    /// the old one. The caller must send RTP with `new_ssrc` from now on.
    Collision {
        /// The identifier we gave up.
        old_ssrc: u32,
        /// The identifier we use now.
        new_ssrc: u32,
    },
}

/// Counters for the UI and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// RTP packets we sent.
    pub tx_packets: u64,
    /// RTP payload octets we sent.
    pub tx_octets: u64,
    /// RTP packets received from remote sources.
    pub rx_packets: u64,
    /// Cumulative loss summed over current sources (negative with duplicates).
    pub rx_lost: i64,
    /// Largest interarrival jitter among current sources.
    pub jitter: Duration,
    /// Latest round-trip time measured from report blocks.
    pub rtt: Option<Duration>,
    /// Fraction lost (1/256) in the latest remote report about our stream.
    pub remote_fraction_lost: Option<u8>,
    /// RTCP datagrams that failed to parse.
    pub rx_dropped_malformed: u64,
    /// Packets with our own SSRC from an address already known to collide (loops).
    pub rx_dropped_loop: u64,
}

#[derive(Debug, Clone)]
struct Source {
    /// Present once RTP arrived from this source.
    stats: Option<ReceiverStats>,
    /// LSR value and arrival time of its last SR.
    last_sr: Option<(u32, Instant)>,
    /// NTP and RTP timestamps of its last SR (maps its media clock to wallclock).
    sender_info: Option<(u64, u32)>,
    last_heard: Instant,
    last_rtp: Option<Instant>,
    /// RTP arrived since our last report, so the next report includes a block for it.
    rtp_since_report: bool,
}

/// RTCP state machine for one session.
#[derive(Debug)]
pub struct RtpSession {
    config: SessionConfig,
    rng: StdRng,
    start: Instant,
    ssrc: u32,
    sources: HashMap<u32, Source>,
    tx_packets: u64,
    tx_octets: u64,
    /// SR packet/octet counts restart with a new SSRC (§6.4.1); these are the totals at
    /// the last SSRC change.
    sr_base: (u64, u64),
    last_tx: Option<(u32, Instant)>,
    rx_packets: u64,
    /// Time of our last and second-to-last report.
    tp: Instant,
    prev_tp: Instant,
    /// Next scheduled report.
    tn: Instant,
    pmembers: usize,
    initial: bool,
    avg_rtcp_size: f64,
    conflicts: Vec<SocketAddr>,
    pending: VecDeque<Vec<u8>>,
    rtt: Option<Duration>,
    remote_fraction_lost: Option<u8>,
    rx_dropped_malformed: u64,
    rx_dropped_loop: u64,
    fir_seq: u8,
    left: bool,
}

impl RtpSession {
    /// Starts a session at `now`; the first report is scheduled with the halved initial
    /// minimum (§6.3.2).
    pub fn new(config: SessionConfig, now: Instant) -> Self {
        let rng = StdRng::seed_from_u64(config.seed);
        // §6.3.2: start from the probable size of our first compound packet:
        // RR (8) + SDES header, chunk SSRC, CNAME item header, value and null (padded).
        let first = 8 + 4 + ((4 + 2 + config.cname.len().min(255) + 1 + 3) & !3);
        let mut s = Self {
            ssrc: config.local_ssrc,
            config,
            rng,
            start: now,
            sources: HashMap::new(),
            tx_packets: 0,
            tx_octets: 0,
            sr_base: (0, 0),
            last_tx: None,
            rx_packets: 0,
            tp: now,
            prev_tp: now,
            tn: now,
            pmembers: 1,
            initial: true,
            avg_rtcp_size: (first + LOWER_LAYER_OVERHEAD) as f64,
            conflicts: Vec::new(),
            pending: VecDeque::new(),
            rtt: None,
            remote_fraction_lost: None,
            rx_dropped_malformed: 0,
            rx_dropped_loop: 0,
            fir_seq: 0,
            left: false,
        };
        s.tn = now + s.random_interval();
        s
    }

    /// Our current SSRC (changes after a [`SessionEvent::Collision`]).
    pub fn local_ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Remote sources currently tracked.
    pub fn sources(&self) -> impl Iterator<Item = u32> + '_ {
        self.sources.keys().copied()
    }

    /// Receive statistics for one remote source, once it has sent RTP.
    pub fn source_stats(&self, ssrc: u32) -> Option<&ReceiverStats> {
        self.sources.get(&ssrc)?.stats.as_ref()
    }

    /// `(ntp, rtp_ts)` from the last SR of a remote source: the pairing of its media clock
    /// with its wallclock, for lip sync and playout-delay estimates.
    pub fn remote_sender_info(&self, ssrc: u32) -> Option<(u64, u32)> {
        self.sources.get(&ssrc)?.sender_info
    }

    /// NTP wallclock at `now`.
    pub fn ntp_at(&self, now: Instant) -> u64 {
        self.config.ntp_at_start.wrapping_add(ntp::duration_to_ntp(
            now.saturating_duration_since(self.start),
        ))
    }

    /// `now` in RTP clock units since the session start (wrapping), the arrival clock of
    /// A.8.
    fn arrival_rtp(&self, now: Instant) -> u32 {
        let d = now.saturating_duration_since(self.start);
        (d.as_nanos() * u128::from(self.config.clock_rate) / 1_000_000_000) as u32
    }

    /// Records an RTP packet we sent: its timestamp and payload length.
    pub fn on_rtp_sent(&mut self, rtp_ts: u32, payload_len: usize, now: Instant) {
        self.tx_packets += 1;
        self.tx_octets += payload_len as u64;
        self.last_tx = Some((rtp_ts, now));
    }

    /// Records a received RTP packet. Returns a [`SessionEvent::Collision`] when the
    /// packet carries our SSRC from a new address.
    pub fn on_rtp_received(
        &mut self,
        pkt: &RtpPacket<'_>,
        from: SocketAddr,
        now: Instant,
    ) -> Option<SessionEvent> {
        let ssrc = pkt.ssrc();
        let mut event = None;
        if ssrc == self.ssrc {
            match self.own_ssrc_seen(from, now) {
                Some(e) => event = Some(e),
                None => return None,
            }
        }
        self.rx_packets += 1;
        let arrival = self.arrival_rtp(now);
        if let Some(src) = self.touch(ssrc, now) {
            src.last_rtp = Some(now);
            src.rtp_since_report = true;
            src.stats.get_or_insert_with(ReceiverStats::new).on_packet(
                pkt.sequence(),
                pkt.timestamp(),
                arrival,
            );
        }
        event
    }

    /// Processes an RTCP datagram. Malformed input is counted and ignored.
    pub fn on_rtcp_received(
        &mut self,
        buf: &[u8],
        from: SocketAddr,
        now: Instant,
    ) -> Vec<SessionEvent> {
        let packets = match rtcp::parse_compound(buf, self.config.reduced_size) {
            Ok(p) => p,
            Err(_) => {
                self.rx_dropped_malformed += 1;
                return Vec::new();
            }
        };
        self.update_avg_size(buf.len());
        let mut events = Vec::new();
        for packet in packets {
            match packet {
                RtcpPacket::SenderReport {
                    ssrc,
                    ntp,
                    rtp_ts,
                    reports,
                    ..
                } => {
                    if !self.control_from(ssrc, from, now, &mut events) {
                        continue;
                    }
                    if let Some(src) = self.touch(ssrc, now) {
                        src.last_sr = Some((ntp::middle32(ntp), now));
                        src.sender_info = Some((ntp, rtp_ts));
                    }
                    self.on_reports(ssrc, &reports, now, &mut events);
                }
                RtcpPacket::ReceiverReport { ssrc, reports } => {
                    if !self.control_from(ssrc, from, now, &mut events) {
                        continue;
                    }
                    self.touch(ssrc, now);
                    self.on_reports(ssrc, &reports, now, &mut events);
                }
                RtcpPacket::Sdes(chunks) => {
                    let own = self.ssrc;
                    for c in chunks.iter().filter(|c| c.ssrc != own) {
                        self.touch(c.ssrc, now);
                    }
                }
                RtcpPacket::Bye { ssrcs, reason } => {
                    for ssrc in ssrcs {
                        if self.sources.remove(&ssrc).is_some() {
                            events.push(SessionEvent::Bye {
                                ssrc,
                                reason: reason.clone(),
                            });
                        }
                    }
                    self.reverse_reconsider(now);
                }
                RtcpPacket::Nack {
                    sender_ssrc,
                    media_ssrc,
                    lost,
                } if media_ssrc == self.ssrc => {
                    events.push(SessionEvent::Nack { sender_ssrc, lost });
                }
                RtcpPacket::Pli {
                    sender_ssrc,
                    media_ssrc,
                } if media_ssrc == self.ssrc => {
                    events.push(SessionEvent::Pli { sender_ssrc });
                }
                RtcpPacket::Fir {
                    sender_ssrc,
                    entries,
                } => {
                    for (_, seq) in entries.iter().filter(|(s, _)| *s == self.ssrc) {
                        events.push(SessionEvent::Fir {
                            sender_ssrc,
                            seq: *seq,
                        });
                    }
                }
                _ => {}
            }
        }
        events
    }

    /// Collision check for an SR/RR sender; false when the packet is our own looped back.
    fn control_from(
        &mut self,
        ssrc: u32,
        from: SocketAddr,
        now: Instant,
        events: &mut Vec<SessionEvent>,
    ) -> bool {
        if ssrc != self.ssrc {
            return true;
        }
        match self.own_ssrc_seen(from, now) {
            Some(e) => {
                events.push(e);
                true
            }
            None => false,
        }
    }

    /// §8.2 for a packet carrying our SSRC. From an address already in the conflict list it
    /// is our own traffic looping (drop: `None`); otherwise a new collision: remember the
    /// address, queue a BYE for the old SSRC, pick a new one, and let the caller process the
    /// packet as coming from a remote source with the old SSRC.
    fn own_ssrc_seen(&mut self, from: SocketAddr, now: Instant) -> Option<SessionEvent> {
        if self.conflicts.contains(&from) {
            self.rx_dropped_loop += 1;
            return None;
        }
        if self.conflicts.len() >= MAX_CONFLICTS {
            self.conflicts.remove(0);
        }
        self.conflicts.push(from);
        let old_ssrc = self.ssrc;
        let bye = self.build_bye(now, Some("SSRC collision"));
        self.pending.extend(bye);
        let mut new_ssrc = self.rng.gen::<u32>();
        while new_ssrc == old_ssrc || self.sources.contains_key(&new_ssrc) {
            new_ssrc = self.rng.gen();
        }
        self.ssrc = new_ssrc;
        self.sr_base = (self.tx_packets, self.tx_octets);
        Some(SessionEvent::Collision { old_ssrc, new_ssrc })
    }

    /// The source entry for `ssrc`, created if there is room.
    fn touch(&mut self, ssrc: u32, now: Instant) -> Option<&mut Source> {
        if !self.sources.contains_key(&ssrc) && self.sources.len() >= MAX_SOURCES {
            return None;
        }
        let src = self.sources.entry(ssrc).or_insert(Source {
            stats: None,
            last_sr: None,
            sender_info: None,
            last_heard: now,
            last_rtp: None,
            rtp_since_report: false,
        });
        src.last_heard = now;
        Some(src)
    }

    fn on_reports(
        &mut self,
        reporter: u32,
        reports: &[ReportBlock],
        now: Instant,
        events: &mut Vec<SessionEvent>,
    ) {
        for block in reports.iter().filter(|b| b.ssrc == self.ssrc) {
            self.remote_fraction_lost = Some(block.fraction_lost);
            events.push(SessionEvent::RemoteReport {
                reporter,
                block: *block,
            });
            if block.lsr == 0 {
                continue;
            }
            // RFC 3550 §6.4.1: RTT = A - LSR - DLSR, all in 16.16 seconds of our clock.
            let since = ntp::middle32(self.ntp_at(now)).wrapping_sub(block.lsr);
            if since >= block.dlsr && since < 0x8000_0000 {
                let rtt = ntp::short_to_duration(since - block.dlsr);
                self.rtt = Some(rtt);
                events.push(SessionEvent::Rtt(rtt));
            }
        }
    }

    /// Drops sources silent for [`TIMEOUT_INTERVALS`] deterministic intervals.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<SessionEvent> {
        let timeout = self.source_timeout();
        let mut gone: Vec<u32> = self
            .sources
            .iter()
            .filter(|(_, s)| now >= s.last_heard + timeout)
            .map(|(k, _)| *k)
            .collect();
        gone.sort_unstable();
        for ssrc in &gone {
            self.sources.remove(ssrc);
        }
        if !gone.is_empty() {
            self.reverse_reconsider(now);
        }
        gone.into_iter()
            .map(|ssrc| SessionEvent::SourceTimeout { ssrc })
            .collect()
    }

    /// When the next call to [`Self::handle_timeout`] / [`Self::poll_rtcp`] is due; `None`
    /// after [`Self::send_bye`] with nothing queued.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.pending.is_empty() {
            return Some(self.tp.min(self.tn));
        }
        if self.left {
            return None;
        }
        let timeout = self.source_timeout();
        let expiry = self.sources.values().map(|s| s.last_heard + timeout).min();
        Some(expiry.map_or(self.tn, |e| e.min(self.tn)))
    }

    /// A queued BYE, or the scheduled report when due (with timer reconsideration,
    /// §6.3.6): SR if we sent RTP in the last two intervals, else RR, plus SDES CNAME.
    pub fn poll_rtcp(&mut self, now: Instant) -> Option<Vec<u8>> {
        if let Some(p) = self.pending.pop_front() {
            return Some(p);
        }
        if self.left || now < self.tn {
            return None;
        }
        let t = self.random_interval();
        if self.tp + t > now {
            self.tn = self.tp + t;
            return None;
        }
        let mut out = Vec::new();
        let packets = vec![self.report(now, true), self.sdes()];
        rtcp::write_compound(&packets, &mut out).ok()?;
        self.update_avg_size(out.len());
        self.prev_tp = self.tp;
        self.tp = now;
        self.initial = false;
        self.pmembers = self.members();
        self.tn = now + self.random_interval();
        Some(out)
    }

    /// Leaves the session: returns the final compound (report, SDES, BYE) to send and
    /// stops scheduling reports.
    pub fn send_bye(&mut self, now: Instant) -> Vec<u8> {
        if self.left {
            return Vec::new();
        }
        self.left = true;
        self.build_bye(now, None).unwrap_or_default()
    }

    fn build_bye(&mut self, now: Instant, reason: Option<&str>) -> Option<Vec<u8>> {
        let packets = vec![
            self.report(now, false),
            self.sdes(),
            RtcpPacket::Bye {
                ssrcs: vec![self.ssrc],
                reason: reason.map(str::to_owned),
            },
        ];
        let mut out = Vec::new();
        rtcp::write_compound(&packets, &mut out).ok()?;
        Some(out)
    }

    /// A generic NACK asking `media_ssrc` to resend `lost` (at most 1000 numbers).
    pub fn request_nack(&mut self, media_ssrc: u32, lost: &[u16], now: Instant) -> Vec<u8> {
        let lost = lost
            .get(..lost.len().min(MAX_NACK_SEQS))
            .unwrap_or(&[])
            .to_vec();
        self.feedback(
            RtcpPacket::Nack {
                sender_ssrc: self.ssrc,
                media_ssrc,
                lost,
            },
            now,
        )
    }

    /// A picture loss indication to `media_ssrc`.
    pub fn request_pli(&mut self, media_ssrc: u32, now: Instant) -> Vec<u8> {
        self.feedback(
            RtcpPacket::Pli {
                sender_ssrc: self.ssrc,
                media_ssrc,
            },
            now,
        )
    }

    /// A full intra request to `media_ssrc`, with a fresh command sequence number.
    pub fn request_fir(&mut self, media_ssrc: u32, now: Instant) -> Vec<u8> {
        self.fir_seq = self.fir_seq.wrapping_add(1);
        self.feedback(
            RtcpPacket::Fir {
                sender_ssrc: self.ssrc,
                entries: vec![(media_ssrc, self.fir_seq)],
            },
            now,
        )
    }

    /// Feedback is sent at once (RFC 4585 immediate mode, no early-RTCP budget): alone with
    /// reduced-size RTCP, otherwise behind an empty RR and our SDES.
    fn feedback(&mut self, fb: RtcpPacket, _now: Instant) -> Vec<u8> {
        let packets = if self.config.reduced_size {
            vec![fb]
        } else {
            vec![
                RtcpPacket::ReceiverReport {
                    ssrc: self.ssrc,
                    reports: Vec::new(),
                },
                self.sdes(),
                fb,
            ]
        };
        let mut out = Vec::new();
        if rtcp::write_compound(&packets, &mut out).is_ok() {
            self.update_avg_size(out.len());
        }
        out
    }

    /// Snapshot of the counters.
    pub fn stats(&self) -> SessionStats {
        let mut rx_lost = 0i64;
        let mut jitter = Duration::ZERO;
        for s in self.sources.values().filter_map(|s| s.stats.as_ref()) {
            rx_lost += i64::from(s.cumulative_lost());
            jitter = jitter.max(s.jitter(self.config.clock_rate));
        }
        SessionStats {
            tx_packets: self.tx_packets,
            tx_octets: self.tx_octets,
            rx_packets: self.rx_packets,
            rx_lost,
            jitter,
            rtt: self.rtt,
            remote_fraction_lost: self.remote_fraction_lost,
            rx_dropped_malformed: self.rx_dropped_malformed,
            rx_dropped_loop: self.rx_dropped_loop,
        }
    }

    fn sdes(&self) -> RtcpPacket {
        let mut cname = self.config.cname.as_bytes().to_vec();
        cname.truncate(255);
        RtcpPacket::Sdes(vec![SdesChunk {
            ssrc: self.ssrc,
            items: vec![(SDES_CNAME, cname)],
        }])
    }

    /// SR or RR with up to 31 blocks for sources that sent RTP since our last report.
    /// `advance` starts a new loss interval (real reports); a BYE's report does not.
    fn report(&mut self, now: Instant, advance: bool) -> RtcpPacket {
        let mut ssrcs: Vec<u32> = self
            .sources
            .iter()
            .filter(|(_, s)| {
                s.rtp_since_report && s.stats.as_ref().is_some_and(ReceiverStats::is_valid)
            })
            .map(|(k, _)| *k)
            .collect();
        ssrcs.sort_unstable();
        ssrcs.truncate(31);
        let mut reports = Vec::with_capacity(ssrcs.len());
        for ssrc in ssrcs {
            let Some(src) = self.sources.get_mut(&ssrc) else {
                continue;
            };
            let (lsr, dlsr) = src.last_sr.map_or((0, 0), |(lsr, at)| {
                (
                    lsr,
                    ntp::duration_to_short(now.saturating_duration_since(at)),
                )
            });
            let Some(stats) = src.stats.as_mut() else {
                continue;
            };
            if advance {
                reports.push(stats.report_block(ssrc, lsr, dlsr));
                src.rtp_since_report = false;
            } else {
                let mut copy = stats.clone();
                reports.push(copy.report_block(ssrc, lsr, dlsr));
            }
        }
        if self.we_sent() {
            let rtp_ts = self.last_tx.map_or(0, |(ts, at)| {
                let d = now.saturating_duration_since(at);
                ts.wrapping_add(
                    (d.as_nanos() * u128::from(self.config.clock_rate) / 1_000_000_000) as u32,
                )
            });
            RtcpPacket::SenderReport {
                ssrc: self.ssrc,
                ntp: self.ntp_at(now),
                rtp_ts,
                packet_count: (self.tx_packets - self.sr_base.0) as u32,
                octet_count: (self.tx_octets - self.sr_base.1) as u32,
                reports,
            }
        } else {
            RtcpPacket::ReceiverReport {
                ssrc: self.ssrc,
                reports,
            }
        }
    }

    /// §6.4: a sender is whoever sent RTP since the report before last.
    fn we_sent(&self) -> bool {
        self.last_tx.is_some_and(|(_, at)| at >= self.prev_tp)
    }

    fn members(&self) -> usize {
        self.sources.len() + 1
    }

    fn params(&self, initial: bool) -> IntervalParams {
        let we_sent = self.we_sent();
        let remote_senders = self
            .sources
            .values()
            .filter(|s| s.last_rtp.is_some_and(|t| t >= self.prev_tp))
            .count();
        IntervalParams {
            members: self.members(),
            senders: remote_senders + usize::from(we_sent),
            session_bw_bps: self.config.bandwidth_bps,
            we_sent,
            avg_rtcp_size: self.avg_rtcp_size,
            initial,
        }
    }

    fn random_interval(&mut self) -> Duration {
        let factor = self.rng.gen_range(0.5..1.5);
        interval::rtcp_interval(&self.params(self.initial), factor)
    }

    /// §6.3.5: M * Td with M = 5 and Td the deterministic (non-initial) interval.
    fn source_timeout(&self) -> Duration {
        interval::secs(
            interval::deterministic_secs(&self.params(false)) * f64::from(TIMEOUT_INTERVALS),
        )
    }

    /// §6.3.3: avg = size / 16 + avg * 15 / 16, lower-layer headers included.
    fn update_avg_size(&mut self, len: usize) {
        let size = (len + LOWER_LAYER_OVERHEAD) as f64;
        self.avg_rtcp_size = size / 16.0 + self.avg_rtcp_size * 15.0 / 16.0;
    }

    /// §6.3.4 reverse reconsideration: when members leave, pull the next report closer in
    /// proportion so a shrinking session does not keep the long interval.
    fn reverse_reconsider(&mut self, now: Instant) {
        let members = self.members();
        if members >= self.pmembers {
            return;
        }
        let ratio = members as f64 / self.pmembers as f64;
        if self.tn > now {
            self.tn = now + interval::secs(self.tn.duration_since(now).as_secs_f64() * ratio);
        }
        let back = interval::secs(now.saturating_duration_since(self.tp).as_secs_f64() * ratio);
        self.tp = now.checked_sub(back).unwrap_or(self.tp);
        self.pmembers = members;
    }
}
