//! A sans-IO user agent core with an event API in the spirit of eXosip /
//! pjsua: the application calls methods (`register`, `invite`, `answer`,
//! `bye`, `message`, ...) and polls [`UaEvent`]s and datagrams; the core
//! runs transactions and dialogs, answers 401/407 with digest credentials,
//! sends the ACK for 2xx, retransmits its own 2xx until ACKed (§13.3.1.4)
//! and refreshes registrations.
//!
//! All requests go to one next hop (`outbound`, normally the proxy or
//! registrar); responses go back to where requests came from.
//! Not covered yet: PRACK/100rel, UPDATE, forked early dialogs beyond the
//! first, strict routing.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::dialog::Dialog;
use crate::digest::{answer as digest_answer, Challenge};
use crate::header::HeaderName;
use crate::message::Message;
use crate::method::Method;
use crate::transaction::{Event, TimerConfig, TransactionLayer, TxId};
use crate::via::MAGIC_COOKIE;

/// Methods this UA accepts.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, INFO, UPDATE, PRACK";

/// Handle of a request sent with [`UserAgent::options`], [`UserAgent::message`] etc.
pub type ReqId = u64;
/// Handle of a call.
pub type CallId = u64;

/// User agent configuration.
#[derive(Debug, Clone)]
pub struct UaConfig<P> {
    /// User part of our AOR.
    pub user: String,
    /// Domain of our AOR (also the registrar URI host).
    pub domain: String,
    /// Optional display name.
    pub display: Option<String>,
    /// Password for digest challenges (none: 401/407 end the request).
    pub password: Option<String>,
    /// `host:port` we are reachable at (Via sent-by and Contact).
    pub local: String,
    /// Via transport token (`UDP`, `TCP`, `TLS`).
    pub transport: String,
    /// Whether that transport is reliable.
    pub reliable: bool,
    /// Next hop for every request we send.
    pub outbound: P,
    /// T1/T2/T4.
    pub timers: TimerConfig,
    /// RNG seed for tags, branches and Call-IDs (fixed in tests).
    pub seed: u64,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UaEvent {
    /// A response to a non-INVITE request we sent (after any auth retry).
    Response {
        /// Request handle.
        req: ReqId,
        /// Status code.
        code: u16,
        /// The response.
        msg: Message<'static>,
    },
    /// A request we sent got no answer or could not be sent.
    RequestFailed {
        /// Request handle.
        req: ReqId,
        /// Why.
        reason: String,
    },
    /// Registration state changed.
    Registration {
        /// True while a binding is held.
        registered: bool,
        /// Last status code.
        code: u16,
        /// Granted expiry (0 when unregistered).
        expires: u32,
    },
    /// A new incoming INVITE.
    IncomingCall {
        /// Call handle.
        call: CallId,
        /// From header value.
        from: String,
        /// Body (SDP offer), possibly empty.
        body: Vec<u8>,
    },
    /// 1xx other than 180/183 on our INVITE.
    CallProceeding {
        /// Call handle.
        call: CallId,
    },
    /// 180/183 on our INVITE.
    CallRinging {
        /// Call handle.
        call: CallId,
        /// 180 or 183.
        code: u16,
        /// Early media SDP, if any.
        body: Vec<u8>,
    },
    /// 2xx on our INVITE (the ACK has been sent).
    CallAnswered {
        /// Call handle.
        call: CallId,
        /// SDP answer.
        body: Vec<u8>,
    },
    /// The ACK for our 2xx arrived.
    CallAck {
        /// Call handle.
        call: CallId,
    },
    /// The call ended: BYE (code 200), rejection/cancel (its final code) or
    /// timeout (408).
    CallClosed {
        /// Call handle.
        call: CallId,
        /// Final status.
        code: u16,
    },
    /// MESSAGE received (RFC 3428); already answered 200.
    MessageReceived {
        /// From header value.
        from: String,
        /// Content-Type.
        content_type: Option<String>,
        /// Body.
        body: Vec<u8>,
    },
    /// INFO (or another in-dialog request) received on a call; answered 200.
    InDialogRequest {
        /// Call handle.
        call: CallId,
        /// Method.
        method: String,
        /// Body.
        body: Vec<u8>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Plain(ReqId),
    Register,
    Invite(CallId),
    InDialog(CallId, ReqId),
    ReInvite(CallId, ReqId),
    ReInviteDone(CallId),
    Cancel,
}

#[derive(Debug)]
struct Pending {
    owner: Owner,
    request: Message<'static>,
    auth_tries: u8,
}

#[derive(Debug, PartialEq, Eq)]
enum CallState {
    /// We sent INVITE.
    Calling,
    /// Incoming INVITE waiting for `answer`.
    Incoming,
    /// We sent 2xx, waiting for ACK.
    Answered,
    /// Established.
    Confirmed,
}

#[derive(Debug)]
struct Call<P> {
    state: CallState,
    dialog: Option<Dialog>,
    /// UAC: INVITE client transaction; UAS: INVITE server transaction.
    invite_tx: Option<TxId>,
    invite: Option<Message<'static>>,
    local_tag: String,
    ack: Option<Vec<u8>>,
    ok: Option<Message<'static>>,
    ok_interval: Duration,
    ok_deadline: Option<Instant>,
    ok_giveup: Option<Instant>,
    cancel_requested: bool,
    provisional_seen: bool,
    last_rseq: Option<u32>,
    rel: Option<RelProv>,
    next_rseq: u32,
    /// Where this call's in-dialog requests and ACKs go when not through `outbound`
    /// (a direct call answered without a proxy: the peer's Contact).
    next_hop: Option<P>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Refresh,
    OkRetransmit(CallId),
    RelRetransmit(CallId),
}

/// A reliable provisional response awaiting PRACK (RFC 3262 §3).
#[derive(Debug)]
struct RelProv {
    msg: Message<'static>,
    rseq: u32,
    interval: Duration,
    giveup: Instant,
}

/// The user agent core.
#[derive(Debug)]
pub struct UserAgent<P> {
    cfg: UaConfig<P>,
    layer: TransactionLayer<P>,
    rng: StdRng,
    next_handle: u64,
    pending: HashMap<TxId, Pending>,
    calls: HashMap<CallId, Call<P>>,
    events: VecDeque<UaEvent>,
    out: VecDeque<(P, Vec<u8>)>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    timer_kinds: HashMap<u64, (Instant, Timer)>,
    reg_call_id: String,
    reg_tag: String,
    reg_cseq: u32,
    reg_expires: u32,
    registered: bool,
    /// Contact URI to advertise instead of the one derived from `local`
    /// (operators registering a third-party contact).
    contact_override: Option<String>,
    /// The application answers re-INVITE offers itself ([`UserAgent::answer_reinvite`]).
    manual_reinvite: bool,
    /// RFC 5626 instance URN and reg-id, when registering as an outbound client.
    outbound_instance: Option<(String, u32)>,
    /// Re-INVITEs waiting for the application's answer: server transaction and request.
    pending_reinvites: HashMap<CallId, (TxId, Message<'static>)>,
}

fn body_of(m: &Message<'_>) -> Vec<u8> {
    m.body.to_vec()
}

impl<P: Clone> UserAgent<P> {
    /// A user agent.
    pub fn new(cfg: UaConfig<P>) -> UserAgent<P> {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let reg_call_id = format!("{:016x}@{}", rng.gen::<u64>(), cfg.domain);
        let reg_tag = format!("{:08x}", rng.gen::<u32>());
        UserAgent {
            layer: TransactionLayer::new(cfg.timers, true),
            cfg,
            rng,
            next_handle: 1,
            pending: HashMap::new(),
            calls: HashMap::new(),
            events: VecDeque::new(),
            out: VecDeque::new(),
            timers: BinaryHeap::new(),
            timer_kinds: HashMap::new(),
            reg_call_id,
            reg_tag,
            reg_cseq: 0,
            reg_expires: 0,
            registered: false,
            contact_override: None,
            manual_reinvite: false,
            outbound_instance: None,
            pending_reinvites: HashMap::new(),
        }
    }

    /// Advertise `uri` as our Contact (in REGISTER and dialog-creating
    /// requests) instead of `sip:user@local`.
    pub fn set_contact(&mut self, uri: impl Into<String>) {
        self.contact_override = Some(uri.into());
    }

    /// Send this call's in-dialog requests and ACKs to `hop` instead of the configured
    /// outbound proxy: for calls made or answered directly, without a proxy, where the
    /// peer's Contact (its remote target) is the next hop (RFC 3261 §8.1.2).
    pub fn set_next_hop(&mut self, call: CallId, hop: P) {
        if let Some(c) = self.calls.get_mut(&call) {
            c.next_hop = Some(hop);
        }
    }

    /// The call's remote target: the dialog's, or the INVITE's Contact URI before the
    /// dialog exists.
    pub fn remote_target(&self, call: CallId) -> Option<String> {
        let c = self.calls.get(&call)?;
        if let Some(d) = &c.dialog {
            return Some(d.remote_target.clone());
        }
        let inv = c.invite.as_ref()?;
        let contact = inv.header(HeaderName::Contact)?;
        let uri = match (contact.find('<'), contact.find('>')) {
            (Some(a), Some(b)) if a < b => contact.get(a + 1..b)?,
            _ => contact.split(';').next()?,
        };
        Some(uri.trim().to_owned())
    }

    fn hop(&self, call: Option<CallId>) -> P {
        call.and_then(|c| self.calls.get(&c))
            .and_then(|c| c.next_hop.clone())
            .unwrap_or_else(|| self.cfg.outbound.clone())
    }

    /// Let the application answer re-INVITEs that carry an offer (hold, resume, new
    /// keys): they are reported as [`UaEvent::InDialogRequest`] with method `INVITE` and
    /// wait for [`UserAgent::answer_reinvite`]. Off by default: the UA then answers 200
    /// with the session's previous answer.
    pub fn answer_reinvites_manually(&mut self, on: bool) {
        self.manual_reinvite = on;
    }

    /// Answers a pending re-INVITE (see [`UserAgent::answer_reinvites_manually`]) with
    /// `code` and, for 2xx, our SDP answer, which becomes the session's current answer.
    pub fn answer_reinvite(&mut self, now: Instant, call: CallId, code: u16, sdp: Option<Vec<u8>>) {
        let Some((tx, req)) = self.pending_reinvites.remove(&call) else {
            return;
        };
        let contact = self.contact();
        let mut resp = Message::response_to(&req, code, None, None);
        resp.remove(HeaderName::ContentLength);
        if (200..300).contains(&code) {
            resp.push(HeaderName::Contact, contact);
        }
        resp.push(HeaderName::ContentLength, "0");
        if let (true, Some(b)) = ((200..300).contains(&code), sdp) {
            resp.set_body(Some("application/sdp"), b.clone());
            if let Some(ok) = self.calls.get_mut(&call).and_then(|c| c.ok.as_mut()) {
                ok.set_body(Some("application/sdp"), b);
            }
        }
        let ev = self.layer.send_response(now, tx, &resp);
        self.collect(now, ev);
    }

    /// Next event for the application.
    pub fn poll_event(&mut self) -> Option<UaEvent> {
        self.events.pop_front()
    }

    /// Next datagram/segment to send.
    pub fn poll_transmit(&mut self) -> Option<(P, Vec<u8>)> {
        self.out.pop_front()
    }

    /// When [`UserAgent::on_timer`] must run next.
    pub fn next_timeout(&self) -> Option<Instant> {
        let own = self.timers.peek().map(|Reverse((t, _))| *t);
        match (self.layer.next_deadline(), own) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn handle_id(&mut self) -> u64 {
        let h = self.next_handle;
        self.next_handle += 1;
        h
    }

    fn token(&mut self) -> String {
        format!("{:016x}", self.rng.gen::<u64>())
    }

    fn aor(&self) -> String {
        format!("sip:{}@{}", self.cfg.user, self.cfg.domain)
    }

    fn our_from(&self, tag: &str) -> String {
        match &self.cfg.display {
            Some(d) => format!("{} <{}>;tag={tag}", crate::syntax::quote(d), self.aor()),
            None => format!("<{}>;tag={tag}", self.aor()),
        }
    }

    fn contact(&self) -> String {
        if let Some(c) = &self.contact_override {
            return format!("<{c}>");
        }
        let tp = if self.cfg.transport.eq_ignore_ascii_case("UDP") {
            String::new()
        } else {
            format!(";transport={}", self.cfg.transport.to_ascii_lowercase())
        };
        // RFC 5626 §5.4: `ob` asks the proxy to route in-dialog requests over this flow.
        let ob = if self.outbound_instance.is_some() {
            ";ob"
        } else {
            ""
        };
        format!("<sip:{}@{}{tp}{ob}>", self.cfg.user, self.cfg.local)
    }

    /// Register as an RFC 5626 outbound client: the REGISTER's Contact carries
    /// `+sip.instance` (a stable URN naming this device) and `reg-id`, the request says
    /// `Supported: outbound`, and Contacts carry `;ob`. The registrar then reaches us over
    /// the flow the registration came in on, across NATs; keep it alive (STUN on UDP).
    pub fn set_outbound(&mut self, instance_urn: &str, reg_id: u32) {
        self.outbound_instance = Some((instance_urn.to_owned(), reg_id));
    }

    fn add_via(&mut self, m: &mut Message<'static>) {
        let branch = format!("{MAGIC_COOKIE}{}", self.token());
        let via = format!(
            "SIP/2.0/{} {};branch={branch};rport",
            self.cfg.transport, self.cfg.local
        );
        m.headers
            .insert(0, crate::header::Header::new(HeaderName::Via, via));
    }

    fn set_timer(&mut self, at: Instant, kind: Timer) {
        let id = self.handle_id();
        self.timer_kinds.retain(|_, (_, k)| *k != kind);
        self.timer_kinds.insert(id, (at, kind));
        self.timers.push(Reverse((at, id)));
    }

    fn collect(&mut self, now: Instant, events: Vec<Event<'_, P>>) {
        let mut queue: VecDeque<Event<'_, P>> = events.into();
        let mut guard = 0;
        while let Some(ev) = queue.pop_front() {
            guard += 1;
            if guard > 10_000 {
                break;
            }
            let more = match ev {
                Event::Send { to, bytes, .. } => {
                    self.out.push_back((to, bytes));
                    Vec::new()
                }
                // The UA keeps what it is handed (dialogs, events for its owner).
                Event::Request { tx, from, msg } => {
                    self.on_request(now, tx, from, msg.into_owned())
                }
                Event::Response { tx, msg } => self.on_response(now, tx, msg.into_owned()),
                Event::Stray { msg, .. } => self.on_stray(now, msg.into_owned()),
                Event::Timeout { tx } | Event::TransportError { tx } => self.on_failure(tx),
                Event::Terminated { tx } => {
                    self.pending.remove(&tx);
                    Vec::new()
                }
            };
            queue.extend(more);
        }
    }

    fn send(
        &mut self,
        now: Instant,
        mut req: Message<'static>,
        owner: Owner,
        auth_tries: u8,
    ) -> TxId {
        if req.header(HeaderName::Via).is_none() {
            self.add_via(&mut req);
        }
        if req.header(HeaderName::ContentLength).is_none() {
            req.push(HeaderName::ContentLength, req.body.len().to_string());
        }
        let call = match owner {
            Owner::InDialog(c, _) | Owner::ReInvite(c, _) => Some(c),
            _ => None,
        };
        let hop = self.hop(call);
        let (tx, ev) = self
            .layer
            .send_request(now, hop, self.cfg.reliable, req.clone());
        self.pending.insert(
            tx,
            Pending {
                owner,
                request: req,
                auth_tries,
            },
        );
        self.collect(now, ev);
        tx
    }

    fn new_request(
        &mut self,
        method: Method<'static>,
        uri: &str,
        tag: &str,
        call_id: &str,
        seq: u32,
    ) -> Message<'static> {
        let mut m = Message::request(method.clone(), Cow::Owned(uri.to_owned()));
        m.push(HeaderName::MaxForwards, "70");
        m.push(HeaderName::From, self.our_from(tag));
        m.push(HeaderName::To, format!("<{uri}>"));
        m.push(HeaderName::CallId, call_id.to_owned());
        m.push(HeaderName::CSeq, format!("{seq} {}", method.as_str()));
        m
    }

    /// REGISTER our contact for `expires` seconds (0 unregisters). The
    /// binding is refreshed automatically at half the granted time.
    pub fn register(&mut self, now: Instant, expires: u32) {
        self.reg_cseq += 1;
        self.reg_expires = expires;
        let registrar = format!("sip:{}", self.cfg.domain);
        let (tag, cid, seq) = (
            self.reg_tag.clone(),
            self.reg_call_id.clone(),
            self.reg_cseq,
        );
        let mut m = self.new_request(Method::Register, &registrar, &tag, &cid, seq);
        m.set(HeaderName::To, format!("<{}>", self.aor()));
        match &self.outbound_instance {
            Some((urn, reg_id)) => {
                let c = format!(
                    "{};+sip.instance=\"<{urn}>\";reg-id={reg_id}",
                    self.contact()
                );
                m.push(HeaderName::Contact, c);
                m.push(HeaderName::Supported, "outbound, path");
            }
            None => m.push(HeaderName::Contact, self.contact()),
        }
        m.push(HeaderName::Expires, expires.to_string());
        self.send(now, m, Owner::Register, 0);
    }

    fn out_of_dialog(
        &mut self,
        now: Instant,
        method: Method<'static>,
        uri: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> ReqId {
        let id = self.handle_id();
        let tag = self.token();
        let cid = format!("{}@{}", self.token(), self.cfg.domain);
        let mut m = self.new_request(method, uri, &tag, &cid, 1);
        if let Some((ct, b)) = body {
            m.set_body(Some(ct), b);
        }
        self.send(now, m, Owner::Plain(id), 0);
        id
    }

    /// Send OPTIONS to `uri`.
    pub fn options(&mut self, now: Instant, uri: &str) -> ReqId {
        self.out_of_dialog(now, Method::Options, uri, None)
    }

    /// Send a MESSAGE (RFC 3428) to `uri`.
    pub fn message(&mut self, now: Instant, uri: &str, content_type: &str, body: Vec<u8>) -> ReqId {
        self.out_of_dialog(now, Method::Message, uri, Some((content_type, body)))
    }

    /// Start a call to `uri` with an optional SDP offer.
    pub fn invite(&mut self, now: Instant, uri: &str, sdp: Option<Vec<u8>>) -> CallId {
        let call = self.handle_id();
        let tag = self.token();
        let cid = format!("{}@{}", self.token(), self.cfg.domain);
        let mut m = self.new_request(Method::Invite, uri, &tag, &cid, 1);
        m.push(HeaderName::Contact, self.contact());
        m.push(HeaderName::Allow, ALLOW);
        m.push(HeaderName::Supported, "100rel");
        if let Some(b) = sdp {
            m.set_body(Some("application/sdp"), b);
        }
        let tx = self.send(now, m.clone(), Owner::Invite(call), 0);
        let inv = self
            .pending
            .get(&tx)
            .map(|p| p.request.clone())
            .unwrap_or(m);
        self.calls.insert(
            call,
            Call {
                state: CallState::Calling,
                dialog: None,
                invite_tx: Some(tx),
                invite: Some(inv),
                local_tag: tag,
                ack: None,
                ok: None,
                ok_interval: self.cfg.timers.t1,
                ok_deadline: None,
                ok_giveup: None,
                cancel_requested: false,
                provisional_seen: false,
                last_rseq: None,
                rel: None,
                next_rseq: 1,
                next_hop: None,
            },
        );
        call
    }

    /// Cancel an outgoing call that is not answered yet (§9.1: sent once a
    /// provisional response arrived).
    pub fn cancel(&mut self, now: Instant, call: CallId) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.state != CallState::Calling {
            return;
        }
        c.cancel_requested = true;
        if c.provisional_seen {
            self.send_cancel(now, call);
        }
    }

    fn send_cancel(&mut self, now: Instant, call: CallId) {
        let Some(inv) = self.calls.get(&call).and_then(|c| c.invite.clone()) else {
            return;
        };
        let mut cancel = Message::request(
            Method::Cancel,
            Cow::Owned(inv.request_uri_str().unwrap_or("").to_owned()),
        );
        for h in &inv.headers {
            match h.kind {
                HeaderName::Via => {
                    cancel.headers.push(h.clone());
                }
                HeaderName::Route
                | HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::MaxForwards => {
                    cancel.headers.push(h.clone());
                }
                _ => {}
            }
        }
        let seq = inv.cseq().map(|c| c.seq).unwrap_or(1);
        cancel.push(HeaderName::CSeq, format!("{seq} CANCEL"));
        self.send(now, cancel, Owner::Cancel, 0);
    }

    /// Answer an incoming call: 1xx (e.g. 180) or 2xx with an optional SDP
    /// answer. A 2xx is retransmitted until the ACK arrives.
    pub fn answer(&mut self, now: Instant, call: CallId, code: u16, sdp: Option<Vec<u8>>) {
        // A caller that *requires* 100rel gets reliable provisionals.
        let required = self.invite_lists(call, HeaderName::Require, "100rel");
        self.answer_inner(now, call, code, sdp, required);
    }

    /// Like [`UserAgent::answer`], but a 1xx is sent reliably (RFC 3262:
    /// `Require: 100rel`, `RSeq`, retransmitted until PRACKed) whenever the
    /// caller supports it.
    pub fn answer_reliable(&mut self, now: Instant, call: CallId, code: u16, sdp: Option<Vec<u8>>) {
        let ok = self.invite_lists(call, HeaderName::Require, "100rel")
            || self.invite_lists(call, HeaderName::Supported, "100rel");
        self.answer_inner(now, call, code, sdp, ok);
    }

    fn invite_lists(&self, call: CallId, kind: HeaderName, tag: &str) -> bool {
        self.calls
            .get(&call)
            .and_then(|c| c.invite.as_ref())
            .is_some_and(|inv| {
                inv.list(kind)
                    .is_ok_and(|l| l.iter().any(|t| t.eq_ignore_ascii_case(tag)))
            })
    }

    fn answer_inner(
        &mut self,
        now: Instant,
        call: CallId,
        code: u16,
        sdp: Option<Vec<u8>>,
        reliable: bool,
    ) {
        let contact = self.contact();
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.state != CallState::Incoming {
            return;
        }
        let (Some(tx), Some(inv)) = (c.invite_tx, c.invite.clone()) else {
            return;
        };
        let mut resp = Message::response_to(&inv, code, None, Some(&c.local_tag));
        resp.remove(HeaderName::ContentLength);
        resp.push(HeaderName::Contact, contact);
        resp.push(HeaderName::ContentLength, "0");
        if let Some(b) = sdp {
            resp.set_body(Some("application/sdp"), b);
        }
        let timers = self.cfg.timers;
        let mut first_retransmit = None;
        let reliable = reliable && (101..200).contains(&code);
        if reliable {
            if c.rel.is_some() {
                // §3: no new reliable provisional until the last one is PRACKed.
                return;
            }
            if c.dialog.is_none() {
                c.dialog = Dialog::from_uas(&inv, &c.local_tag, false).ok();
            }
            let rseq = c.next_rseq;
            c.next_rseq += 1;
            let cl = resp.header(HeaderName::ContentLength).map(str::to_owned);
            resp.remove(HeaderName::ContentLength);
            resp.push(HeaderName::Require, "100rel");
            resp.push(HeaderName::RSeq, rseq.to_string());
            resp.push(
                HeaderName::ContentLength,
                cl.unwrap_or_else(|| "0".to_owned()),
            );
            c.rel = Some(RelProv {
                msg: resp.clone(),
                rseq,
                interval: timers.t1,
                giveup: now + timers.t1x64(),
            });
        }
        if code >= 200 {
            c.rel = None;
        }
        let rel_first = reliable.then(|| now + timers.t1);
        if (200..300).contains(&code) {
            c.state = CallState::Answered;
            c.dialog = Dialog::from_uas(&inv, &c.local_tag, true).ok();
            c.ok = Some(resp.clone());
            c.ok_interval = timers.t1;
            c.ok_giveup = Some(now + timers.t1x64());
            let first = now + timers.t1;
            c.ok_deadline = Some(first);
            first_retransmit = Some(first);
        }
        if let Some(first) = first_retransmit {
            self.set_timer(first, Timer::OkRetransmit(call));
        }
        if let Some(first) = rel_first {
            self.set_timer(first, Timer::RelRetransmit(call));
        }
        let ev = self.layer.send_response(now, tx, &resp);
        self.collect(now, ev);
    }

    /// Reject an incoming call with a final non-2xx code.
    pub fn reject(&mut self, now: Instant, call: CallId, code: u16) {
        let Some(c) = self.calls.remove(&call) else {
            return;
        };
        if let (Some(tx), Some(inv)) = (c.invite_tx, c.invite) {
            let resp = Message::response_to(&inv, code, None, Some(&c.local_tag));
            let ev = self.layer.send_response(now, tx, &resp);
            self.collect(now, ev);
        }
        self.events.push_back(UaEvent::CallClosed { call, code });
    }

    /// Hang up an established call (BYE).
    pub fn bye(&mut self, now: Instant, call: CallId) {
        let Some(mut c) = self.calls.remove(&call) else {
            return;
        };
        let Some(d) = c.dialog.as_mut() else { return };
        let bye = d.request(Method::Bye, None);
        let id = self.handle_id();
        self.send(now, bye, Owner::InDialog(call, id), 0);
        self.events
            .push_back(UaEvent::CallClosed { call, code: 200 });
    }

    /// Send INFO on an established call.
    pub fn info(
        &mut self,
        now: Instant,
        call: CallId,
        content_type: &str,
        body: Vec<u8>,
    ) -> Option<ReqId> {
        let d = self.calls.get_mut(&call)?.dialog.as_mut()?;
        let mut info = d.request(Method::Info, None);
        info.set_body(Some(content_type), body);
        let id = self.handle_id();
        self.send(now, info, Owner::InDialog(call, id), 0);
        Some(id)
    }

    /// Send UPDATE (RFC 3311) with a new SDP offer, in an early or
    /// confirmed dialog.
    pub fn update(&mut self, now: Instant, call: CallId, sdp: Vec<u8>) -> Option<ReqId> {
        let contact = self.contact();
        let d = self.calls.get_mut(&call)?.dialog.as_mut()?;
        let mut up = d.request(Method::Update, None);
        up.push(HeaderName::Contact, contact);
        up.set_body(Some("application/sdp"), sdp);
        let id = self.handle_id();
        self.send(now, up, Owner::InDialog(call, id), 0);
        Some(id)
    }

    /// Send a re-INVITE with a new SDP offer on an established call. The
    /// answer comes as [`UaEvent::Response`]; the ACK is sent automatically.
    pub fn reinvite(&mut self, now: Instant, call: CallId, sdp: Vec<u8>) -> Option<ReqId> {
        let contact = self.contact();
        let c = self.calls.get_mut(&call)?;
        if c.state != CallState::Confirmed {
            return None;
        }
        let d = c.dialog.as_mut()?;
        let mut inv = d.request(Method::Invite, None);
        inv.push(HeaderName::Contact, contact);
        inv.set_body(Some("application/sdp"), sdp);
        let id = self.handle_id();
        self.send(now, inv, Owner::ReInvite(call, id), 0);
        Some(id)
    }

    /// RFC 3262: acknowledge a reliable provisional response with PRACK.
    fn send_prack(&mut self, now: Instant, call: CallId, resp: &Message<'_>) {
        if !resp
            .list(HeaderName::Require)
            .is_ok_and(|l| l.iter().any(|t| t.eq_ignore_ascii_case("100rel")))
        {
            return;
        }
        let Some(rseq) = resp.u32_header(HeaderName::RSeq).ok().flatten() else {
            return;
        };
        let Ok(cseq) = resp.cseq() else { return };
        let invite_seq = cseq.seq;
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        // Retransmissions of the same reliable 1xx are covered by the PRACK
        // transaction already running (RFC 3262 §4: one PRACK per RSeq).
        if c.last_rseq.is_some_and(|r| rseq <= r) {
            return;
        }
        c.last_rseq = Some(rseq);
        let Some(d) = c.dialog.as_mut() else { return };
        let mut prack = d.request(Method::Prack, None);
        prack.push(HeaderName::RAck, format!("{rseq} {invite_seq} INVITE"));
        let id = self.handle_id();
        self.send(now, prack, Owner::InDialog(call, id), 0);
    }

    /// Feed a received message from `from`.
    pub fn handle(&mut self, now: Instant, from: P, bytes: &[u8]) {
        let Ok(msg) = Message::parse(bytes) else {
            return;
        };
        let ev = self.layer.on_message(now, from, self.cfg.reliable, msg);
        self.collect(now, ev);
    }

    /// Run due timers.
    pub fn on_timer(&mut self, now: Instant) {
        let ev = self.layer.on_timer(now);
        self.collect(now, ev);
        while let Some(Reverse((t, id))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some((at, kind)) = self.timer_kinds.get(&id).copied() else {
                continue;
            };
            if at != t {
                continue;
            }
            self.timer_kinds.remove(&id);
            match kind {
                Timer::Refresh => {
                    let e = self.reg_expires;
                    if e > 0 {
                        self.register(now, e);
                    }
                }
                Timer::OkRetransmit(call) => self.retransmit_ok(now, call),
                Timer::RelRetransmit(call) => self.retransmit_rel(now, call),
            }
        }
    }

    /// RFC 3262 §3: resend the reliable provisional (T1, doubling) until
    /// PRACKed; after 64*T1 give up and reject the INVITE with 500.
    fn retransmit_rel(&mut self, now: Instant, call: CallId) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(rel) = c.rel.as_mut() else { return };
        if now >= rel.giveup {
            c.rel = None;
            self.reject(now, call, 500);
            return;
        }
        rel.interval = rel.interval.saturating_mul(2);
        let next = (now + rel.interval).min(rel.giveup);
        let msg = rel.msg.clone();
        let Some(tx) = c.invite_tx else { return };
        let ev = self.layer.send_response(now, tx, &msg);
        self.collect(now, ev);
        self.set_timer(next, Timer::RelRetransmit(call));
    }

    fn retransmit_ok(&mut self, now: Instant, call: CallId) {
        let t2 = self.cfg.timers.t2;
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.state != CallState::Answered {
            return;
        }
        if c.ok_giveup.is_some_and(|g| now >= g) {
            // §13.3.1.4: no ACK within 64*T1 - end the dialog with BYE.
            self.bye(now, call);
            return;
        }
        let (Some(tx), Some(ok)) = (c.invite_tx, c.ok.clone()) else {
            return;
        };
        c.ok_interval = c.ok_interval.saturating_mul(2).min(t2);
        // The last wake-up is the give-up instant itself (64*T1).
        let next = match c.ok_giveup {
            Some(g) => (now + c.ok_interval).min(g),
            None => now + c.ok_interval,
        };
        c.ok_deadline = Some(next);
        let ev = self.layer.send_response(now, tx, &ok);
        self.collect(now, ev);
        self.set_timer(next, Timer::OkRetransmit(call));
    }

    fn find_call(&self, msg: &Message<'_>) -> Option<CallId> {
        let cid = msg.call_id().ok()?;
        let to_tag = msg.to_tag().map(str::to_owned);
        let from_tag = msg.from_tag().map(str::to_owned);
        self.calls
            .iter()
            .find(|(_, c)| {
                c.dialog.as_ref().is_some_and(|d| {
                    d.id.call_id == cid
                        && (to_tag.as_deref() == Some(d.id.local_tag.as_str())
                            || from_tag.as_deref() == Some(d.id.local_tag.as_str()))
                })
            })
            .map(|(id, _)| *id)
    }

    fn respond(
        &mut self,
        now: Instant,
        tx: TxId,
        req: &Message<'_>,
        code: u16,
    ) -> Vec<Event<'static, P>> {
        let tag = self.token();
        let resp = Message::response_to(req, code, None, Some(&tag));
        self.layer.send_response(now, tx, &resp)
    }

    fn on_request(
        &mut self,
        now: Instant,
        tx: TxId,
        _from: P,
        req: Message<'static>,
    ) -> Vec<Event<'static, P>> {
        let method = req.method().cloned().unwrap_or(Method::Options);
        let in_dialog = req.to_tag().is_some();
        match method {
            Method::Invite if !in_dialog => {
                let call = self.handle_id();
                let tag = self.token();
                let from = req.header(HeaderName::From).unwrap_or("").to_owned();
                let body = body_of(&req);
                self.calls.insert(
                    call,
                    Call {
                        state: CallState::Incoming,
                        dialog: None,
                        invite_tx: Some(tx),
                        invite: Some(req),
                        local_tag: tag,
                        ack: None,
                        ok: None,
                        ok_interval: self.cfg.timers.t1,
                        ok_deadline: None,
                        ok_giveup: None,
                        cancel_requested: false,
                        provisional_seen: false,
                        last_rseq: None,
                        rel: None,
                        next_rseq: 1,
                        next_hop: None,
                    },
                );
                self.events
                    .push_back(UaEvent::IncomingCall { call, from, body });
                Vec::new()
            }
            Method::Cancel => {
                let target = self.layer.find_cancel_target(&req);
                let call = target.and_then(|t| {
                    self.calls
                        .iter()
                        .find(|(_, c)| c.invite_tx == Some(t) && c.state == CallState::Incoming)
                        .map(|(id, _)| *id)
                });
                let Some(call) = call else {
                    return self.respond(now, tx, &req, 481);
                };
                let mut ev = self.respond(now, tx, &req, 200);
                if let Some(c) = self.calls.remove(&call) {
                    if let (Some(itx), Some(inv)) = (c.invite_tx, c.invite) {
                        let resp = Message::response_to(&inv, 487, None, Some(&c.local_tag));
                        ev.extend(self.layer.send_response(now, itx, &resp));
                    }
                }
                self.events
                    .push_back(UaEvent::CallClosed { call, code: 487 });
                ev
            }
            Method::Message if !in_dialog => {
                let ev = self.respond(now, tx, &req, 200);
                self.events.push_back(UaEvent::MessageReceived {
                    from: req.header(HeaderName::From).unwrap_or("").to_owned(),
                    content_type: req.header(HeaderName::ContentType).map(str::to_owned),
                    body: body_of(&req),
                });
                ev
            }
            Method::Options if !in_dialog => {
                let tag = self.token();
                let mut resp = Message::response_to(&req, 200, None, Some(&tag));
                resp.remove(HeaderName::ContentLength);
                resp.push(HeaderName::Allow, ALLOW);
                resp.push(HeaderName::ContentLength, "0");
                self.layer.send_response(now, tx, &resp)
            }
            _ if in_dialog => {
                let Some(call) = self.find_call(&req) else {
                    return self.respond(now, tx, &req, 481);
                };
                let ok = self
                    .calls
                    .get_mut(&call)
                    .and_then(|c| c.dialog.as_mut())
                    .is_some_and(|d| d.on_request(&req));
                if !ok {
                    return self.respond(now, tx, &req, 500);
                }
                match method {
                    Method::Prack => {
                        let rack = req
                            .header(HeaderName::RAck)
                            .map(str::to_owned)
                            .unwrap_or_default();
                        let mut parts = rack.split_whitespace();
                        let rseq = parts.next().and_then(|v| v.parse::<u32>().ok());
                        let cseq = parts.next().and_then(|v| v.parse::<u32>().ok());
                        let Some(c) = self.calls.get_mut(&call) else {
                            return Vec::new();
                        };
                        let invite_seq =
                            c.invite.as_ref().and_then(|i| i.cseq().ok().map(|s| s.seq));
                        let matches = c.rel.as_ref().is_some_and(|r| Some(r.rseq) == rseq)
                            && cseq == invite_seq;
                        if matches {
                            c.rel = None;
                            self.respond(now, tx, &req, 200)
                        } else {
                            self.respond(now, tx, &req, 481)
                        }
                    }
                    Method::Bye => {
                        self.calls.remove(&call);
                        self.events
                            .push_back(UaEvent::CallClosed { call, code: 200 });
                        self.respond(now, tx, &req, 200)
                    }
                    Method::Invite if self.manual_reinvite && !req.body.is_empty() => {
                        self.events.push_back(UaEvent::InDialogRequest {
                            call,
                            method: "INVITE".into(),
                            body: body_of(&req),
                        });
                        self.pending_reinvites.insert(call, (tx, req));
                        Vec::new()
                    }
                    Method::Invite => {
                        // Re-INVITE: accept, echoing our previous answer.
                        let contact = self.contact();
                        let Some(c) = self.calls.get(&call) else {
                            return Vec::new();
                        };
                        let mut resp = Message::response_to(&req, 200, None, None);
                        resp.remove(HeaderName::ContentLength);
                        resp.push(HeaderName::Contact, contact);
                        resp.push(HeaderName::ContentLength, "0");
                        if let Some(ok) = &c.ok {
                            if !ok.body.is_empty() {
                                resp.set_body(Some("application/sdp"), ok.body.to_vec());
                            }
                        }
                        self.events.push_back(UaEvent::InDialogRequest {
                            call,
                            method: "INVITE".into(),
                            body: body_of(&req),
                        });
                        self.layer.send_response(now, tx, &resp)
                    }
                    other => {
                        self.events.push_back(UaEvent::InDialogRequest {
                            call,
                            method: other.as_str().to_owned(),
                            body: body_of(&req),
                        });
                        self.respond(now, tx, &req, 200)
                    }
                }
            }
            _ => self.respond(now, tx, &req, 405),
        }
    }

