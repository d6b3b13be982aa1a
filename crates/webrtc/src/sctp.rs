//! Data channels: one SCTP association (sctp-proto, sans-IO) over the DTLS connection
//! (RFC 8261), with DCEP (RFC 8832) to open channels in-band.
//!
//! The wrapper owns the sctp-proto endpoint and association and the channel table. SCTP
//! packets go in with [`DataChannels::handle_packet`] (decrypted DTLS application data) and
//! come out of [`DataChannels::poll_transmit`] (to encrypt as one DTLS record each).
//!
//! Who initiates: like str0m and Chromium's own implementation, the DTLS client is the
//! SCTP client (sends INIT), the DTLS server accepts. A second INIT from a peer that also
//! initiated is ignored once we have an association (sctp-proto answers the peer's
//! INIT-ACK/COOKIE exchange on the existing one). Stream ids: the DTLS client uses even
//! ids, the server odd ones (RFC 8832 §6).
//!
//! Not every stack follows that rule: aiortc makes the ICE-controlling side the SCTP
//! client and its server never sends INIT nor answers one as client. So two fallbacks,
//! each after [`INIT_FALLBACK`]: a DTLS server that has heard no INIT initiates itself, and
//! a DTLS client whose INIT went unanswered while the peer sent its own takes the
//! association the peer's INIT began. Stacks that follow the rule (Chromium, natter)
//! settle well before either fires.

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use sctp_proto::{
    Association, AssociationHandle, ClientConfig, DatagramEvent, Endpoint, EndpointConfig, Event,
    Payload, PayloadProtocolIdentifier, ReliabilityType, ServerConfig, StreamEvent,
    TransportConfig,
};

use crate::dcep::{self, ChannelType, Message, Open, Reliability};
use crate::error::SendError;

/// Largest message we accept, advertised as `a=max-message-size` (what Chromium offers).
pub const LOCAL_MAX_MESSAGE_SIZE: usize = 256 * 1024;
/// The peer's limit when its description has no `a=max-message-size` (RFC 8841 §6.1).
pub const DEFAULT_REMOTE_MAX_MESSAGE_SIZE: usize = 64 * 1024;
/// SCTP payload per packet: keeps each DTLS record (SCTP common header 12, DATA chunk
/// header 16, DTLS AES-GCM overhead 37) inside a 1200-byte datagram, safe on any path.
const MAX_SCTP_PAYLOAD: u32 = 1100;
/// Most channels tracked at once; a peer can open streams just by sending data.
const MAX_CHANNELS: usize = 1024;
/// How long the DTLS role's SCTP rule gets before the fallbacks above (about one
/// retransmission of the first INIT).
const INIT_FALLBACK: std::time::Duration = std::time::Duration::from_millis(1200);
/// The address sctp-proto wants; SCTP here runs over DTLS, not IP, so it is a placeholder.
const FAKE_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 5000);

/// A channel's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelState {
    /// Created locally; the association or the peer's ACK is not there yet.
    Connecting,
    /// Messages flow.
    Open,
    /// Reset or association lost.
    Closed,
}

/// What a data channel is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    /// SCTP stream id (the W3C `id`).
    pub id: u16,
    /// Label.
    pub label: String,
    /// Sub-protocol.
    pub protocol: String,
    /// Ordering and reliability.
    pub channel_type: ChannelType,
    /// State.
    pub state: ChannelState,
}

/// Something the owner should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEvent {
    /// The SCTP association is up.
    Connected,
    /// A channel opened (ours on the peer's ACK, the peer's on its OPEN).
    Open {
        /// Stream id.
        id: u16,
        /// Label.
        label: String,
    },
    /// A whole message.
    Message {
        /// Stream id.
        id: u16,
        /// Text (PPID 51/56) rather than binary.
        text: bool,
        /// The bytes (empty for PPIDs 56/57).
        data: Vec<u8>,
    },
    /// A channel closed.
    Closed {
        /// Stream id.
        id: u16,
    },
    /// The bytes queued on a channel fell to or below its low mark (W3C
    /// `bufferedamountlow`): a sender that paused at a high mark can go on.
    BufferedAmountLow {
        /// Stream id.
        id: u16,
    },
    /// The association is gone (peer ABORT, timeout).
    Lost(String),
}

