//! XEP-0353 Jingle Message Initiation (version 0.7/0.8, namespace `urn:xmpp:jingle-message:0`):
//! a call announced in a `<message/>` to the callee's bare JID, so every device of the
//! callee learns of it; devices report `<ringing/>`, the one that takes it answers
//! `<proceed/>` (or `<reject/>`), the caller then sends `session-initiate` to that device,
//! and when the Jingle session is over both parties send `<finish/>` so every device (and
//! the archive) knows the call's end. `reject`, `retract` and `finish` carry a Jingle
//! `<reason/>` (a MUST since 0.7). [`JmiCall`] is the sans-IO state machine of one such call.

use super::Reason;
use crate::jid::Jid;
use crate::ns;
use crate::xml::Element;

/// One JMI element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Jmi {
    /// A call is proposed, with the media it will carry.
    Propose {
        /// The Jingle sid-to-be.
        id: String,
        /// `audio`, `video` descriptions.
        media: Vec<String>,
    },
    /// The callee's device will take it: send `session-initiate` to me.
    Proceed {
        /// sid.
        id: String,
    },
    /// Another device of the callee took it (pre-0.4 XEP-0353; still parsed).
    Accept {
        /// sid.
        id: String,
    },
    /// The callee declines (`<busy/>` by default).
    Reject {
        /// sid.
        id: String,
        /// Why (absent from pre-0.4 peers).
        reason: Option<Reason>,
    },
    /// The caller withdraws the proposal (`<cancel/>` by default).
    Retract {
        /// sid.
        id: String,
        /// Why (absent from pre-0.4 peers).
        reason: Option<Reason>,
    },
    /// The callee's device rings.
    Ringing {
        /// sid.
        id: String,
    },
    /// The Jingle session that followed is over (`<success/>` or `<expired/>`, ...).
    Finish {
        /// sid.
        id: String,
        /// Why (absent from pre-0.4 peers).
        reason: Option<Reason>,
        /// The session id this call moved to (`<migrated to=.../>`), if it did.
        migrated: Option<String>,
    },
}

fn reason(condition: &str) -> Option<Reason> {
    Some(Reason {
        condition: condition.to_owned(),
        text: None,
    })
}

fn parse_reason(e: &Element) -> Option<Reason> {
    let r = e.child("reason", ns::JINGLE)?;
    Some(Reason {
        condition: r
            .elements()
            .find(|c| c.name != "text")
            .map(|c| c.name.clone())
            .unwrap_or_else(|| "general-error".into()),
        text: r.child("text", ns::JINGLE).map(Element::text),
    })
}

impl Jmi {
    /// The session id it is about.
    pub fn id(&self) -> &str {
        match self {
            Jmi::Propose { id, .. }
            | Jmi::Proceed { id }
            | Jmi::Accept { id }
            | Jmi::Reject { id, .. }
            | Jmi::Retract { id, .. }
            | Jmi::Ringing { id }
            | Jmi::Finish { id, .. } => id,
        }
    }

    /// The JMI element of a message, if it carries one.
    pub fn parse(message: &Element) -> Option<Jmi> {
        let e = message.elements().find(|c| c.ns == ns::JMI)?;
        let id = e.attr("id")?.to_owned();
        Some(match e.name.as_str() {
            "propose" => Jmi::Propose {
                media: e
                    .children_named("description", ns::JINGLE_RTP)
                    .filter_map(|d| d.attr("media").map(str::to_owned))
                    .collect(),
                id,
            },
            "proceed" => Jmi::Proceed { id },
            "accept" => Jmi::Accept { id },
            "reject" => Jmi::Reject {
                id,
                reason: parse_reason(e),
            },
            "retract" => Jmi::Retract {
                id,
                reason: parse_reason(e),
            },
            "ringing" => Jmi::Ringing { id },
            "finish" => Jmi::Finish {
                id,
                reason: parse_reason(e),
                migrated: e
                    .child("migrated", ns::JMI)
                    .and_then(|m| m.attr("to"))
                    .map(str::to_owned),
            },
            _ => return None,
        })
    }