    fn retry_with_auth(&mut self, now: Instant, tx: TxId, resp: &Message<'_>) -> bool {
        let Some(p) = self.pending.get(&tx) else {
            return false;
        };
        let Some(password) = self.cfg.password.clone() else {
            return false;
        };
        if p.auth_tries >= 2 {
            return false;
        }
        let (chal_h, cred_h) = if resp.code() == Some(407) {
            (
                HeaderName::ProxyAuthenticate,
                HeaderName::ProxyAuthorization,
            )
        } else {
            (HeaderName::WwwAuthenticate, HeaderName::Authorization)
        };
        let Some(ch) = Challenge::pick_best(resp.header_values(chal_h)) else {
            return false;
        };
        let mut req = p.request.clone();
        let owner = p.owner;
        let tries = p.auth_tries + 1;
        let method = req
            .method()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default();
        let uri = req.request_uri_str().unwrap_or("").to_owned();
        let cnonce = self.token();
        let Ok(creds) = digest_answer(&ch, &method, &uri, &self.cfg.user, &password, &cnonce, 1)
        else {
            return false;
        };
        // New transaction: new branch, next CSeq, credentials added (§22.2).
        req.remove(HeaderName::Via);
        req.remove(cred_h);
        let seq = req.cseq().map(|c| c.seq + 1).unwrap_or(1);
        if owner == Owner::Register {
            self.reg_cseq = seq;
        }
        req.set(HeaderName::CSeq, format!("{seq} {method}"));
        req.remove(HeaderName::ContentLength);
        req.push(cred_h, creds.to_header_value());
        let new_tx = self.send(now, req, owner, tries);
        if let Owner::Invite(call) = owner {
            let inv = self.pending.get(&new_tx).map(|p| p.request.clone());
            if let Some(c) = self.calls.get_mut(&call) {
                c.invite_tx = Some(new_tx);
                c.invite = inv;
            }
        }
        true
    }