/// The data-channel half of a PeerConnection.
pub struct DataChannels {
    endpoint: Endpoint,
    assoc: Option<(AssociationHandle, Association)>,
    /// The association a peer's INIT began while our own INIT was outstanding, and when
    /// to switch to it if ours is still not up.
    peer_assoc: Option<(Instant, AssociationHandle, Association)>,
    /// As DTLS server: when to initiate if the peer has not.
    initiate_at: Option<Instant>,
    transport: Option<Arc<TransportConfig>>,
    client: bool,
    started: bool,
    connected: bool,
    remote_max: usize,
    channels: BTreeMap<u16, ChannelInfo>,
    next_id: u16,
    events: VecDeque<ChannelEvent>,
    out: VecDeque<Vec<u8>>,
    /// Something happened (input, a timer, a message queued) since the association was
    /// last asked for packets. sctp-proto's `poll_transmit` walks its whole in-flight queue
    /// (hundreds of chunks in a bulk transfer) even when it has nothing to send, so it is
    /// asked once per change rather than until it says "nothing".
    transmit_due: bool,
    /// Messages that could not be parsed or were refused, for diagnostics.
    pub dropped: u64,
}

impl std::fmt::Debug for DataChannels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataChannels")
            .field("client", &self.client)
            .field("connected", &self.connected)
            .field("channels", &self.channels.len())
            .finish_non_exhaustive()
    }
}

fn transport_config(remote_max: usize) -> Arc<TransportConfig> {
    Arc::new(
        TransportConfig::default()
            .with_max_receive_message_size(LOCAL_MAX_MESSAGE_SIZE as u32)
            .with_max_send_message_size(u32::try_from(remote_max).unwrap_or(u32::MAX))
            .with_max_init_retransmits(None)
            .with_rto_initial_ms(1000)
            .with_rto_min_ms(200),
    )
}

impl Default for DataChannels {
    fn default() -> Self {
        Self::new()
    }
}

impl DataChannels {
    /// Not started: channels may be created, they open once the association is up.
    pub fn new() -> Self {
        let mut cfg = EndpointConfig::new();
        cfg.max_payload_size(MAX_SCTP_PAYLOAD);
        DataChannels {
            endpoint: Endpoint::new(Arc::new(cfg), None),
            assoc: None,
            peer_assoc: None,
            initiate_at: None,
            transport: None,
            client: false,
            started: false,
            connected: false,
            remote_max: DEFAULT_REMOTE_MAX_MESSAGE_SIZE,
            channels: BTreeMap::new(),
            next_id: 0,
            events: VecDeque::new(),
            out: VecDeque::new(),
            transmit_due: false,
            dropped: 0,
        }
    }

    /// Starts SCTP once DTLS is up. `client` is our DTLS role; `remote_max` the peer's
    /// `a=max-message-size` (0 means "any size", capped at our own).
    pub fn start(&mut self, client: bool, remote_max: Option<usize>, now: Instant) {
        if self.started {
            return;
        }
        self.started = true;
        self.client = client;
        self.remote_max = match remote_max {
            Some(0) => LOCAL_MAX_MESSAGE_SIZE,
            Some(n) => n,
            None => DEFAULT_REMOTE_MAX_MESSAGE_SIZE,
        };
        // Our ids are even as DTLS client, odd as server; renumber channels made early.
        let pending: Vec<ChannelInfo> = std::mem::take(&mut self.channels).into_values().collect();
        self.next_id = if client { 0 } else { 1 };
        for mut c in pending {
            c.id = self.alloc_id();
            self.channels.insert(c.id, c);
        }
        let transport = transport_config(self.remote_max);
        // Always a server config: sctp-proto unwraps it for any INIT it has no association
        // for, and a peer that initiates too (Chromium does) sends one.
        let mut server = ServerConfig::new();
        server.transport = transport.clone();
        self.endpoint.set_server_config(Some(Arc::new(server)));
        self.transport = Some(transport);
        if client {
            self.connect();
        } else {
            self.initiate_at = Some(now + INIT_FALLBACK);
        }
    }