    fn element(&self) -> Element {
        let name = match self {
            Jmi::Propose { .. } => "propose",
            Jmi::Proceed { .. } => "proceed",
            Jmi::Accept { .. } => "accept",
            Jmi::Reject { .. } => "reject",
            Jmi::Retract { .. } => "retract",
            Jmi::Ringing { .. } => "ringing",
            Jmi::Finish { .. } => "finish",
        };
        let mut e = Element::new(name, ns::JMI).with_attr("id", self.id().to_owned());
        match self {
            Jmi::Propose { media, .. } => {
                for m in media {
                    e.push(
                        Element::new("description", ns::JINGLE_RTP).with_attr("media", m.clone()),
                    );
                }
            }
            Jmi::Reject { reason, .. } | Jmi::Retract { reason, .. } => {
                if let Some(r) = reason {
                    e.push(reason_element(r));
                }
            }
            Jmi::Finish {
                reason, migrated, ..
            } => {
                if let Some(r) = reason {
                    e.push(reason_element(r));
                }
                if let Some(to) = migrated {
                    e.push(Element::new("migrated", ns::JMI).with_attr("to", to.clone()));
                }
            }
            _ => {}
        }
        e
    }

    /// A `<message type='chat'/>` carrying it (with a store hint, as XEP-0353 asks, so an
    /// offline device learns of the missed call).
    pub fn to_message(&self, to: &Jid, msg_id: &str) -> Element {
        Element::new("message", ns::CLIENT)
            .with_attr("type", "chat")
            .with_attr("to", to.to_string())
            .with_attr("id", msg_id)
            .with_child(self.element())
            .with_child(Element::new("store", ns::HINTS))
    }
}

fn reason_element(r: &Reason) -> Element {
    let mut x =
        Element::new("reason", ns::JINGLE).with_child(Element::new(&r.condition, ns::JINGLE));
    if let Some(t) = &r.text {
        x.push(Element::new("text", ns::JINGLE).with_text(t.clone()));
    }
    x
}

/// Which side of the proposal we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JmiRole {
    /// We proposed.
    Initiator,
    /// A proposal reached us.
    Responder,
}

/// Where one JMI call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JmiState {
    /// Proposed; no device has rung yet (initiator) or we have not rung yet (responder).
    Proposed,
    /// A device of the callee rings (initiator) / we ring (responder).
    Ringing,
    /// A device proceeded: the Jingle session is (being) set up.
    Proceeded,
    /// The callee rejected.
    Rejected,
    /// The caller retracted, or another device of ours took or rejected it (responder).
    Retracted,
    /// A `<finish/>` was sent or received.
    Finished,
}

/// What the peer's message means for the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JmiEvent {
    /// One of the callee's devices rings.
    Ringing {
        /// That device.
        device: Jid,
    },
    /// A device of the callee takes the call: send `session-initiate` to it.
    Proceed {
        /// That device (full JID).
        device: Jid,
    },
    /// The callee rejected the proposal.
    Rejected(Option<Reason>),
    /// The caller withdrew the proposal.
    Retracted(Option<Reason>),
    /// Another device of our own account answered or rejected it (carbon copy).
    HandledElsewhere,
    /// The peer says the session is over.
    Finished(Option<Reason>),
}

/// A JMI message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JmiOut {
    /// Where to (XEP-0353 addresses the other party's bare JID).
    pub to: Jid,
    /// What.
    pub jmi: Jmi,
}

impl JmiOut {
    /// As a message stanza with this id.
    pub fn to_message(&self, msg_id: &str) -> Element {
        self.jmi.to_message(&self.to, msg_id)
    }
}

/// One call's XEP-0353 state machine (sans-IO: messages in, messages to send out).
#[derive(Debug, Clone)]
pub struct JmiCall {
    /// The proposal id (the Jingle sid).
    pub id: String,
    /// Our side.
    pub role: JmiRole,
    /// The other party's bare JID.
    pub peer: Jid,
    /// Our own bare JID (carbons of our other devices come from it).
    me: Jid,
    /// The device that proceeded (initiator) or proposed (responder).
    pub device: Option<Jid>,
    state: JmiState,
    finish_sent: bool,
}

impl JmiCall {
    /// We propose a call to `to` (its bare JID is what gets the `<propose/>`).
    pub fn propose(id: &str, me: &Jid, to: &Jid, media: &[&str]) -> (Self, JmiOut) {
        let call = JmiCall {
            id: id.to_owned(),
            role: JmiRole::Initiator,
            peer: to.bare(),
            me: me.bare(),
            device: None,
            state: JmiState::Proposed,
            finish_sent: false,
        };
        let out = JmiOut {
            to: to.bare(),
            jmi: Jmi::Propose {
                id: id.to_owned(),
                media: media.iter().map(|m| (*m).to_owned()).collect(),
            },
        };
        (call, out)
    }

    /// A `<propose/>` from `from` reached us.
    pub fn incoming(id: &str, me: &Jid, from: &Jid) -> Self {
        JmiCall {
            id: id.to_owned(),
            role: JmiRole::Responder,
            peer: from.bare(),
            me: me.bare(),
            device: Some(from.clone()),
            state: JmiState::Proposed,
            finish_sent: false,
        }
    }