    fn on_response(
        &mut self,
        now: Instant,
        tx: TxId,
        resp: Message<'static>,
    ) -> Vec<Event<'static, P>> {
        let Some(code) = resp.code() else {
            return Vec::new();
        };
        let Some(owner) = self.pending.get(&tx).map(|p| p.owner) else {
            return Vec::new();
        };
        if matches!(code, 401 | 407)
            && !matches!(owner, Owner::Cancel)
            && self.retry_with_auth(now, tx, &resp)
        {
            return Vec::new();
        }
        match owner {
            Owner::Plain(req) | Owner::InDialog(_, req) => {
                if code >= 200 {
                    self.events.push_back(UaEvent::Response {
                        req,
                        code,
                        msg: resp,
                    });
                }
            }
            Owner::ReInvite(call, req) => {
                if code < 200 {
                    return Vec::new();
                }
                if code < 300 {
                    self.ack_reinvite(call, &resp);
                }
                // Later 2xx retransmissions are only ACKed, not reported again.
                if let Some(p) = self.pending.get_mut(&tx) {
                    p.owner = Owner::ReInviteDone(call);
                }
                self.events.push_back(UaEvent::Response {
                    req,
                    code,
                    msg: resp,
                });
            }
            Owner::ReInviteDone(call) => {
                if (200..300).contains(&code) {
                    self.ack_reinvite(call, &resp);
                }
            }
            Owner::Cancel => {}
            Owner::Register => {
                if code < 200 {
                    return Vec::new();
                }
                let granted = if code < 300 {
                    self.granted_expires(&resp)
                } else {
                    0
                };
                self.registered = code < 300 && granted > 0;
                self.events.push_back(UaEvent::Registration {
                    registered: self.registered,
                    code,
                    expires: granted,
                });
                if self.registered {
                    let half = Duration::from_secs(u64::from(granted.max(2) / 2));
                    self.set_timer(now + half, Timer::Refresh);
                }
            }
            Owner::Invite(call) => return self.on_invite_response(now, call, tx, resp, code),
        }
        Vec::new()
    }

    /// Accept-then-terminate a second dialog created by a forked 2xx.
    fn end_forked_dialog(&mut self, now: Instant, inv: &Message<'_>, resp: &Message<'_>) {
        let Ok(mut d) = Dialog::from_uac(inv, resp) else {
            return;
        };
        let seq = inv.cseq().map(|c| c.seq).unwrap_or(1);
        let mut ack = d.request(Method::Ack, Some(seq));
        ack.push(HeaderName::ContentLength, "0");
        self.add_via(&mut ack);
        self.out
            .push_back((self.cfg.outbound.clone(), ack.to_bytes()));
        let bye = d.request(Method::Bye, None);
        self.send(now, bye, Owner::Cancel, 0);
    }

    /// ACK a 2xx to our re-INVITE (every 2xx, including retransmissions)
    /// and take the refreshed remote target.
    fn ack_reinvite(&mut self, call: CallId, resp: &Message<'_>) {
        let seq = resp.cseq().map(|c| c.seq).unwrap_or(0);
        let Some(d) = self.calls.get_mut(&call).and_then(|c| c.dialog.as_mut()) else {
            return;
        };
        d.update_from_response(resp);
        let mut ack = d.request(Method::Ack, Some(seq));
        ack.push(HeaderName::ContentLength, "0");
        self.add_via(&mut ack);
        let hop = self.hop(Some(call));
        self.out.push_back((hop, ack.to_bytes()));
    }

    fn granted_expires(&self, resp: &Message<'_>) -> u32 {
        let ours = format!("sip:{}@{}", self.cfg.user, self.cfg.local);
        let from_contact = resp.contacts().ok().and_then(|cs| {
            cs.into_iter().find_map(|c| match c {
                crate::addr::Contact::Addr(a) if a.uri.to_string().starts_with(&ours) => {
                    a.expires().and_then(Result::ok)
                }
                _ => None,
            })
        });
        from_contact
            .or_else(|| resp.expires().ok().flatten())
            .unwrap_or(self.reg_expires)
    }

    fn on_invite_response(
        &mut self,
        now: Instant,
        call: CallId,
        _tx: TxId,
        resp: Message<'static>,
        code: u16,
    ) -> Vec<Event<'static, P>> {
        let Some(c) = self.calls.get_mut(&call) else {
            return Vec::new();
        };
        if code < 200 {
            if code > 100 {
                c.provisional_seen = true;
                if c.dialog.is_none() && resp.to_tag().is_some() {
                    if let Some(inv) = &c.invite {
                        c.dialog = Dialog::from_uac(inv, &resp).ok();
                    }
                }
                let body = body_of(&resp);
                self.events.push_back(if code == 180 || code == 183 {
                    UaEvent::CallRinging { call, code, body }
                } else {
                    UaEvent::CallProceeding { call }
                });
            } else {
                c.provisional_seen = true;
            }
            let cancel_now = c.cancel_requested && c.state == CallState::Calling;
            if cancel_now {
                c.cancel_requested = false;
            }
            if code > 100 {
                self.send_prack(now, call, &resp);
            }
            if cancel_now {
                self.send_cancel(now, call);
            }
            return Vec::new();
        }
        if code < 300 {
            // 2xx: (re)build the dialog, send ACK directly (§13.2.2.4).
            if let Some(ack) = &c.ack {
                let resp_tag = resp.to_tag().map(str::to_owned);
                let same = c
                    .dialog
                    .as_ref()
                    .is_some_and(|d| Some(&d.id.remote_tag) == resp_tag.as_ref());
                if same {
                    // Retransmitted 2xx: the same ACK again.
                    let a = ack.clone();
                    let hop = c
                        .next_hop
                        .clone()
                        .unwrap_or_else(|| self.cfg.outbound.clone());
                    self.out.push_back((hop, a));
                    return Vec::new();
                }
                // A 2xx from another fork (§13.2.2.4): ACK it, then BYE it.
                let Some(inv) = c.invite.clone() else {
                    return Vec::new();
                };
                self.end_forked_dialog(now, &inv, &resp);
                return Vec::new();
            }
            let Some(inv) = c.invite.clone() else {
                return Vec::new();
            };
            match c.dialog.as_mut() {
                Some(d) if d.id.remote_tag == resp.to_tag().unwrap_or("") => {
                    d.update_from_response(&resp)
                }
                _ => c.dialog = Dialog::from_uac(&inv, &resp).ok(),
            }
            let seq = inv.cseq().map(|s| s.seq).unwrap_or(1);
            let Some(mut ack) = c.dialog.as_mut().map(|d| d.request(Method::Ack, Some(seq))) else {
                return Vec::new();
            };
            ack.push(HeaderName::ContentLength, "0");
            self.add_via(&mut ack);
            let bytes = ack.to_bytes();
            if let Some(c) = self.calls.get_mut(&call) {
                c.ack = Some(bytes.clone());
                c.state = CallState::Confirmed;
            }
            let hop = self.hop(Some(call));
            self.out.push_back((hop, bytes));
            self.events.push_back(UaEvent::CallAnswered {
                call,
                body: body_of(&resp),
            });
            return Vec::new();
        }
        // Final failure (the transaction ACKed it).
        self.calls.remove(&call);
        self.events.push_back(UaEvent::CallClosed { call, code });
        Vec::new()
    }

    fn on_stray(&mut self, now: Instant, msg: Message<'static>) -> Vec<Event<'static, P>> {
        if msg.method() == Some(&Method::Ack) {
            if let Some(call) = self.find_call(&msg) {
                if let Some(c) = self.calls.get_mut(&call) {
                    if c.state == CallState::Answered {
                        c.state = CallState::Confirmed;
                        c.ok_deadline = None;
                        self.events.push_back(UaEvent::CallAck { call });
                    }
                }
            }
            return Vec::new();
        }
        // A 2xx retransmission after our INVITE transaction ended: ACK again.
        if msg.code().is_some_and(|c| (200..300).contains(&c)) {
            if let Some(call) = self.find_call(&msg) {
                if let Some(ack) = self.calls.get(&call).and_then(|c| c.ack.clone()) {
                    let hop = self.hop(Some(call));
                    self.out.push_back((hop, ack));
                }
            }
        }
        let _ = now;
        Vec::new()
    }

    fn on_failure(&mut self, tx: TxId) -> Vec<Event<'static, P>> {
        let Some(p) = self.pending.get(&tx) else {
            return Vec::new();
        };
        match p.owner {
            Owner::Plain(req) | Owner::InDialog(_, req) => {
                self.events.push_back(UaEvent::RequestFailed {
                    req,
                    reason: "timeout or transport error".into(),
                });
            }
            Owner::Register => {
                self.registered = false;
                self.events.push_back(UaEvent::Registration {
                    registered: false,
                    code: 408,
                    expires: 0,
                });
            }
            Owner::Invite(call) => {
                if self
                    .calls
                    .get(&call)
                    .is_some_and(|c| c.state == CallState::Calling)
                {
                    self.calls.remove(&call);
                    self.events
                        .push_back(UaEvent::CallClosed { call, code: 408 });
                }
            }
            Owner::ReInvite(_, req) => {
                self.events.push_back(UaEvent::RequestFailed {
                    req,
                    reason: "re-INVITE timed out".into(),
                });
            }
            Owner::ReInviteDone(_) => {}
            Owner::Cancel => {}
        }
        Vec::new()
    }
}