    fn connect(&mut self) {
        let mut cfg = ClientConfig::new();
        if let Some(t) = &self.transport {
            cfg.transport = t.clone();
        }
        match self.endpoint.connect(cfg, FAKE_ADDR) {
            Ok(a) => {
                self.assoc = Some(a);
                self.transmit_due = true;
            }
            Err(e) => self.events.push_back(ChannelEvent::Lost(e.to_string())),
        }
    }

    /// The fallbacks for peers that do not follow the DTLS-role rule (see the module doc).
    fn run_fallbacks(&mut self, now: Instant) {
        if self.connected {
            self.initiate_at = None;
            self.peer_assoc = None;
            return;
        }
        if self.initiate_at.is_some_and(|t| t <= now) {
            self.initiate_at = None;
            if self.assoc.is_none() {
                tracing::debug!("SCTP: no INIT from the peer, initiating");
                self.connect();
            }
        }
        if self.peer_assoc.as_ref().is_some_and(|(t, _, _)| *t <= now) {
            if let Some((_, h, a)) = self.peer_assoc.take() {
                tracing::debug!("SCTP: our INIT unanswered, taking the peer's association");
                self.assoc = Some((h, a));
            }
        }
    }

    /// Whether the association is up.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The association's retransmission timeout (its RTT estimate), once there is one.
    pub fn rto(&self) -> Option<std::time::Duration> {
        self.assoc.as_ref().map(|(_, a)| a.rtt())
    }

    /// The peer's max-message-size in force.
    pub fn remote_max_message_size(&self) -> usize {
        self.remote_max
    }

    fn alloc_id(&mut self) -> u16 {
        for _ in 0..=u16::MAX / 2 {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(2);
            if !self.channels.contains_key(&id) && id != u16::MAX {
                return id;
            }
        }
        self.next_id
    }

    /// Creates a channel (in-band, DCEP). Its id is provisional until [`Self::start`]
    /// knows our DTLS role. Opens when the peer acknowledges.
    pub fn create_channel(
        &mut self,
        label: &str,
        protocol: &str,
        channel_type: ChannelType,
    ) -> u16 {
        let id = self.alloc_id();
        self.channels.insert(
            id,
            ChannelInfo {
                id,
                label: label.to_owned(),
                protocol: protocol.to_owned(),
                channel_type,
                state: ChannelState::Connecting,
            },
        );
        if self.connected {
            self.send_open(id);
        }
        id
    }

    /// A channel's description.
    pub fn channel(&self, id: u16) -> Option<&ChannelInfo> {
        self.channels.get(&id)
    }

    /// All channels.
    pub fn channels(&self) -> impl Iterator<Item = &ChannelInfo> {
        self.channels.values()
    }

    /// Sends one message on an open channel.
    pub fn send(&mut self, id: u16, text: bool, data: &[u8]) -> Result<(), SendError> {
        if self.channels.get(&id).map(|c| c.state) != Some(ChannelState::Open) {
            return Err(SendError::NotOpen(id));
        }
        if data.len() > self.remote_max {
            return Err(SendError::TooLarge(data.len(), self.remote_max));
        }
        let (ppi, payload): (_, &[u8]) = match (text, data.is_empty()) {
            (true, false) => (PayloadProtocolIdentifier::String, data),
            (true, true) => (PayloadProtocolIdentifier::StringEmpty, &[0]),
            (false, false) => (PayloadProtocolIdentifier::Binary, data),
            (false, true) => (PayloadProtocolIdentifier::BinaryEmpty, &[0]),
        };
        let (_, assoc) = self.assoc.as_mut().ok_or(SendError::NotOpen(id))?;
        let mut stream = assoc
            .stream(id)
            .map_err(|e| SendError::Sctp(e.to_string()))?;
        stream
            .write_with_ppi(payload, ppi)
            .map_err(|e| SendError::Sctp(e.to_string()))?;
        self.flush();
        Ok(())
    }

