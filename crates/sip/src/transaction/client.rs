//! Client transactions (§17.1.1 INVITE, §17.1.2 non-INVITE).

use std::borrow::Cow;
use std::time::{Duration, Instant};

use super::{earliest, Action, TimerConfig};
use crate::header::{Header, HeaderName};
use crate::message::Message;
use crate::method::Method;

/// INVITE client transaction states (Figure 5, with RFC 6026 Accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteClientState {
    /// INVITE sent, no response yet.
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A 300-699 arrived and was ACKed; absorbing retransmissions (timer D).
    Completed,
    /// A 2xx arrived; further 2xx are passed up (timer M, RFC 6026).
    Accepted,
    /// Done.
    Terminated,
}

/// INVITE client transaction.
#[derive(Debug)]
pub struct InviteClient {
    state: InviteClientState,
    cfg: TimerConfig,
    reliable: bool,
    request: Message<'static>,
    request_bytes: Vec<u8>,
    ack: Option<Vec<u8>>,
    timer_a: Option<Instant>,
    interval_a: Duration,
    timer_b: Option<Instant>,
    timer_d: Option<Instant>,
    timer_m: Option<Instant>,
    retransmissions: u32,
}

impl InviteClient {
    /// Start the transaction: returns it and the initial transmission.
    pub fn new(
        now: Instant,
        request: Message<'static>,
        reliable: bool,
        cfg: TimerConfig,
    ) -> (InviteClient, Vec<Action>) {
        let request_bytes = request.to_bytes();
        let tx = InviteClient {
            state: InviteClientState::Calling,
            cfg,
            reliable,
            timer_a: if reliable { None } else { Some(now + cfg.t1) },
            interval_a: cfg.t1,
            timer_b: Some(now + cfg.t1x64()),
            timer_d: None,
            timer_m: None,
            retransmissions: 0,
            ack: None,
            request_bytes: request_bytes.clone(),
            request,
        };
        (tx, vec![Action::Send(request_bytes)])
    }

    /// Current state.
    pub fn state(&self) -> InviteClientState {
        self.state
    }

    /// The INVITE this transaction sends.
    pub fn request(&self) -> &Message<'static> {
        &self.request
    }

    /// How many times the INVITE was retransmitted (timer A).
    pub fn retransmissions(&self) -> u32 {
        self.retransmissions
    }

    /// Next instant [`InviteClient::on_timer`] must be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        earliest(&[self.timer_a, self.timer_b, self.timer_d, self.timer_m])
    }

    fn terminate(&mut self, out: &mut Vec<Action>) {
        self.state = InviteClientState::Terminated;
        self.timer_a = None;
        self.timer_b = None;
        self.timer_d = None;
        self.timer_m = None;
        out.push(Action::Terminated);
    }

    /// Handle a response matched to this transaction.
    pub fn on_response(&mut self, now: Instant, resp: &Message<'_>) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(code) = resp.code() else { return out };
        match (self.state, code) {
            (InviteClientState::Calling | InviteClientState::Proceeding, 100..=199) => {
                self.state = InviteClientState::Proceeding;
                self.timer_a = None;
                // Timer B only guards the Calling state (Figure 5).
                self.timer_b = None;
                out.push(Action::Deliver(resp.clone().into_owned()));
            }
            (InviteClientState::Calling | InviteClientState::Proceeding, 200..=299) => {
                self.state = InviteClientState::Accepted;
                self.timer_a = None;
                self.timer_b = None;
                self.timer_m = Some(now + self.cfg.t1x64());
                out.push(Action::Deliver(resp.clone().into_owned()));
            }
            (InviteClientState::Calling | InviteClientState::Proceeding, _) => {
                self.timer_a = None;
                self.timer_b = None;
                let ack = build_ack(&self.request, resp).to_bytes();
                out.push(Action::Send(ack.clone()));
                self.ack = Some(ack);
                out.push(Action::Deliver(resp.clone().into_owned()));
                self.state = InviteClientState::Completed;
                let d = self.cfg.timer_d(self.reliable);
                if d.is_zero() {
                    self.terminate(&mut out);
                } else {
                    self.timer_d = Some(now + d);
                }
            }
            (InviteClientState::Completed, 300..=699) => {
                // Retransmitted final response: re-send the ACK, do not pass up.
                if let Some(ack) = &self.ack {
                    out.push(Action::Send(ack.clone()));
                }
            }
            (InviteClientState::Accepted, 200..=299) => {
                // RFC 6026 §7.2: retransmitted/forked 2xx go to the TU, which ACKs them.
                out.push(Action::Deliver(resp.clone().into_owned()));
            }
            _ => {}
        }
        out
    }

    /// Fire every timer whose deadline is at or before `now`.
    pub fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.timer_b.is_some_and(|t| t <= now) {
            out.push(Action::Timeout);
            self.terminate(&mut out);
            return out;
        }
        while let Some(t) = self.timer_a.filter(|t| *t <= now) {
            self.retransmissions += 1;
            out.push(Action::Send(self.request_bytes.clone()));
            self.interval_a = self.interval_a.saturating_mul(2);
            self.timer_a = Some(t + self.interval_a);
        }
        if self.timer_d.is_some_and(|t| t <= now) || self.timer_m.is_some_and(|t| t <= now) {
            self.terminate(&mut out);
        }
        out
    }

    /// The transport failed to deliver the request (§17.1.4).
    pub fn on_transport_error(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if matches!(
            self.state,
            InviteClientState::Calling | InviteClientState::Proceeding
        ) {
            out.push(Action::TransportError);
            self.terminate(&mut out);
        }
        out
    }
}

