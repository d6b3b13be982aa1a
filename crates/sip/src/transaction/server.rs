//! Server transactions (§17.2.1 INVITE with RFC 6026 Accepted state, §17.2.2
//! non-INVITE).

use std::time::{Duration, Instant};

use super::{earliest, Action, TimerConfig};
use crate::build::reason_phrase;
use crate::message::Message;
use crate::method::Method;

/// INVITE server transaction states (Figure 7 as amended by RFC 6026).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteServerState {
    /// Request received; provisionals may be sent.
    Proceeding,
    /// 300-699 sent; retransmitting it until ACK (timers G, H).
    Completed,
    /// ACK received; absorbing ACK retransmissions (timer I).
    Confirmed,
    /// 2xx sent; absorbing INVITE retransmissions, passing ACKs up (timer L).
    Accepted,
    /// Done.
    Terminated,
}

/// INVITE server transaction.
#[derive(Debug)]
pub struct InviteServer {
    state: InviteServerState,
    cfg: TimerConfig,
    reliable: bool,
    request: Message<'static>,
    last_provisional: Option<Vec<u8>>,
    last_final: Option<Vec<u8>>,
    final_to_tag: Option<String>,
    timer_g: Option<Instant>,
    interval_g: Duration,
    timer_h: Option<Instant>,
    timer_i: Option<Instant>,
    timer_l: Option<Instant>,
    retransmissions: u32,
}

impl InviteServer {
    /// Create the transaction for a received INVITE. With `send_trying` a
    /// `100 Trying` is generated at once (§17.2.1: unless the TU answers
    /// within 200 ms; sending it immediately is always allowed).
    pub fn new(
        _now: Instant,
        request: Message<'static>,
        reliable: bool,
        cfg: TimerConfig,
        send_trying: bool,
    ) -> (InviteServer, Vec<Action>) {
        let mut out = Vec::new();
        let mut last_provisional = None;
        if send_trying {
            let trying =
                Message::response_to(&request, 100, Some(reason_phrase(100)), None).to_bytes();
            out.push(Action::Send(trying.clone()));
            last_provisional = Some(trying);
        }
        let tx = InviteServer {
            state: InviteServerState::Proceeding,
            cfg,
            reliable,
            request,
            last_provisional,
            last_final: None,
            final_to_tag: None,
            timer_g: None,
            interval_g: cfg.t1,
            timer_h: None,
            timer_i: None,
            timer_l: None,
            retransmissions: 0,
        };
        (tx, out)
    }

    /// Current state.
    pub fn state(&self) -> InviteServerState {
        self.state
    }

    /// The INVITE.
    pub fn request(&self) -> &Message<'static> {
        &self.request
    }

    /// To tag of the final response sent (for RFC 2543 ACK matching).
    pub fn final_to_tag(&self) -> Option<&str> {
        self.final_to_tag.as_deref()
    }

    /// Retransmissions of the final response (timer G).
    pub fn retransmissions(&self) -> u32 {
        self.retransmissions
    }

    /// Next instant [`InviteServer::on_timer`] must be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        earliest(&[self.timer_g, self.timer_h, self.timer_i, self.timer_l])
    }

    fn terminate(&mut self, out: &mut Vec<Action>) {
        self.state = InviteServerState::Terminated;
        self.timer_g = None;
        self.timer_h = None;
        self.timer_i = None;
        self.timer_l = None;
        out.push(Action::Terminated);
    }

    /// A request matched to this transaction: an INVITE retransmission or an ACK.
    pub fn on_request(&mut self, now: Instant, req: &Message<'_>) -> Vec<Action> {
        let mut out = Vec::new();
        let is_ack = req.method() == Some(&Method::Ack);
        match (self.state, is_ack) {
            (InviteServerState::Proceeding, false) => {
                if let Some(p) = &self.last_provisional {
                    out.push(Action::Send(p.clone()));
                }
            }
            (InviteServerState::Completed, false) => {
                if let Some(f) = &self.last_final {
                    out.push(Action::Send(f.clone()));
                }
            }
            (InviteServerState::Completed, true) => {
                self.state = InviteServerState::Confirmed;
                self.timer_g = None;
                self.timer_h = None;
                if self.reliable {
                    self.terminate(&mut out);
                } else {
                    self.timer_i = Some(now + self.cfg.t4);
                }
            }
            (InviteServerState::Accepted, true) => {
                // RFC 6026 §7.1: ACKs for the 2xx go to the TU.
                out.push(Action::Deliver(req.clone().into_owned()));
            }
            _ => {}
        }
        out
    }

    /// The TU sends a response on this transaction.
    pub fn send_response(&mut self, now: Instant, resp: &Message<'_>) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(code) = resp.code() else { return out };
        let bytes = resp.to_bytes();
        match (self.state, code) {
            (InviteServerState::Proceeding, 100..=199) => {
                out.push(Action::Send(bytes.clone()));
                self.last_provisional = Some(bytes);
            }
            (InviteServerState::Proceeding, 200..=299) => {
                out.push(Action::Send(bytes));
                self.state = InviteServerState::Accepted;
                self.timer_l = Some(now + self.cfg.t1x64());
            }
            (InviteServerState::Proceeding, _) => {
                out.push(Action::Send(bytes.clone()));
                self.final_to_tag = resp.to_tag().map(str::to_owned);
                self.last_final = Some(bytes);
                self.state = InviteServerState::Completed;
                if !self.reliable {
                    self.timer_g = Some(now + self.cfg.t1);
                }
                self.timer_h = Some(now + self.cfg.t1x64());
            }
            (InviteServerState::Accepted, 200..=299) => {
                // RFC 6026 §7.1: 2xx retransmissions from the TU are sent as is.
                out.push(Action::Send(bytes));
            }
            _ => {}
        }
        out
    }

    /// Fire every timer whose deadline is at or before `now`.
    pub fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.timer_h.is_some_and(|t| t <= now) {
            // ACK never arrived (§17.2.1).
            out.push(Action::Timeout);
            self.terminate(&mut out);
            return out;
        }
        while let Some(t) = self.timer_g.filter(|t| *t <= now) {
            self.retransmissions += 1;
            if let Some(f) = &self.last_final {
                out.push(Action::Send(f.clone()));
            }
            self.interval_g = self.interval_g.saturating_mul(2).min(self.cfg.t2);
            self.timer_g = Some(t + self.interval_g);
        }
        if self.timer_i.is_some_and(|t| t <= now) || self.timer_l.is_some_and(|t| t <= now) {
            self.terminate(&mut out);
        }
        out
    }

    /// The transport failed to deliver a response (§17.2.4).
    pub fn on_transport_error(&mut self) -> Vec<Action> {
        let mut out = vec![Action::TransportError];
        // RFC 6026 §8.8: in Accepted the transaction stays, so retransmitted
        // INVITEs are still absorbed until timer L.
        if self.state != InviteServerState::Accepted && self.state != InviteServerState::Terminated
        {
            self.terminate(&mut out);
        }
        out
    }
}