    /// Bytes queued on a channel and not yet acknowledged (W3C `bufferedAmount`).
    pub fn buffered_amount(&mut self, id: u16) -> usize {
        self.assoc
            .as_mut()
            .and_then(|(_, a)| a.stream(id).ok().and_then(|s| s.buffered_amount().ok()))
            .unwrap_or(0)
    }

    /// Sets a channel's low mark (W3C `bufferedAmountLowThreshold`, default 0): when an
    /// acknowledgement (or an abandoned partially reliable message) takes the bytes queued on
    /// it from above the mark to at or below it, a [`ChannelEvent::BufferedAmountLow`]
    /// follows. `false` when there is no such stream.
    pub fn set_buffered_amount_low_threshold(&mut self, id: u16, bytes: usize) -> bool {
        self.assoc.as_mut().is_some_and(|(_, a)| {
            a.stream(id)
                .ok()
                .is_some_and(|mut s| s.set_buffered_amount_low_threshold(bytes).is_ok())
        })
    }

    /// Closes a channel (outgoing stream reset, RFC 8831 §6.7).
    pub fn close_channel(&mut self, id: u16) {
        if let Some(c) = self.channels.get_mut(&id) {
            if c.state != ChannelState::Closed {
                c.state = ChannelState::Closed;
                self.events.push_back(ChannelEvent::Closed { id });
            }
        }
        if let Some((_, a)) = self.assoc.as_mut() {
            if let Ok(mut s) = a.stream(id) {
                let _ = s.close();
            }
        }
        self.flush();
    }

    /// Whether setup is still going on (association or a channel not up): its packets
    /// go to the setup trace.
    fn in_setup(&self) -> bool {
        (!self.connected
            || self
                .channels
                .values()
                .any(|c| c.state == ChannelState::Connecting))
            && tracing::enabled!(target: "natter_webrtc::setup", tracing::Level::DEBUG)
    }

    /// One SCTP packet from the peer (a DTLS record's plaintext).
    pub fn handle_packet(&mut self, packet: &[u8], now: Instant) {
        if self.in_setup() {
            tracing::debug!(target: "natter_webrtc::setup", "SCTP in {}", chunk_names(packet));
        }
        if !self.started {
            self.dropped += 1;
            return;
        }
        let Some((handle, ev)) =
            self.endpoint
                .handle(now, FAKE_ADDR, None, None, Bytes::copy_from_slice(packet))
        else {
            return;
        };
        match ev {
            DatagramEvent::NewAssociation(a) => {
                // Only one association per PeerConnection; a peer that also initiated
                // (or retransmitted its INIT) is answered on the existing one. Held back
                // in case the peer never answers ours (see the module doc).
                if self.assoc.is_none() {
                    self.initiate_at = None;
                    self.assoc = Some((handle, a));
                } else if !self.connected && self.peer_assoc.is_none() {
                    self.peer_assoc = Some((now + INIT_FALLBACK, handle, a));
                }
            }
            DatagramEvent::AssociationEvent(e) => {
                match (self.assoc.as_mut(), self.peer_assoc.as_mut()) {
                    (Some((h, a)), _) if *h == handle => a.handle_event(e),
                    (_, Some((_, h, a))) if *h == handle => a.handle_event(e),
                    _ => {}
                }
            }
        }
        self.flush();
    }