/// Build the ACK for a non-2xx final response (§17.1.1.3): same Request-URI,
/// Call-ID, From, CSeq number and top Via as the INVITE, To from the response,
/// Route headers copied.
pub fn build_ack(invite: &Message<'_>, resp: &Message<'_>) -> Message<'static> {
    let uri = invite.request_uri_str().unwrap_or("").to_owned();
    let mut ack = Message::request(Method::Ack, Cow::Owned(uri));
    if let Ok(via) = invite.top_via() {
        ack.push(HeaderName::Via, via.to_string());
    }
    for h in &invite.headers {
        match h.kind {
            HeaderName::Route | HeaderName::From | HeaderName::CallId | HeaderName::MaxForwards => {
                ack.headers.push(h.clone().into_owned());
            }
            _ => {}
        }
    }
    if let Some(to) = resp.header(HeaderName::To) {
        ack.headers.push(Header::new(HeaderName::To, to.to_owned()));
    }
    let seq = invite.cseq().map(|c| c.seq).unwrap_or(0);
    ack.push(HeaderName::CSeq, format!("{seq} ACK"));
    ack.push(HeaderName::ContentLength, "0");
    ack
}

/// Non-INVITE client transaction states (Figure 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonInviteClientState {
    /// Request sent.
    Trying,
    /// Provisional received.
    Proceeding,
    /// Final received; absorbing retransmissions (timer K).
    Completed,
    /// Done.
    Terminated,
}

/// Non-INVITE client transaction.
#[derive(Debug)]
pub struct NonInviteClient {
    state: NonInviteClientState,
    cfg: TimerConfig,
    reliable: bool,
    request: Message<'static>,
    request_bytes: Vec<u8>,
    timer_e: Option<Instant>,
    interval_e: Duration,
    timer_f: Option<Instant>,
    timer_k: Option<Instant>,
    retransmissions: u32,
}

impl NonInviteClient {
    /// Start the transaction: returns it and the initial transmission.
    pub fn new(
        now: Instant,
        request: Message<'static>,
        reliable: bool,
        cfg: TimerConfig,
    ) -> (NonInviteClient, Vec<Action>) {
        let request_bytes = request.to_bytes();
        let tx = NonInviteClient {
            state: NonInviteClientState::Trying,
            cfg,
            reliable,
            timer_e: if reliable { None } else { Some(now + cfg.t1) },
            interval_e: cfg.t1,
            timer_f: Some(now + cfg.t1x64()),
            timer_k: None,
            retransmissions: 0,
            request_bytes: request_bytes.clone(),
            request,
        };
        (tx, vec![Action::Send(request_bytes)])
    }

    /// Current state.
    pub fn state(&self) -> NonInviteClientState {
        self.state
    }

    /// The request this transaction sends.
    pub fn request(&self) -> &Message<'static> {
        &self.request
    }

    /// Retransmissions so far (timer E).
    pub fn retransmissions(&self) -> u32 {
        self.retransmissions
    }

    /// Next instant [`NonInviteClient::on_timer`] must be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        earliest(&[self.timer_e, self.timer_f, self.timer_k])
    }

    fn terminate(&mut self, out: &mut Vec<Action>) {
        self.state = NonInviteClientState::Terminated;
        self.timer_e = None;
        self.timer_f = None;
        self.timer_k = None;
        out.push(Action::Terminated);
    }

    /// Handle a response matched to this transaction.
    pub fn on_response(&mut self, now: Instant, resp: &Message<'_>) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(code) = resp.code() else { return out };
        match self.state {
            NonInviteClientState::Trying | NonInviteClientState::Proceeding if code < 200 => {
                self.state = NonInviteClientState::Proceeding;
                out.push(Action::Deliver(resp.clone().into_owned()));
            }
            NonInviteClientState::Trying | NonInviteClientState::Proceeding => {
                self.timer_e = None;
                self.timer_f = None;
                out.push(Action::Deliver(resp.clone().into_owned()));
                self.state = NonInviteClientState::Completed;
                if self.reliable {
                    self.terminate(&mut out);
                } else {
                    self.timer_k = Some(now + self.cfg.t4);
                }
            }
            _ => {}
        }
        out
    }

    /// Fire every timer whose deadline is at or before `now`.
    pub fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.timer_f.is_some_and(|t| t <= now) {
            out.push(Action::Timeout);
            self.terminate(&mut out);
            return out;
        }
        while let Some(t) = self.timer_e.filter(|t| *t <= now) {
            self.retransmissions += 1;
            out.push(Action::Send(self.request_bytes.clone()));
            // Trying: double up to T2; Proceeding: always T2 (§17.1.2.2).
            self.interval_e = match self.state {
                NonInviteClientState::Proceeding => self.cfg.t2,
                _ => self.interval_e.saturating_mul(2).min(self.cfg.t2),
            };
            self.timer_e = Some(t + self.interval_e);
        }
        if self.timer_k.is_some_and(|t| t <= now) {
            self.terminate(&mut out);
        }
        out
    }

    /// The transport failed to deliver the request.
    pub fn on_transport_error(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if matches!(
            self.state,
            NonInviteClientState::Trying | NonInviteClientState::Proceeding
        ) {
            out.push(Action::TransportError);
            self.terminate(&mut out);
        }
        out
    }
}