    /// Where the call is.
    pub fn state(&self) -> JmiState {
        self.state
    }

    /// Whether the proposal is settled without a session (rejected, retracted) or finished.
    pub fn is_over(&self) -> bool {
        matches!(
            self.state,
            JmiState::Rejected | JmiState::Retracted | JmiState::Finished
        )
    }

    fn out(&self, jmi: Jmi) -> JmiOut {
        JmiOut {
            to: self.peer.clone(),
            jmi,
        }
    }

    fn undecided(&self) -> bool {
        matches!(self.state, JmiState::Proposed | JmiState::Ringing)
    }

    /// Responder: we ring (tell the caller's devices).
    pub fn ring(&mut self) -> Option<JmiOut> {
        if self.role != JmiRole::Responder || self.state != JmiState::Proposed {
            return None;
        }
        self.state = JmiState::Ringing;
        Some(self.out(Jmi::Ringing {
            id: self.id.clone(),
        }))
    }

    /// Responder: we take the call on this device.
    pub fn proceed(&mut self) -> Option<JmiOut> {
        if self.role != JmiRole::Responder || !self.undecided() {
            return None;
        }
        self.state = JmiState::Proceeded;
        Some(self.out(Jmi::Proceed {
            id: self.id.clone(),
        }))
    }

    /// Responder: we decline (`condition` e.g. `busy`, `decline`).
    pub fn reject(&mut self, condition: &str) -> Option<JmiOut> {
        if self.role != JmiRole::Responder || !self.undecided() {
            return None;
        }
        self.state = JmiState::Rejected;
        Some(self.out(Jmi::Reject {
            id: self.id.clone(),
            reason: reason(condition),
        }))
    }

    /// Initiator: we withdraw the proposal (`<cancel/>`).
    pub fn retract(&mut self) -> Option<JmiOut> {
        if self.role != JmiRole::Initiator || !self.undecided() {
            return None;
        }
        self.state = JmiState::Retracted;
        Some(self.out(Jmi::Retract {
            id: self.id.clone(),
            reason: reason("cancel"),
        }))
    }

    /// Either side, once a device proceeded: the session is over (`success`, `expired`,
    /// `connectivity-error`, ...). Sent once, also after the peer's own `<finish/>`.
    pub fn finish(&mut self, condition: &str) -> Option<JmiOut> {
        let proceeded = matches!(self.state, JmiState::Proceeded | JmiState::Finished);
        if !proceeded || self.finish_sent {
            return None;
        }
        self.state = JmiState::Finished;
        self.finish_sent = true;
        Some(self.out(Jmi::Finish {
            id: self.id.clone(),
            reason: reason(condition),
            migrated: None,
        }))
    }