    /// When [`Self::handle_timeout`] wants to run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.assoc.as_ref().and_then(|(_, a)| a.poll_timeout()),
            self.initiate_at,
            self.peer_assoc.as_ref().map(|(t, _, _)| *t),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs due SCTP timers (retransmission, delayed SACK, heartbeat) and the INIT
    /// fallbacks.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.run_fallbacks(now);
        if let Some((_, a)) = self.assoc.as_mut() {
            if a.poll_timeout().is_some_and(|t| t <= now) {
                a.handle_timeout(now);
            }
        }
        self.flush();
    }

    /// Next SCTP packet to send (encrypt it as one DTLS record).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.out.is_empty() && self.transmit_due {
            self.transmit_due = false;
            if let Some((_, a)) = self.assoc.as_mut() {
                // One call gathers everything sendable (control, retransmissions, new DATA
                // up to cwnd and rwnd, SACK). Each call walks the whole in-flight queue, so
                // it is not repeated just to learn that nothing is left: only after new
                // input (see `transmit_due`).
                if let Some(t) = a.poll_transmit(now) {
                    if let Payload::RawEncode(packets) = t.payload {
                        self.out.extend(packets.into_iter().map(|b| b.to_vec()));
                    }
                }
            }
            // Sending can change what the association has to tell us.
            self.flush_events();
        }
        let p = self.out.pop_front()?;
        if self.in_setup() {
            tracing::debug!(target: "natter_webrtc::setup", "SCTP out {}", chunk_names(&p));
        }
        Some(p)
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<ChannelEvent> {
        self.events.pop_front()
    }

    /// After any input: the association may have packets to send; then
    /// [`Self::flush_events`].
    fn flush(&mut self) {
        self.transmit_due = true;
        self.flush_events();
    }

    /// Moves endpoint events and association events along; reads whatever arrived.
    fn flush_events(&mut self) {
        // Bounded, but far above what one input produces (a DatagramReceived and maybe a
        // Readable per DATA chunk): events left behind would wait for the next input.
        for _ in 0..4096 {
            let Some((handle, a)) = self.assoc.as_mut() else {
                return;
            };
            while let Some(e) = a.poll_endpoint_event() {
                if let Some(back) = self.endpoint.handle_event(*handle, e) {
                    a.handle_event(back);
                }
            }
            while a.accept_stream().is_some() {}
            let Some(ev) = a.poll() else {
                return;
            };
            match ev {
                Event::Connected => self.on_connected(),
                Event::AssociationLost { reason } => {
                    self.connected = false;
                    for c in self.channels.values_mut() {
                        if c.state != ChannelState::Closed {
                            c.state = ChannelState::Closed;
                            self.events.push_back(ChannelEvent::Closed { id: c.id });
                        }
                    }
                    self.events
                        .push_back(ChannelEvent::Lost(reason.to_string()));
                }
                Event::Stream(StreamEvent::Readable { id }) => self.read_stream(id),
                Event::Stream(StreamEvent::Finished { id } | StreamEvent::Stopped { id, .. }) => {
                    if let Some(c) = self.channels.get_mut(&id) {
                        if c.state != ChannelState::Closed {
                            c.state = ChannelState::Closed;
                            self.events.push_back(ChannelEvent::Closed { id });
                        }
                    }
                }
                Event::Stream(StreamEvent::BufferedAmountLow { id })
                    if self
                        .channels
                        .get(&id)
                        .is_some_and(|c| c.state != ChannelState::Closed) =>
                {
                    self.events
                        .push_back(ChannelEvent::BufferedAmountLow { id });
                }
                Event::Stream(StreamEvent::ResetComplete { id }) => {
                    self.channels.remove(&id);
                }
                _ => {}
            }
        }
    }

    fn on_connected(&mut self) {
        if self.connected {
            return;
        }
        self.connected = true;
        self.events.push_back(ChannelEvent::Connected);
        let ids: Vec<u16> = self
            .channels
            .values()
            .filter(|c| c.state == ChannelState::Connecting)
            .map(|c| c.id)
            .collect();
        for id in ids {
            self.send_open(id);
        }
    }

    /// Opens our stream and sends DATA_CHANNEL_OPEN on it (reliable, ordered, as RFC 8832
    /// §6 wants), then switches the stream to the channel's own reliability.
    fn send_open(&mut self, id: u16) {
        let Some(c) = self.channels.get(&id) else {
            return;
        };
        let msg = Message::Open(Open {
            channel_type: c.channel_type,
            priority: 256,
            label: c.label.clone(),
            protocol: c.protocol.clone(),
        });
        let ct = c.channel_type;
        let Ok(bytes) = msg.encode() else {
            return;
        };
        let Some((_, a)) = self.assoc.as_mut() else {
            return;
        };
        let ok = match a.open_stream(id, PayloadProtocolIdentifier::Binary) {
            Ok(mut s) => {
                s.write_with_ppi(&bytes, PayloadProtocolIdentifier::Dcep)
                    .is_ok()
                    && set_reliability(&mut s, ct)
            }
            Err(_) => false,
        };
        if !ok {
            if let Some(c) = self.channels.get_mut(&id) {
                c.state = ChannelState::Closed;
            }
            self.events.push_back(ChannelEvent::Closed { id });
        }
    }

    fn read_stream(&mut self, id: u16) {
        for _ in 0..4096 {
            let Some((_, a)) = self.assoc.as_mut() else {
                return;
            };
            let Ok(mut s) = a.stream(id) else {
                return;
            };
            let chunks = match s.read_sctp() {
                Ok(Some(c)) => c,
                _ => return,
            };
            let mut buf = vec![0u8; chunks.len()];
            let Ok(n) = chunks.read(&mut buf) else {
                self.dropped += 1;
                continue;
            };
            buf.truncate(n);
            match chunks.ppi {
                PayloadProtocolIdentifier::Dcep => self.on_dcep(id, &buf),
                ppi => self.on_data(id, ppi, buf),
            }
        }
    }

    fn on_dcep(&mut self, id: u16, buf: &[u8]) {
        match Message::parse(buf) {
            Ok(Message::Open(o)) => {
                if self.channels.len() >= MAX_CHANNELS && !self.channels.contains_key(&id) {
                    self.dropped += 1;
                    return;
                }
                let ack = Message::Ack.encode().unwrap_or_default();
                let Some((_, a)) = self.assoc.as_mut() else {
                    return;
                };
                let Ok(mut s) = a.stream(id) else {
                    return;
                };
                let ok = s
                    .write_with_ppi(&ack, PayloadProtocolIdentifier::Dcep)
                    .is_ok()
                    && set_reliability(&mut s, o.channel_type);
                if !ok {
                    self.dropped += 1;
                    return;
                }
                self.channels.insert(
                    id,
                    ChannelInfo {
                        id,
                        label: o.label.clone(),
                        protocol: o.protocol,
                        channel_type: o.channel_type,
                        state: ChannelState::Open,
                    },
                );
                self.events
                    .push_back(ChannelEvent::Open { id, label: o.label });
            }
            Ok(Message::Ack) => {
                if let Some(c) = self.channels.get_mut(&id) {
                    if c.state == ChannelState::Connecting {
                        c.state = ChannelState::Open;
                        let label = c.label.clone();
                        self.events.push_back(ChannelEvent::Open { id, label });
                    }
                }
            }
            Err(_) => self.dropped += 1,
        }
    }

    fn on_data(&mut self, id: u16, ppi: PayloadProtocolIdentifier, mut data: Vec<u8>) {
        let open = self.channels.get(&id).map(|c| c.state);
        // RFC 8832 §6: data may arrive before our ACK is seen; accept it once the channel
        // is known to us at all.
        if !matches!(open, Some(ChannelState::Open | ChannelState::Connecting)) {
            self.dropped += 1;
            return;
        }
        let text = match ppi {
            PayloadProtocolIdentifier::String => true,
            PayloadProtocolIdentifier::StringEmpty => {
                data.clear();
                true
            }
            PayloadProtocolIdentifier::BinaryEmpty => {
                data.clear();
                false
            }
            _ => false,
        };
        self.events
            .push_back(ChannelEvent::Message { id, text, data });
    }
}