/// Non-INVITE server transaction states (Figure 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonInviteServerState {
    /// Request received, nothing sent.
    Trying,
    /// Provisional sent.
    Proceeding,
    /// Final sent; answering retransmissions with it (timer J).
    Completed,
    /// Done.
    Terminated,
}

/// Non-INVITE server transaction.
#[derive(Debug)]
pub struct NonInviteServer {
    state: NonInviteServerState,
    cfg: TimerConfig,
    reliable: bool,
    last_response: Option<Vec<u8>>,
    timer_j: Option<Instant>,
}

impl NonInviteServer {
    /// Create the transaction for a received request. The request itself is
    /// not kept (the TU has it): at high REGISTER rates thousands of these
    /// live for 64*T1 and only the last response is needed.
    pub fn new(_now: Instant, reliable: bool, cfg: TimerConfig) -> NonInviteServer {
        NonInviteServer {
            state: NonInviteServerState::Trying,
            cfg,
            reliable,
            last_response: None,
            timer_j: None,
        }
    }

    /// Current state.
    pub fn state(&self) -> NonInviteServerState {
        self.state
    }

    /// True on a reliable transport (no Timer J).
    pub fn is_reliable(&self) -> bool {
        self.reliable
    }

    /// Next instant [`NonInviteServer::on_timer`] must be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timer_j
    }

    /// A retransmission of the request arrived.
    pub fn on_request(&mut self, _now: Instant, _req: &Message<'_>) -> Vec<Action> {
        match (self.state, &self.last_response) {
            (NonInviteServerState::Proceeding | NonInviteServerState::Completed, Some(r)) => {
                vec![Action::Send(r.clone())]
            }
            _ => Vec::new(),
        }
    }

    /// The TU sends a response.
    pub fn send_response(&mut self, now: Instant, resp: &Message<'_>) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(code) = resp.code() else { return out };
        if !matches!(
            self.state,
            NonInviteServerState::Trying | NonInviteServerState::Proceeding
        ) {
            return out;
        }
        let bytes = resp.to_bytes();
        out.push(Action::Send(bytes.clone()));
        self.last_response = Some(bytes);
        if code < 200 {
            self.state = NonInviteServerState::Proceeding;
        } else {
            self.state = NonInviteServerState::Completed;
            if self.reliable {
                self.state = NonInviteServerState::Terminated;
                out.push(Action::Terminated);
            } else {
                self.timer_j = Some(now + self.cfg.t1x64());
            }
        }
        out
    }

    /// Fire timer J if due.
    pub fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        if self.timer_j.is_some_and(|t| t <= now) {
            self.timer_j = None;
            self.state = NonInviteServerState::Terminated;
            return vec![Action::Terminated];
        }
        Vec::new()
    }

    /// The transport failed to deliver a response.
    pub fn on_transport_error(&mut self) -> Vec<Action> {
        if self.state == NonInviteServerState::Terminated {
            return Vec::new();
        }
        self.state = NonInviteServerState::Terminated;
        self.timer_j = None;
        vec![Action::TransportError, Action::Terminated]
    }
}
