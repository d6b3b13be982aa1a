//! The XEP-0166 session state machine for one call, sans-IO: it checks each incoming
//! `<jingle/>` against the session's state and peer and says what it means, or which error
//! to answer with (XEP-0166 §8: `unknown-session`, `out-of-order`, ...); and it writes the
//! `<jingle/>` elements we send.
//!
//! States (§6.1): pending (initiate sent or received) → active (accepted) → ended. Content
//! changes mid-call (content-add, content-remove) are acknowledged and then refused
//! cleanly (content-reject / terminate when nothing would be left): a voice call has one
//! audio content and keeps it.

use super::{Action, Content, Group, Jingle, Reason};
use crate::jid::Jid;

/// Our side of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We sent session-initiate.
    Initiator,
    /// We received it.
    Responder,
}

/// XEP-0166 §6.1 states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Before session-initiate (we are about to send it).
    Idle,
    /// session-initiate sent/received, no accept yet.
    Pending,
    /// Accepted.
    Active,
    /// Terminated.
    Ended,
}

/// What an incoming `<jingle/>` means (acknowledge it with an empty result).
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// The peer accepted: its contents (description + transport).
    Accepted(Vec<Content>),
    /// Trickled transport information (candidates, end of candidates).
    TransportInfo(Vec<Content>),
    /// The peer ended the session.
    Terminated(Option<Reason>),
    /// session-info (`ringing`, `hold`, `active`, `mute` ... or a ping without payload).
    Info(Option<String>),
    /// content-add: to be refused with [`Session::content_reject`].
    ContentAdd(Vec<Content>),
    /// content-remove of these names; `true` when nothing would be left (terminate).
    ContentRemove(bool),
    /// Something harmless we do not act on (description-info, security-info, ...).
    Ignored,
}

/// Why an incoming `<jingle/>` is refused: the IQ error to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// Error type (`cancel`, `wait`, `modify`).
    pub kind: &'static str,
    /// RFC 6120 condition.
    pub condition: &'static str,
    /// XEP-0166 §8 condition in `urn:xmpp:jingle:errors:1`, if any.
    pub jingle: Option<&'static str>,
}

const UNKNOWN_SESSION: Refusal = Refusal {
    kind: "cancel",
    condition: "item-not-found",
    jingle: Some("unknown-session"),
};
const OUT_OF_ORDER: Refusal = Refusal {
    kind: "wait",
    condition: "unexpected-request",
    jingle: Some("out-of-order"),
};
const BAD_REQUEST: Refusal = Refusal {
    kind: "cancel",
    condition: "bad-request",
    jingle: None,
};

/// One Jingle session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Session id.
    pub sid: String,
    /// Our role.
    pub role: Role,
    /// The peer's full JID.
    pub peer: Jid,
    /// Our full JID.
    pub me: Jid,
    state: State,
    /// Content names in the session.
    names: Vec<String>,
}

impl Session {
    /// A session we will initiate towards `peer`.
    pub fn outgoing(sid: &str, me: Jid, peer: Jid) -> Session {
        Session {
            sid: sid.to_owned(),
            role: Role::Initiator,
            peer,
            me,
            state: State::Idle,
            names: Vec::new(),
        }
    }

    /// A session from a received session-initiate (check it with
    /// [`Session::check_initiate`] first).
    pub fn incoming(j: &Jingle, me: Jid, from: Jid) -> Session {
        Session {
            sid: j.sid.clone(),
            role: Role::Responder,
            peer: from,
            me,
            state: State::Pending,
            names: j.contents.iter().map(|c| c.name.clone()).collect(),
        }
    }

    /// Whether a session-initiate can start a session (it needs an RTP content).
    pub fn check_initiate(j: &Jingle) -> Result<(), Refusal> {
        if j.action != Action::SessionInitiate {
            return Err(UNKNOWN_SESSION);
        }
        if j.contents.iter().all(|c| c.description.is_none()) {
            return Err(Refusal {
                kind: "cancel",
                condition: "feature-not-implemented",
                jingle: Some("unsupported-info"),
            });
        }
        Ok(())
    }

    /// The state.
    pub fn state(&self) -> State {
        self.state
    }

    fn initiator(&self) -> &Jid {
        match self.role {
            Role::Initiator => &self.me,
            Role::Responder => &self.peer,
        }
    }