fn set_reliability(s: &mut sctp_proto::Stream<'_>, ct: ChannelType) -> bool {
    let (kind, value) = match ct.reliability {
        Reliability::Reliable => (ReliabilityType::Reliable, 0),
        Reliability::MaxRetransmits(n) => (ReliabilityType::Rexmit, n),
        Reliability::MaxLifetimeMs(ms) => (ReliabilityType::Timed, ms),
    };
    s.set_reliability_params(!ct.ordered, kind, value).is_ok()
}

/// PPID numbers, for logs and the fuzz target.
pub fn ppid_number(p: PayloadProtocolIdentifier) -> u32 {
    match p {
        PayloadProtocolIdentifier::Dcep => dcep::ppid::DCEP,
        PayloadProtocolIdentifier::String => dcep::ppid::STRING,
        PayloadProtocolIdentifier::Binary => dcep::ppid::BINARY,
        PayloadProtocolIdentifier::StringEmpty => dcep::ppid::STRING_EMPTY,
        PayloadProtocolIdentifier::BinaryEmpty => dcep::ppid::BINARY_EMPTY,
        _ => 0,
    }
}

/// The chunk types of an SCTP packet, for the setup trace (DATA with its PPID).
fn chunk_names(packet: &[u8]) -> String {
    let mut names = Vec::new();
    let mut rest = packet.get(12..).unwrap_or(&[]);
    for _ in 0..16 {
        let Some(h) = rest.get(..4) else { break };
        let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let name = match h[0] {
            0 => {
                let ppid = rest
                    .get(12..16)
                    .map_or(0, |p| u32::from_be_bytes([p[0], p[1], p[2], p[3]]));
                format!("DATA(ppid {ppid}, {} B)", len.saturating_sub(16))
            }
            1 => "INIT".into(),
            2 => "INIT-ACK".into(),
            3 => "SACK".into(),
            4 => "HEARTBEAT".into(),
            5 => "HEARTBEAT-ACK".into(),
            6 => "ABORT".into(),
            10 => "COOKIE-ECHO".into(),
            11 => "COOKIE-ACK".into(),
            130 => "RECONFIG".into(),
            192 => "FORWARD-TSN".into(),
            t => format!("chunk {t}"),
        };
        names.push(name);
        if len < 4 {
            break;
        }
        rest = rest.get(len.div_ceil(4) * 4..).unwrap_or(&[]);
    }
    names.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn crc32c(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// Moves packets both ways until quiet; returns the last client->server header tag.
    fn exchange(a: &mut DataChannels, b: &mut DataChannels, now: Instant) -> Option<[u8; 4]> {
        let mut tag = None;
        for _ in 0..100 {
            let mut moved = false;
            while let Some(p) = a.poll_transmit(now) {
                moved = true;
                tag = p.get(4..8).and_then(|t| t.try_into().ok());
                b.handle_packet(&p, now);
            }
            while let Some(p) = b.poll_transmit(now) {
                moved = true;
                a.handle_packet(&p, now);
            }
            if !moved {
                break;
            }
        }
        tag
    }

    #[test]
    fn garbage_chunks_with_valid_tag_and_crc_never_panic() {
        let now = Instant::now();
        let (mut c, mut s) = (DataChannels::new(), DataChannels::new());
        let id = c.create_channel("x", "", ChannelType::RELIABLE);
        c.start(true, Some(LOCAL_MAX_MESSAGE_SIZE), Instant::now());
        s.start(false, Some(LOCAL_MAX_MESSAGE_SIZE), Instant::now());
        let vtag = exchange(&mut c, &mut s, now).expect("handshake packets");
        assert_eq!(c.channel(id).map(|ch| ch.state), Some(ChannelState::Open));
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        // Chunk types that keep the association alive; ABORT/SHUTDOWN would end it by design.
        let kinds = [0u8, 3, 4, 5, 10, 11, 14, 130, 192, 200];
        for _ in 0..3000 {
            let mut pkt = vec![0x13, 0x88, 0x13, 0x88];
            pkt.extend_from_slice(&vtag);
            pkt.extend_from_slice(&[0; 4]);
            let len = rng.gen_range(0..64usize);
            let mut chunk: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            if let Some(k) = chunk.first_mut() {
                *k = kinds[rng.gen_range(0..kinds.len())];
            }
            pkt.extend_from_slice(&chunk);
            let crc = crc32c(&pkt);
            pkt[8..12].copy_from_slice(&crc.to_le_bytes());
            s.handle_packet(&pkt, now);
            while s.poll_transmit(now).is_some() {}
        }
        while s.poll_event().is_some() {}
        // Garbage DATA may have consumed TSNs or triggered an ABORT; the property is that
        // no input panics and the wrapper keeps processing packets afterwards.
        let _ = c.send(id, true, b"still there");
        exchange(&mut c, &mut s, now);
        let _ = c.send(id, true, b"and again");
        exchange(&mut c, &mut s, now);
    }

    /// Like `exchange`, but packets from `a` carrying an INIT chunk (type 1, first chunk
    /// after the 12-byte common header) are dropped: a peer that ignores our INIT.
    fn exchange_dropping_inits_from(a: &mut DataChannels, b: &mut DataChannels, now: Instant) {
        for _ in 0..100 {
            let mut moved = false;
            while let Some(p) = a.poll_transmit(now) {
                moved = true;
                if p.get(12) != Some(&1) {
                    b.handle_packet(&p, now);
                }
            }
            while let Some(p) = b.poll_transmit(now) {
                moved = true;
                a.handle_packet(&p, now);
            }
            if !moved {
                break;
            }
        }
    }

    fn is_connected_after_fallback(
        mut ours: DataChannels,
        mut theirs: DataChannels,
        drop_our_inits: bool,
        t0: Instant,
    ) -> bool {
        let id = ours.create_channel("x", "", ChannelType::RELIABLE);
        let mut now = t0;
        for _ in 0..20 {
            if drop_our_inits {
                exchange_dropping_inits_from(&mut ours, &mut theirs, now);
            } else {
                exchange(&mut ours, &mut theirs, now);
            }
            if ours.channel(id).map(|c| c.state) == Some(ChannelState::Open) {
                return now.duration_since(t0) >= INIT_FALLBACK;
            }
            let next = [ours.poll_timeout(), theirs.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now);
            now = next.max(now);
            ours.handle_timeout(now);
            theirs.handle_timeout(now);
        }
        false
    }

    /// aiortc as offerer: it is SCTP client although DTLS server, and ignores our INIT
    /// (we are DTLS client). After INIT_FALLBACK we take the association its INIT began.
    #[test]
    fn dtls_client_takes_the_peers_association_when_its_init_is_ignored() {
        let now = Instant::now();
        let (mut ours, mut theirs) = (DataChannels::new(), DataChannels::new());
        ours.start(true, Some(LOCAL_MAX_MESSAGE_SIZE), now);
        theirs.start(true, Some(LOCAL_MAX_MESSAGE_SIZE), now);
        assert!(is_connected_after_fallback(ours, theirs, true, now));
    }

    /// aiortc as answerer: it is SCTP server although DTLS client and never sends INIT.
    /// We initiate after INIT_FALLBACK.
    #[test]
    fn dtls_server_initiates_when_no_init_comes() {
        let now = Instant::now();
        let (mut ours, mut theirs) = (DataChannels::new(), DataChannels::new());
        ours.start(false, Some(LOCAL_MAX_MESSAGE_SIZE), now);
        // The peer: a server that never initiates (its own fallback switched off).
        theirs.start(false, Some(LOCAL_MAX_MESSAGE_SIZE), now);
        theirs.initiate_at = None;
        assert!(is_connected_after_fallback(ours, theirs, false, now));
    }
}
