//! XEP-0353 Jingle Message Initiation: a call announced in a `<message/>` to the callee's
//! bare JID, so every device of the callee learns of it and the one that takes it answers
//! `proceed` from its full JID; the caller then sends `session-initiate` there.

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
    /// Another device of the callee took it (sent to the callee's own bare JID).
    Accept {
        /// sid.
        id: String,
    },
    /// The callee declines.
    Reject {
        /// sid.
        id: String,
    },
    /// The caller withdraws the proposal.
    Retract {
        /// sid.
        id: String,
    },
    /// The callee's device rings.
    Ringing {
        /// sid.
        id: String,
    },
}

impl Jmi {
    /// The session id it is about.
    pub fn id(&self) -> &str {
        match self {
            Jmi::Propose { id, .. }
            | Jmi::Proceed { id }
            | Jmi::Accept { id }
            | Jmi::Reject { id }
            | Jmi::Retract { id }
            | Jmi::Ringing { id } => id,
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
            "reject" => Jmi::Reject { id },
            "retract" => Jmi::Retract { id },
            "ringing" => Jmi::Ringing { id },
            _ => return None,
        })
    }

    fn element(&self) -> Element {
        let (name, id) = match self {
            Jmi::Propose { id, .. } => ("propose", id),
            Jmi::Proceed { id } => ("proceed", id),
            Jmi::Accept { id } => ("accept", id),
            Jmi::Reject { id } => ("reject", id),
            Jmi::Retract { id } => ("retract", id),
            Jmi::Ringing { id } => ("ringing", id),
        };
        let mut e = Element::new(name, ns::JMI).with_attr("id", id.clone());
        if let Jmi::Propose { media, .. } = self {
            for m in media {
                e.push(Element::new("description", ns::JINGLE_RTP).with_attr("media", m.clone()));
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_element;

    #[test]
    fn propose_round_trip_and_conversations_style_proceed() {
        let to = Jid::parse("bob@localhost").expect("jid");
        let p = Jmi::Propose {
            id: "s1".into(),
            media: vec!["audio".into()],
        };
        let m = p.to_message(&to, "m1");
        let back = parse_element(&m.to_xml()).expect("xml");
        assert_eq!(Jmi::parse(&back), Some(p));
        let proceed = parse_element(
            "<message xmlns='jabber:client' from='bob@localhost/phone' type='chat'><proceed xmlns='urn:xmpp:jingle-message:0' id='s1'><device xmlns='http://gultsch.de/xmpp/drafts/omemo/dlts-srtp-verification' id='1'/></proceed></message>",
        )
        .expect("xml");
        assert_eq!(Jmi::parse(&proceed), Some(Jmi::Proceed { id: "s1".into() }));
        let plain =
            parse_element("<message xmlns='jabber:client'><body>hi</body></message>").expect("xml");
        assert_eq!(Jmi::parse(&plain), None);
    }
}