    /// A JMI message from `from`; what it means, if it is about this call and in order.
    pub fn handle(&mut self, from: &Jid, jmi: &Jmi) -> Option<JmiEvent> {
        if jmi.id() != self.id {
            return None;
        }
        let from_peer = from.bare() == self.peer;
        let from_us = from.bare() == self.me;
        match (self.role, jmi) {
            (JmiRole::Initiator, Jmi::Ringing { .. }) if from_peer && self.undecided() => {
                self.state = JmiState::Ringing;
                Some(JmiEvent::Ringing {
                    device: from.clone(),
                })
            }
            (JmiRole::Initiator, Jmi::Proceed { .. })
                if from_peer && self.undecided() && !from.is_bare() =>
            {
                self.state = JmiState::Proceeded;
                self.device = Some(from.clone());
                Some(JmiEvent::Proceed {
                    device: from.clone(),
                })
            }
            (JmiRole::Initiator, Jmi::Reject { reason, .. }) if from_peer && self.undecided() => {
                self.state = JmiState::Rejected;
                Some(JmiEvent::Rejected(reason.clone()))
            }
            (JmiRole::Responder, Jmi::Retract { reason, .. }) if from_peer && self.undecided() => {
                self.state = JmiState::Retracted;
                Some(JmiEvent::Retracted(reason.clone()))
            }
            (JmiRole::Responder, Jmi::Proceed { .. } | Jmi::Reject { .. } | Jmi::Accept { .. })
                if from_us && self.undecided() =>
            {
                self.state = JmiState::Retracted;
                Some(JmiEvent::HandledElsewhere)
            }
            (_, Jmi::Finish { reason, .. })
                if from_peer && matches!(self.state, JmiState::Proceeded | JmiState::Finished) =>
            {
                self.state = JmiState::Finished;
                Some(JmiEvent::Finished(reason.clone()))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_element;

    fn jid(s: &str) -> Jid {
        Jid::parse(s).expect("jid")
    }

    /// What the peer receives: our message, serialised and parsed back.
    fn wire(o: &JmiOut) -> Jmi {
        let m = parse_element(&o.to_message("m").to_xml()).expect("xml");
        assert_eq!(m.attr("type"), Some("chat"));
        assert!(m.child("store", ns::HINTS).is_some(), "store hint");
        Jmi::parse(&m).expect("jmi")
    }

    #[test]
    fn propose_round_trip_and_conversations_style_proceed() {
        let (_, out) = JmiCall::propose(
            "s1",
            &jid("alice@localhost/a"),
            &jid("bob@localhost"),
            &["audio"],
        );
        let p = Jmi::Propose {
            id: "s1".into(),
            media: vec!["audio".into()],
        };
        assert_eq!(out.to, jid("bob@localhost"));
        assert_eq!(wire(&out), p);
        let proceed = parse_element(
            "<message xmlns='jabber:client' from='bob@localhost/phone' type='chat'><proceed xmlns='urn:xmpp:jingle-message:0' id='s1'><device xmlns='http://gultsch.de/xmpp/drafts/omemo/dlts-srtp-verification' id='1'/></proceed></message>",
        )
        .expect("xml");
        assert_eq!(Jmi::parse(&proceed), Some(Jmi::Proceed { id: "s1".into() }));
        let plain =
            parse_element("<message xmlns='jabber:client'><body>hi</body></message>").expect("xml");
        assert_eq!(Jmi::parse(&plain), None);
    }

    #[test]
    fn finish_and_reasons_in_the_xep_0353_wire_format() {
        // The XEP's own example (section "Finishing a Started Session"), with a migration.
        let m = parse_element(
            "<message xmlns='jabber:client' from='romeo@montague.example/orchard' to='juliet@capulet.example' type='chat'><finish xmlns='urn:xmpp:jingle-message:0' id='ca3c'><reason xmlns='urn:xmpp:jingle:1'><expired/><text>Session migrated</text></reason><migrated to='989a'/></finish><store xmlns='urn:xmpp:hints'/></message>",
        )
        .expect("xml");
        assert_eq!(
            Jmi::parse(&m),
            Some(Jmi::Finish {
                id: "ca3c".into(),
                reason: Some(Reason {
                    condition: "expired".into(),
                    text: Some("Session migrated".into())
                }),
                migrated: Some("989a".into()),
            })
        );
        let xml = Jmi::Finish {
            id: "s1".into(),
            reason: reason("success"),
            migrated: None,
        }
        .to_message(&jid("bob@localhost"), "f1")
        .to_xml();
        assert!(
            xml.contains("<finish xmlns='urn:xmpp:jingle-message:0' id='s1'><reason xmlns='urn:xmpp:jingle:1'><success/></reason></finish>"),
            "{xml}"
        );
        let ringing = parse_element(
            "<message xmlns='jabber:client' from='juliet@capulet.example/phone' type='chat'><ringing xmlns='urn:xmpp:jingle-message:0' id='ca3c'/></message>",
        )
        .expect("xml");
        assert_eq!(
            Jmi::parse(&ringing),
            Some(Jmi::Ringing { id: "ca3c".into() })
        );
    }

    #[test]
    fn a_call_from_propose_through_ringing_and_proceed_to_finish_on_both_sides() {
        let alice = jid("alice@localhost/desk");
        let bob_phone = jid("bob@localhost/phone");
        let (mut a, propose) =
            JmiCall::propose("s1", &alice, &jid("bob@localhost/ignored"), &["audio"]);
        assert_eq!(
            propose.to,
            jid("bob@localhost"),
            "proposals go to the bare JID"
        );
        let Jmi::Propose { id, .. } = wire(&propose) else {
            panic!("not a propose")
        };
        let mut b = JmiCall::incoming(&id, &bob_phone, &alice);
        // Nothing to finish before a device proceeded.
        assert_eq!(b.finish("success"), None);
        let ring = b.ring().expect("ringing");
        assert_eq!(
            ring.to,
            jid("alice@localhost"),
            "ringing goes to the caller's bare JID"
        );
        assert_eq!(b.ring(), None, "rings once");
        assert_eq!(
            a.handle(&bob_phone, &wire(&ring)),
            Some(JmiEvent::Ringing {
                device: bob_phone.clone()
            })
        );
        assert_eq!(a.state(), JmiState::Ringing);
        // Another id, or a stranger, is not this call.
        assert_eq!(
            a.handle(&bob_phone, &Jmi::Ringing { id: "s2".into() }),
            None
        );
        assert_eq!(
            a.handle(
                &jid("mallory@localhost/x"),
                &Jmi::Proceed { id: "s1".into() }
            ),
            None
        );
        let proceed = b.proceed().expect("proceed");
        assert_eq!(b.reject("busy"), None, "decided");
        assert_eq!(
            a.handle(&bob_phone, &wire(&proceed)),
            Some(JmiEvent::Proceed {
                device: bob_phone.clone()
            })
        );
        assert_eq!(a.device, Some(bob_phone.clone()));
        // A second device proceeding late, or a late reject, changes nothing; nor can we retract.
        assert_eq!(
            a.handle(
                &jid("bob@localhost/tablet"),
                &Jmi::Proceed { id: "s1".into() }
            ),
            None
        );
        assert_eq!(
            a.handle(
                &bob_phone,
                &Jmi::Reject {
                    id: "s1".into(),
                    reason: None
                }
            ),
            None
        );
        assert_eq!(a.retract(), None);
        assert_eq!(a.state(), JmiState::Proceeded);
        // The Jingle session ran and ended: alice finishes, bob learns it and finishes too.
        let fin = a.finish("success").expect("finish");
        assert_eq!(fin.to, jid("bob@localhost"));
        assert_eq!(a.finish("success"), None, "finish is sent once");
        let got = wire(&fin);
        assert_eq!(
            b.handle(&alice, &got),
            Some(JmiEvent::Finished(Some(Reason {
                condition: "success".into(),
                text: None
            })))
        );
        let fin_b = b
            .finish("success")
            .expect("the responder's finish after the peer's");
        assert_eq!(fin_b.to, jid("alice@localhost"));
        assert!(matches!(
            a.handle(&bob_phone, &wire(&fin_b)),
            Some(JmiEvent::Finished(_))
        ));
        assert!(a.is_over() && b.is_over());
        assert_eq!(b.finish("success"), None);
    }

    #[test]
    fn reject_retract_and_a_call_taken_on_another_device() {
        let alice = jid("alice@localhost/desk");
        let bob = jid("bob@localhost/phone");
        // Rejected while ringing: busy, no finish afterwards.
        let (mut a, _) = JmiCall::propose("s1", &alice, &jid("bob@localhost"), &["audio"]);
        let mut b = JmiCall::incoming("s1", &bob, &alice);
        let ring = b.ring().expect("ring");
        a.handle(&bob, &wire(&ring));
        let rej = b.reject("busy").expect("reject");
        assert_eq!(b.proceed(), None);
        match a.handle(&bob, &wire(&rej)) {
            Some(JmiEvent::Rejected(Some(r))) => assert_eq!(r.condition, "busy"),
            other => panic!("{other:?}"),
        }
        assert_eq!(a.state(), JmiState::Rejected);
        assert_eq!(a.finish("success"), None);
        assert_eq!(b.finish("success"), None);
        // Retracted: cancel reason; the callee stops ringing and cannot proceed any more.
        let (mut a, _) = JmiCall::propose("s2", &alice, &jid("bob@localhost"), &["audio"]);
        let mut b = JmiCall::incoming("s2", &bob, &alice);
        b.ring();
        let x = a.retract().expect("retract");
        assert_eq!(a.retract(), None);
        match b.handle(&alice, &wire(&x)) {
            Some(JmiEvent::Retracted(Some(r))) => assert_eq!(r.condition, "cancel"),
            other => panic!("{other:?}"),
        }
        assert_eq!(b.proceed(), None);
        assert_eq!(
            a.handle(&bob, &Jmi::Proceed { id: "s2".into() }),
            None,
            "a proceed after our retract is ignored"
        );
        // Our other device took the call (its proceed reaches us as a carbon).
        let mut b = JmiCall::incoming("s3", &bob, &alice);
        b.ring();
        assert_eq!(
            b.handle(
                &jid("bob@localhost/tablet"),
                &Jmi::Proceed { id: "s3".into() }
            ),
            Some(JmiEvent::HandledElsewhere)
        );
        assert_eq!(b.proceed(), None);
        // A peer's finish before anything was proceeded is out of order.
        let mut b = JmiCall::incoming("s4", &bob, &alice);
        let fin = Jmi::Finish {
            id: "s4".into(),
            reason: reason("success"),
            migrated: None,
        };
        assert_eq!(b.handle(&alice, &fin), None);
        assert_eq!(b.state(), JmiState::Proposed);
    }
}
