//! The XMPP client stream core, sans-IO (RFC 6120/6121): bytes in, bytes out, events and a
//! next timeout. The driver owns the socket and TLS; when the core asks for TLS
//! ([`Event::StartTls`]) the driver wraps the connection and calls
//! [`Client::tls_established`].
//!
//! Negotiation order (RFC 6120 §4.3): stream header → features → STARTTLS (if offered and
//! allowed) → stream restart → SASL (SCRAM-SHA-256, SCRAM-SHA-1, then PLAIN only over TLS
//! or when explicitly allowed) → stream restart → XEP-0198 resume, or resource binding and
//! XEP-0198 enable. Then [`Event::Online`].
//!
//! The core answers what needs no application: XEP-0199 pings, XEP-0030 disco#info (with
//! the features the XEP-0115 caps hash in our presence stands for), XEP-0198 ack requests,
//! and `service-unavailable` for IQs the application did not claim.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rand::{Rng, SeedableRng};

use crate::jid::Jid;
use crate::sasl::{self, SaslError, Scram, ScramHash};
use crate::xml::{Element, Limits, StreamParser, XmlError, XmlEvent, NS_STREAM};
use crate::{caps, ns};

/// How to treat TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPolicy {
    /// STARTTLS must be offered and is used.
    Required,
    /// STARTTLS is used when offered.
    Opportunistic,
    /// Never STARTTLS (a loopback test server without certificates).
    Disabled,
    /// The connection is TLS from the first byte (XEP-0368 direct TLS).
    Direct,
}

/// XEP-0198 state to resume a stream on a new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmResume {
    /// The `id` of `<enabled/>`.
    pub id: String,
    /// The server's preferred reconnection address, if it gave one.
    pub location: Option<String>,
    /// Stanzas we have handled (our `h`).
    pub inbound: u32,
    /// Stanzas we sent that the server has not acknowledged, oldest first.
    pub unacked: Vec<Element>,
    /// Our sent-stanza counter at the oldest unacked stanza.
    pub acked: u32,
    /// The full JID that was bound.
    pub jid: Jid,
}

/// Settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The account (bare JID).
    pub jid: Jid,
    /// Its password.
    pub password: String,
    /// Resource to ask for (the server may choose another).
    pub resource: String,
    /// TLS use.
    pub tls: TlsPolicy,
    /// Allow PLAIN on a stream without TLS (loopback tests).
    pub allow_plain_without_tls: bool,
    /// Use XEP-0198 when the server offers it.
    pub stream_management: bool,
    /// Resume this XEP-0198 session instead of binding anew.
    pub resume: Option<SmResume>,
    /// Parser bounds.
    pub limits: Limits,
    /// IQ payload namespaces the application answers itself (Jingle, ...).
    pub app_iq_namespaces: Vec<String>,
    /// Features we advertise in disco#info (and caps).
    pub features: Vec<String>,
    /// How long negotiation may take before [`ClientError::Timeout`].
    pub setup_timeout: Duration,
    /// Seed for nonces and ids.
    pub seed: u64,
}

impl ClientConfig {
    /// Defaults for `jid` / `password`.
    pub fn new(jid: Jid, password: &str) -> Self {
        ClientConfig {
            jid: jid.bare(),
            password: password.to_owned(),
            resource: if jid.resource.is_empty() {
                "natter".into()
            } else {
                jid.resource.clone()
            },
            tls: TlsPolicy::Opportunistic,
            allow_plain_without_tls: false,
            stream_management: true,
            resume: None,
            limits: Limits::default(),
            app_iq_namespaces: Vec::new(),
            features: caps::default_features(),
            setup_timeout: Duration::from_secs(20),
            seed: rand::random(),
        }
    }
}