    /// Checks and interprets a `<jingle/>` from `from` for this session.
    pub fn handle(&mut self, from: &Jid, j: &Jingle) -> Result<Incoming, Refusal> {
        if j.sid != self.sid || *from != self.peer {
            return Err(UNKNOWN_SESSION);
        }
        if self.state == State::Ended {
            return Err(UNKNOWN_SESSION);
        }
        match &j.action {
            Action::SessionInitiate => Err(OUT_OF_ORDER),
            Action::SessionAccept => {
                if self.role != Role::Initiator || self.state != State::Pending {
                    return Err(OUT_OF_ORDER);
                }
                if j.contents.iter().all(|c| c.description.is_none()) {
                    return Err(BAD_REQUEST);
                }
                self.state = State::Active;
                Ok(Incoming::Accepted(j.contents.clone()))
            }
            Action::SessionTerminate => {
                self.state = State::Ended;
                Ok(Incoming::Terminated(j.reason.clone()))
            }
            Action::TransportInfo => {
                if self.state == State::Idle {
                    return Err(OUT_OF_ORDER);
                }
                if j.contents.iter().any(|c| !self.names.contains(&c.name)) {
                    return Err(BAD_REQUEST);
                }
                Ok(Incoming::TransportInfo(j.contents.clone()))
            }
            Action::SessionInfo => Ok(Incoming::Info(j.info.clone())),
            Action::ContentAdd => Ok(Incoming::ContentAdd(j.contents.clone())),
            Action::ContentRemove => {
                let left = self
                    .names
                    .iter()
                    .filter(|n| !j.contents.iter().any(|c| &c.name == *n))
                    .count();
                self.names
                    .retain(|n| !j.contents.iter().any(|c| &c.name == n));
                Ok(Incoming::ContentRemove(left == 0))
            }
            Action::DescriptionInfo | Action::SecurityInfo => Ok(Incoming::Ignored),
            Action::ContentModify
            | Action::ContentAccept
            | Action::ContentReject
            | Action::TransportReplace
            | Action::TransportAccept
            | Action::TransportReject => Err(OUT_OF_ORDER),
            Action::Other(_) => Err(BAD_REQUEST),
        }
    }

    fn jingle(&self, action: Action) -> Jingle {
        let mut j = Jingle::new(action, &self.sid);
        j.initiator = Some(self.initiator().to_string());
        j
    }

    /// Our session-initiate.
    pub fn initiate(&mut self, contents: Vec<Content>, group: Option<Group>) -> Jingle {
        self.names = contents.iter().map(|c| c.name.clone()).collect();
        self.state = State::Pending;
        let mut j = self.jingle(Action::SessionInitiate);
        j.contents = contents;
        j.group = group;
        j
    }

    /// Our session-accept (responder, pending).
    pub fn accept(&mut self, contents: Vec<Content>, group: Option<Group>) -> Option<Jingle> {
        if self.role != Role::Responder || self.state != State::Pending {
            return None;
        }
        self.state = State::Active;
        let mut j = self.jingle(Action::SessionAccept);
        j.responder = Some(self.me.to_string());
        j.contents = contents;
        j.group = group;
        Some(j)
    }

    /// Trickled candidates (transport-info).
    pub fn transport_info(&self, contents: Vec<Content>) -> Jingle {
        let mut j = self.jingle(Action::TransportInfo);
        j.contents = contents;
        j
    }

    /// session-info `ringing` (XEP-0167 §7).
    pub fn ringing(&self) -> Jingle {
        let mut j = self.jingle(Action::SessionInfo);
        j.info = Some("ringing".into());
        j
    }

    /// content-reject for contents the peer tried to add.
    pub fn content_reject(&self, contents: &[Content]) -> Jingle {
        let mut j = self.jingle(Action::ContentReject);
        j.contents = contents
            .iter()
            .map(|c| Content {
                creator: c.creator.clone(),
                name: c.name.clone(),
                senders: None,
                description: None,
                transport: None,
            })
            .collect();
        j.reason = Some(Reason {
            condition: "unsupported-applications".into(),
            text: None,
        });
        j
    }

    /// Our session-terminate; the session is over.
    pub fn terminate(&mut self, condition: &str, text: Option<&str>) -> Option<Jingle> {
        if self.state == State::Ended {
            return None;
        }
        self.state = State::Ended;
        let mut j = self.jingle(Action::SessionTerminate);
        j.reason = Some(Reason {
            condition: condition.to_owned(),
            text: text.map(str::to_owned),
        });
        Some(j)
    }
}