/// Why the stream ended or could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The peer's XML.
    #[error("XML: {0}")]
    Xml(#[from] XmlError),
    /// SCRAM.
    #[error("SASL: {0}")]
    Sasl(#[from] SaslError),
    /// The server refused our credentials.
    #[error("authentication failed: {0}")]
    AuthFailed(String),
    /// No mechanism we may use.
    #[error("no usable SASL mechanism (offered: {0})")]
    NoMechanism(String),
    /// TLS was required but the server does not offer it (or refused).
    #[error("TLS required but not available")]
    TlsUnavailable,
    /// The server sent a stream error.
    #[error("stream error: {0}")]
    Stream(String),
    /// Resource binding failed.
    #[error("resource binding failed: {0}")]
    Bind(String),
    /// The connection broke (resumable with XEP-0198 when [`Client::resume_state`] says so).
    #[error("connection lost")]
    ConnectionLost,
    /// Negotiation took too long.
    #[error("timed out during stream negotiation")]
    Timeout,
    /// Something out of order.
    #[error("protocol: {0}")]
    Protocol(String),
}

/// What the application should know.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Upgrade the connection to TLS now, then call [`Client::tls_established`].
    StartTls,
    /// Authenticated and bound (or resumed).
    Online {
        /// Our full JID.
        jid: Jid,
        /// Whether an XEP-0198 session was resumed (no new presence needed).
        resumed: bool,
    },
    /// A stanza for the application (message, presence, IQ results and claimed IQs).
    Stanza(Element),
    /// The server acknowledged everything up to this many stanzas (XEP-0198).
    Acked(u32),
    /// The stream is over (the error, if it did not end cleanly).
    Closed(Option<ClientError>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Header sent, waiting for the server's header and features.
    Features,
    /// `<starttls/>` sent.
    StartTls,
    /// Waiting for the driver's TLS handshake.
    TlsPending,
    /// SASL in progress.
    Sasl,
    /// Bind IQ sent.
    Binding,
    /// XEP-0198 resume sent.
    Resuming,
    /// Ready.
    Online,
    /// Done.
    Closed,
}

/// The client core.
pub struct Client {
    cfg: ClientConfig,
    parser: StreamParser,
    state: State,
    tls: bool,
    authenticated: bool,
    scram: Option<Scram>,
    jid: Option<Jid>,
    out: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    rng: rand::rngs::StdRng,
    next_id: u64,
    deadline: Option<Instant>,
    // XEP-0198.
    sm_offered: bool,
    sm_enabled: bool,
    sm_id: Option<String>,
    sm_location: Option<String>,
    inbound: u32,
    sent: u32,
    acked: u32,
    unacked: VecDeque<Element>,
    ack_requested: bool,
    next_ack_request: Option<Instant>,
    last_send: Instant,
}

/// Stanzas (what XEP-0198 counts).
fn is_stanza(e: &Element) -> bool {
    e.ns == ns::CLIENT && matches!(e.name.as_str(), "message" | "presence" | "iq")
}

impl Client {
    /// A client; the stream header is queued at once (or after TLS for direct TLS, which
    /// the driver completes before the first byte anyway).
    pub fn new(cfg: ClientConfig, now: Instant) -> Self {
        let rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
        let tls = cfg.tls == TlsPolicy::Direct;
        let mut c = Client {
            parser: StreamParser::new(cfg.limits),
            state: State::Features,
            tls,
            authenticated: false,
            scram: None,
            jid: None,
            out: VecDeque::new(),
            events: VecDeque::new(),
            rng,
            next_id: 1,
            deadline: Some(now + cfg.setup_timeout),
            sm_offered: false,
            sm_enabled: false,
            sm_id: None,
            sm_location: None,
            inbound: 0,
            sent: 0,
            acked: 0,
            unacked: VecDeque::new(),
            ack_requested: false,
            next_ack_request: None,
            last_send: now,
            cfg,
        };
        c.open_stream();
        c
    }

    fn open_stream(&mut self) {
        self.parser = StreamParser::new(self.cfg.limits);
        let header = format!(
            "<?xml version='1.0'?><stream:stream xmlns='{}' xmlns:stream='{}' to='{}' from='{}' version='1.0' xml:lang='en'>",
            ns::CLIENT,
            NS_STREAM,
            self.cfg.jid.domain,
            self.cfg.jid.bare()
        );
        self.out.push_back(header.into_bytes());
        self.state = State::Features;
    }

    /// Our bound JID once online.
    pub fn jid(&self) -> Option<&Jid> {
        self.jid.as_ref()
    }

    /// Whether negotiation is over.
    pub fn is_online(&self) -> bool {
        self.state == State::Online
    }

    /// Whether the stream runs over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Whether XEP-0198 is on.
    pub fn sm_enabled(&self) -> bool {
        self.sm_enabled
    }

    /// A fresh stanza id.
    pub fn new_id(&mut self) -> String {
        let n = self.next_id;
        self.next_id += 1;
        format!("n{n}-{:08x}", self.rng.gen::<u32>())
    }

    /// What a later connection needs to resume this stream (XEP-0198 with resume).
    pub fn resume_state(&self) -> Option<SmResume> {
        Some(SmResume {
            id: self.sm_id.clone()?,
            location: self.sm_location.clone(),
            inbound: self.inbound,
            unacked: self.unacked.iter().cloned().collect(),
            acked: self.acked,
            jid: self.jid.clone()?,
        })
    }

    fn send_raw(&mut self, e: &Element) {
        self.out.push_back(e.to_xml_in(ns::CLIENT).into_bytes());
    }

    /// Sends a stanza (counted and kept for resending under XEP-0198).
    pub fn send(&mut self, now: Instant, stanza: Element) {
        if self.state == State::Closed {
            // A stream that can be resumed keeps what is sent meanwhile for the new
            // connection (XEP-0198 §5: the resumed stream sends every unacked stanza).
            if self.sm_enabled && self.sm_id.is_some() && is_stanza(&stanza) {
                self.sent = self.sent.wrapping_add(1);
                self.unacked.push_back(stanza);
            }
            return;
        }
        self.send_raw(&stanza);
        self.last_send = now;
        if self.sm_enabled && is_stanza(&stanza) {
            self.sent = self.sent.wrapping_add(1);
            self.unacked.push_back(stanza);
            if self.unacked.len() >= 5 && !self.ack_requested {
                self.request_ack(now);
            } else if self.next_ack_request.is_none() {
                self.next_ack_request = Some(now + Duration::from_secs(2));
            }
        }
    }

    fn request_ack(&mut self, now: Instant) {
        self.out
            .push_back(Element::new("r", ns::SM).to_xml().into_bytes());
        self.ack_requested = true;
        self.next_ack_request = Some(now + Duration::from_secs(10));
    }

    /// Sends an IQ; returns its id.
    pub fn iq(&mut self, now: Instant, kind: &str, to: Option<&Jid>, payload: Element) -> String {
        let id = self.new_id();
        let mut iq = Element::new("iq", ns::CLIENT)
            .with_attr("type", kind)
            .with_attr("id", id.clone());
        if let Some(t) = to {
            iq.set_attr("to", t.to_string());
        }
        iq.push(payload);
        self.send(now, iq);
        id
    }

    /// An empty `result` to an IQ.
    pub fn iq_result(&mut self, now: Instant, req: &Element, payload: Option<Element>) {
        let mut iq = Element::new("iq", ns::CLIENT).with_attr("type", "result");
        if let Some(id) = req.attr("id") {
            iq.set_attr("id", id);
        }
        if let Some(from) = req.attr("from") {
            iq.set_attr("to", from);
        }
        if let Some(p) = payload {
            iq.push(p);
        }
        self.send(now, iq);
    }

    /// An `error` answer to an IQ (RFC 6120 §8.3), with an optional application condition.
    pub fn iq_error(
        &mut self,
        now: Instant,
        req: &Element,
        kind: &str,
        condition: &str,
        app: Option<Element>,
    ) {
        let mut iq = Element::new("iq", ns::CLIENT).with_attr("type", "error");
        if let Some(id) = req.attr("id") {
            iq.set_attr("id", id);
        }
        if let Some(from) = req.attr("from") {
            iq.set_attr("to", from);
        }
        let mut err = Element::new("error", ns::CLIENT)
            .with_attr("type", kind)
            .with_child(Element::new(condition, ns::STANZAS));
        if let Some(a) = app {
            err.push(a);
        }
        iq.push(err);
        self.send(now, iq);
    }

    /// Our presence with the XEP-0115 caps of what we support.
    pub fn available_presence(&self) -> Element {
        Element::new("presence", ns::CLIENT).with_child(caps::caps_element(&self.cfg.features))
    }

    /// Ends the stream politely.
    pub fn close(&mut self) {
        if self.state == State::Closed {
            return;
        }
        if self.sm_enabled {
            let a = Element::new("a", ns::SM).with_attr("h", self.inbound.to_string());
            self.out.push_back(a.to_xml().into_bytes());
        }
        self.out.push_back(b"</stream:stream>".to_vec());
        self.state = State::Closed;
    }

    /// The driver finished the TLS handshake that [`Event::StartTls`] asked for.
    pub fn tls_established(&mut self) {
        if self.state == State::TlsPending {
            self.tls = true;
            self.open_stream();
        }
    }

    /// Bytes to write.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Client::handle_timeout`] must run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        let keepalive = (self.state == State::Online).then(|| self.last_send + KEEPALIVE);
        [self.deadline, self.next_ack_request, keepalive]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs timers: the negotiation deadline, XEP-0198 ack requests, whitespace keepalive.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| now >= d) {
            self.fail(ClientError::Timeout);
            return;
        }
        if self.next_ack_request.is_some_and(|t| now >= t) {
            if self.unacked.is_empty() {
                self.next_ack_request = None;
            } else {
                self.request_ack(now);
            }
        }
        if self.state == State::Online && now >= self.last_send + KEEPALIVE {
            self.out.push_back(b" ".to_vec());
            self.last_send = now;
        }
    }

    /// The connection closed under us.
    pub fn connection_lost(&mut self) {
        if self.state != State::Closed {
            self.state = State::Closed;
            self.events
                .push_back(Event::Closed(Some(ClientError::ConnectionLost)));
        }
    }

    fn fail(&mut self, e: ClientError) {
        if self.state == State::Closed {
            return;
        }
        self.out.push_back(b"</stream:stream>".to_vec());
        self.state = State::Closed;
        self.events.push_back(Event::Closed(Some(e)));
    }

    /// Bytes from the server.
    pub fn handle_bytes(&mut self, now: Instant, data: &[u8]) {
        if self.state == State::Closed || self.state == State::TlsPending {
            return;
        }
        let evs = match self.parser.feed(data) {
            Ok(evs) => evs,
            Err(e) => {
                // RFC 6120 §4.9.1.1: tell the server why before closing.
                let cond = match e {
                    XmlError::Doctype | XmlError::ProcessingInstruction | XmlError::Entity(_) => {
                        "restricted-xml"
                    }
                    XmlError::TooLarge(_)
                    | XmlError::TooDeep(_)
                    | XmlError::TooManyAttributes(_)
                    | XmlError::TooManyElements(_) => "policy-violation",
                    XmlError::BadNamespace(_) => "invalid-namespace",
                    _ => "not-well-formed",
                };
                let err =
                    Element::new("error", NS_STREAM).with_child(Element::new(cond, ns::STREAMS));
                self.out.push_back(
                    format!("<stream:error>{}</stream:error>", inner_xml(&err)).into_bytes(),
                );
                self.fail(ClientError::Xml(e));
                return;
            }
        };
        for ev in evs {
            if self.state == State::Closed || self.state == State::TlsPending {
                break;
            }
            match ev {
                XmlEvent::StreamOpen(_) => {}
                XmlEvent::StreamClose => {
                    self.state = State::Closed;
                    self.out.push_back(b"</stream:stream>".to_vec());
                    self.events.push_back(Event::Closed(None));
                }
                XmlEvent::Stanza(e) => self.on_element(now, e),
            }
        }
    }

    fn on_element(&mut self, now: Instant, e: Element) {
        if e.is("error", NS_STREAM) {
            let cond = e
                .elements()
                .find(|c| c.ns == ns::STREAMS && c.name != "text")
                .map(|c| c.name.clone())
                .unwrap_or_else(|| "undefined-condition".into());
            self.state = State::Closed;
            self.events
                .push_back(Event::Closed(Some(ClientError::Stream(cond))));
            return;
        }
        if e.ns == ns::SM {
            self.on_sm(now, &e);
            return;
        }
        match self.state {
            State::Features => self.on_features(now, &e),
            State::StartTls => {
                if e.is("proceed", ns::TLS) {
                    self.state = State::TlsPending;
                    self.events.push_back(Event::StartTls);
                } else {
                    self.fail(ClientError::TlsUnavailable);
                }
            }
            State::Sasl => self.on_sasl(&e),
            State::Binding => self.on_bind(now, &e),
            State::Resuming => self.fail(ClientError::Protocol(format!(
                "unexpected <{}> while resuming",
                e.name
            ))),
            State::Online => self.on_stanza(now, e),
            State::TlsPending | State::Closed => {}
        }
    }

    fn on_features(&mut self, now: Instant, f: &Element) {
        if !f.is("features", NS_STREAM) {
            self.fail(ClientError::Protocol(format!(
                "expected features, got <{}>",
                f.name
            )));
            return;
        }
        if !self.tls {
            let offered = f.child("starttls", ns::TLS).is_some();
            match (self.cfg.tls, offered) {
                (TlsPolicy::Required | TlsPolicy::Opportunistic, true) => {
                    self.out
                        .push_back(Element::new("starttls", ns::TLS).to_xml().into_bytes());
                    self.state = State::StartTls;
                    return;
                }
                (TlsPolicy::Required, false) => {
                    self.fail(ClientError::TlsUnavailable);
                    return;
                }
                _ => {}
            }
        }
        if !self.authenticated {
            let mechs: Vec<String> = f
                .child("mechanisms", ns::SASL)
                .map(|m| {
                    m.children_named("mechanism", ns::SASL)
                        .map(|x| x.text().trim().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            self.start_sasl(&mechs);
            return;
        }
        self.sm_offered = f.child("sm", ns::SM).is_some();
        if let Some(r) = self.cfg.resume.clone().filter(|_| self.sm_offered) {
            let el = Element::new("resume", ns::SM)
                .with_attr("previd", r.id)
                .with_attr("h", r.inbound.to_string());
            self.out.push_back(el.to_xml().into_bytes());
            self.state = State::Resuming;
            return;
        }
        self.bind(now);
    }

    fn bind(&mut self, now: Instant) {
        let payload = Element::new("bind", ns::BIND)
            .with_child(Element::new("resource", ns::BIND).with_text(self.cfg.resource.clone()));
        let iq = Element::new("iq", ns::CLIENT)
            .with_attr("type", "set")
            .with_attr("id", "bind-1")
            .with_child(payload);
        self.send_raw(&iq);
        self.last_send = now;
        self.state = State::Binding;
    }

    fn start_sasl(&mut self, mechs: &[String]) {
        let has = |m: &str| mechs.iter().any(|x| x.eq_ignore_ascii_case(m));
        let nonce: String = (0..24)
            .map(|_| {
                const A: &[u8] =
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                char::from(A[self.rng.gen_range(0..A.len())])
            })
            .collect();
        let user = self.cfg.jid.local.clone();
        let (mech, initial) = if has("SCRAM-SHA-256") || has("SCRAM-SHA-1") {
            let h = if has("SCRAM-SHA-256") {
                ScramHash::Sha256
            } else {
                ScramHash::Sha1
            };
            let mut s = Scram::new(h, &user, &self.cfg.password, &nonce);
            let first = s.client_first();
            let m = s.mechanism();
            self.scram = Some(s);
            (m, first)
        } else if has("PLAIN") && (self.tls || self.cfg.allow_plain_without_tls) {
            ("PLAIN", sasl::plain(&user, &self.cfg.password))
        } else {
            self.fail(ClientError::NoMechanism(mechs.join(",")));
            return;
        };
        let auth = Element::new("auth", ns::SASL)
            .with_attr("mechanism", mech)
            .with_text(B64.encode(initial));
        self.out.push_back(auth.to_xml().into_bytes());
        self.state = State::Sasl;
    }

    fn on_sasl(&mut self, e: &Element) {
        if e.ns != ns::SASL {
            self.fail(ClientError::Protocol(format!("<{}> during SASL", e.name)));
            return;
        }
        let data = match B64.decode(e.text().trim()) {
            Ok(d) => d,
            Err(_) if e.name == "failure" => Vec::new(),
            Err(_) => {
                self.fail(ClientError::Protocol("SASL data is not base64".into()));
                return;
            }
        };
        match e.name.as_str() {
            "challenge" => {
                let Some(s) = &mut self.scram else {
                    self.fail(ClientError::Protocol("challenge for PLAIN".into()));
                    return;
                };
                match s.client_final(&data) {
                    Ok(resp) => {
                        let r = Element::new("response", ns::SASL).with_text(B64.encode(resp));
                        self.out.push_back(r.to_xml().into_bytes());
                    }
                    Err(err) => self.fail(err.into()),
                }
            }
            "success" => {
                if let Some(s) = &mut self.scram {
                    if let Err(err) = s.verify_server_final(&data) {
                        self.fail(err.into());
                        return;
                    }
                }
                self.authenticated = true;
                self.open_stream();
            }
            "failure" => {
                let cond = e
                    .elements()
                    .find(|c| c.name != "text")
                    .map(|c| c.name.clone())
                    .unwrap_or_else(|| "not-authorized".into());
                self.fail(ClientError::AuthFailed(cond));
            }
            other => self.fail(ClientError::Protocol(format!("<{other}> during SASL"))),
        }
    }

    fn on_bind(&mut self, now: Instant, e: &Element) {
        if !(e.is("iq", ns::CLIENT) && e.attr("id") == Some("bind-1")) {
            return;
        }
        if e.attr("type") != Some("result") {
            let cond = e
                .child("error", ns::CLIENT)
                .and_then(|x| x.elements().next())
                .map(|c| c.name.clone())
                .unwrap_or_else(|| "error".into());
            self.fail(ClientError::Bind(cond));
            return;
        }
        let jid = e
            .child("bind", ns::BIND)
            .and_then(|b| b.child("jid", ns::BIND))
            .and_then(|j| Jid::parse(j.text().trim()).ok());
        let Some(jid) = jid else {
            self.fail(ClientError::Bind("no JID in the result".into()));
            return;
        };
        self.go_online(now, jid, false);
        if self.sm_offered && self.cfg.stream_management {
            let en = Element::new("enable", ns::SM).with_attr("resume", "true");
            self.out.push_back(en.to_xml().into_bytes());
            self.sm_enabled = true;
            self.sent = 0;
            self.acked = 0;
            self.inbound = 0;
        }
    }

    fn go_online(&mut self, now: Instant, jid: Jid, resumed: bool) {
        self.jid = Some(jid.clone());
        self.state = State::Online;
        self.deadline = None;
        self.last_send = now;
        self.events.push_back(Event::Online { jid, resumed });
    }

    fn on_sm(&mut self, now: Instant, e: &Element) {
        match e.name.as_str() {
            "enabled" => {
                self.sm_id = e
                    .attr("id")
                    .map(str::to_owned)
                    .filter(|_| matches!(e.attr("resume"), Some("true") | Some("1")));
                self.sm_location = e.attr("location").map(str::to_owned);
            }
            "r" if self.sm_enabled => {
                let a = Element::new("a", ns::SM).with_attr("h", self.inbound.to_string());
                self.out.push_back(a.to_xml().into_bytes());
            }
            "a" => {
                if let Some(h) = e.attr("h").and_then(|h| h.parse::<u32>().ok()) {
                    self.on_ack(h);
                }
                self.ack_requested = false;
                self.next_ack_request =
                    (!self.unacked.is_empty()).then(|| now + Duration::from_secs(10));
            }
            "resumed" if self.state == State::Resuming => {
                let Some(r) = self.cfg.resume.take() else {
                    return;
                };
                self.sm_enabled = true;
                self.sm_id = Some(r.id.clone());
                self.sm_location = r.location.clone();
                self.inbound = r.inbound;
                self.acked = r.acked;
                self.sent = r.acked.wrapping_add(r.unacked.len() as u32);
                self.unacked = r.unacked.into_iter().collect();
                let h = e
                    .attr("h")
                    .and_then(|h| h.parse::<u32>().ok())
                    .unwrap_or(self.acked);
                self.on_ack(h);
                // What the old connection lost goes out again, in order (XEP-0198 §5).
                let resend: Vec<Element> = self.unacked.iter().cloned().collect();
                for s in &resend {
                    self.send_raw(s);
                }
                if !resend.is_empty() {
                    self.request_ack(now);
                }
                self.go_online(now, r.jid, true);
            }
            "failed" if self.state == State::Resuming => {
                // The old session is gone: bind a new one (its unacked stanzas are lost).
                self.cfg.resume = None;
                self.bind(now);
            }
            "failed" => {
                self.sm_enabled = false;
            }
            _ => {}
        }
    }

    fn on_ack(&mut self, h: u32) {
        let newly = h.wrapping_sub(self.acked);
        if newly as usize > self.unacked.len() {
            // The server acknowledges more than we sent: a broken count; ignore it.
            return;
        }
        for _ in 0..newly {
            self.unacked.pop_front();
        }
        self.acked = h;
        self.events.push_back(Event::Acked(h));
    }

    fn on_stanza(&mut self, now: Instant, e: Element) {
        if !is_stanza(&e) {
            return;
        }
        if self.sm_enabled {
            self.inbound = self.inbound.wrapping_add(1);
        }
        if e.name == "iq" && matches!(e.attr("type"), Some("get") | Some("set")) {
            let payload_ns = e.elements().next().map(|p| (p.name.clone(), p.ns.clone()));
            match payload_ns {
                Some((n, p)) if n == "ping" && p == ns::PING => {
                    self.iq_result(now, &e, None);
                }
                Some((n, p))
                    if n == "query" && p == ns::DISCO_INFO && e.attr("type") == Some("get") =>
                {
                    let node = e
                        .elements()
                        .next()
                        .and_then(|q| q.attr("node"))
                        .map(str::to_owned);
                    let q = caps::disco_info(&self.cfg.features, node.as_deref());
                    self.iq_result(now, &e, Some(q));
                }
                Some((_, p)) if self.cfg.app_iq_namespaces.contains(&p) => {
                    self.events.push_back(Event::Stanza(e));
                }
                _ => self.iq_error(now, &e, "cancel", "service-unavailable", None),
            }
            return;
        }
        self.events.push_back(Event::Stanza(e));
    }
}

/// Whitespace keepalive period (RFC 6120 §4.6.1).
const KEEPALIVE: Duration = Duration::from_secs(60);

fn inner_xml(e: &Element) -> String {
    let mut s = String::new();
    for c in e.elements() {
        c.write_to(&mut s, NS_STREAM);
    }
    s
}

#[cfg(test)]
mod tests;
