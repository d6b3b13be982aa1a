//! Dialogs (RFC 3261 §12): creation on either side, route set, CSeq
//! bookkeeping, remote-target refresh and in-dialog request construction.

use std::borrow::Cow;

use crate::error::ParseError;
use crate::header::HeaderName;
use crate::message::Message;
use crate::method::Method;

/// Dialog identifier: Call-ID plus both tags (§12).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
}

/// Early (after a 1xx with To tag) or confirmed (after a 2xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a provisional response.
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
}

/// Dialog state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// Identifier.
    pub id: DialogId,
    /// Early or confirmed.
    pub state: DialogState,
    /// Last CSeq we used.
    pub local_seq: u32,
    /// Highest CSeq seen from the peer.
    pub remote_seq: Option<u32>,
    /// Our URI (From of our requests) as a header value without tag.
    pub local_uri: String,
    /// The peer's URI as a header value without tag.
    pub remote_uri: String,
    /// Where in-dialog requests go (the peer's Contact URI).
    pub remote_target: String,
    /// Route set (Route header values, in order).
    pub route_set: Vec<String>,
}

/// The value of a From/To header without its `tag` parameter.
fn without_tag(v: &str) -> String {
    let mut out = String::new();
    let mut in_quote = false;
    let mut in_angle = false;
    let mut start = 0;
    let bytes = v.as_bytes();
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => in_quote = !in_quote,
            b'<' if !in_quote => in_angle = true,
            b'>' if !in_quote => in_angle = false,
            b';' if !in_quote && !in_angle => {
                let end = v
                    .get(i + 1..)
                    .and_then(|r| r.find(';'))
                    .map_or(v.len(), |e| i + 1 + e);
                let param = v.get(i + 1..end).unwrap_or("");
                let name = param.split('=').next().unwrap_or("").trim();
                if name.eq_ignore_ascii_case("tag") {
                    cuts.push((i, end));
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    for (a, b) in cuts {
        out.push_str(v.get(start..a).unwrap_or(""));
        start = b;
    }
    out.push_str(v.get(start..).unwrap_or(""));
    out.trim().to_owned()
}

fn contact_uri(msg: &Message<'_>) -> Option<String> {
    match msg.contacts().ok()?.into_iter().next()? {
        crate::addr::Contact::Addr(a) => Some(a.uri.to_string()),
        crate::addr::Contact::Star => None,
    }
}

impl Dialog {
    /// UAC side (§12.1.2): from our request and a 1xx/2xx carrying a To tag.
    pub fn from_uac(req: &Message<'_>, resp: &Message<'_>) -> Result<Dialog, ParseError> {
        let to = resp.to()?;
        let remote_tag = to.tag().ok_or(ParseError::BadHeader("To"))?.to_owned();
        let from = req.from()?;
        let local_tag = from.tag().ok_or(ParseError::BadHeader("From"))?.to_owned();
        let mut route_set: Vec<String> = resp
            .addr_list(HeaderName::RecordRoute)?
            .iter()
            .map(ToString::to_string)
            .collect();
        route_set.reverse();
        let code = resp.code().unwrap_or(0);
        Ok(Dialog {
            id: DialogId {
                call_id: req.call_id()?.to_owned(),
                local_tag,
                remote_tag,
            },
            state: if (200..300).contains(&code) {
                DialogState::Confirmed
            } else {
                DialogState::Early
            },
            local_seq: req.cseq()?.seq,
            remote_seq: None,
            local_uri: without_tag(req.header(HeaderName::From).unwrap_or("")),
            remote_uri: without_tag(resp.header(HeaderName::To).unwrap_or("")),
            remote_target: contact_uri(resp)
                .unwrap_or_else(|| req.request_uri_str().unwrap_or("").to_owned()),
            route_set,
        })
    }

    /// UAS side (§12.1.1): from the received request and the tag we put in To.
    pub fn from_uas(
        req: &Message<'_>,
        local_tag: &str,
        confirmed: bool,
    ) -> Result<Dialog, ParseError> {
        let from = req.from()?;
        let remote_tag = from.tag().unwrap_or("").to_owned();
        let route_set = req
            .addr_list(HeaderName::RecordRoute)?
            .iter()
            .map(ToString::to_string)
            .collect();
        Ok(Dialog {
            id: DialogId {
                call_id: req.call_id()?.to_owned(),
                local_tag: local_tag.to_owned(),
                remote_tag,
            },
            state: if confirmed {
                DialogState::Confirmed
            } else {
                DialogState::Early
            },
            local_seq: 0,
            remote_seq: Some(req.cseq()?.seq),
            local_uri: without_tag(req.header(HeaderName::To).unwrap_or("")),
            remote_uri: without_tag(req.header(HeaderName::From).unwrap_or("")),
            remote_target: contact_uri(req).unwrap_or_default(),
            route_set,
        })
    }

    /// Update from a later response on the UAC side (early -> confirmed,
    /// target refresh from the 2xx Contact, §12.2.1.2).
    pub fn update_from_response(&mut self, resp: &Message<'_>) {
        if resp.code().is_some_and(|c| (200..300).contains(&c)) {
            if self.state == DialogState::Early {
                // The route set is recomputed from the 2xx (§13.2.2.4).
                if let Ok(rr) = resp.addr_list(HeaderName::RecordRoute) {
                    self.route_set = rr.iter().rev().map(ToString::to_string).collect();
                }
            }
            self.state = DialogState::Confirmed;
        }
        if let Some(t) = contact_uri(resp) {
            self.remote_target = t;
        }
    }

    /// Check and record an in-dialog request from the peer (§12.2.2).
    /// Returns `false` when its CSeq is out of order (answer 500).
    pub fn on_request(&mut self, req: &Message<'_>) -> bool {
        let Ok(cseq) = req.cseq() else { return false };
        let is_ack = cseq.method == Method::Ack;
        if !is_ack {
            if self.remote_seq.is_some_and(|r| cseq.seq <= r) && cseq.method != Method::Cancel {
                return false;
            }
            self.remote_seq = Some(cseq.seq);
        }
        // Target refresh requests (§12.2.2): re-INVITE and UPDATE.
        if matches!(cseq.method, Method::Invite | Method::Update) {
            if let Some(t) = contact_uri(req) {
                self.remote_target = t;
            }
        }
        true
    }

    /// Build an in-dialog request (§12.2.1.1). `ACK` reuses the INVITE's
    /// CSeq number (pass it as `ack_seq`); everything else takes the next one.
    /// Via must be added by the caller.
    pub fn request(&mut self, method: Method<'static>, ack_seq: Option<u32>) -> Message<'static> {
        let seq = match (method.clone(), ack_seq) {
            (Method::Ack, Some(s)) => s,
            _ => {
                self.local_seq += 1;
                self.local_seq
            }
        };
        // Loose routing only: Request-URI = remote target, Route = route set.
        let mut m = Message::request(method.clone(), Cow::Owned(self.remote_target.clone()));
        for r in &self.route_set {
            m.push(HeaderName::Route, r.clone());
        }
        m.push(HeaderName::MaxForwards, "70");
        m.push(
            HeaderName::From,
            format!("{};tag={}", self.local_uri, self.id.local_tag),
        );
        let to = if self.id.remote_tag.is_empty() {
            self.remote_uri.clone()
        } else {
            format!("{};tag={}", self.remote_uri, self.id.remote_tag)
        };
        m.push(HeaderName::To, to);
        m.push(HeaderName::CallId, self.id.call_id.clone());
        m.push(HeaderName::CSeq, format!("{seq} {}", method.as_str()));
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Record-Route: <sip:p2.biloxi.example.com;lr>, <sip:p1.atlanta.example.com;lr>\r\n\
Content-Length: 0\r\n\r\n";

    const OK: &str = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8\r\n\
To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:bob@192.0.2.4>\r\n\
Record-Route: <sip:p2.biloxi.example.com;lr>, <sip:p1.atlanta.example.com;lr>\r\n\
Content-Length: 0\r\n\r\n";

    #[test]
    fn uac_dialog_and_bye() {
        let req = Message::parse(INVITE.as_bytes()).unwrap();
        let resp = Message::parse(OK.as_bytes()).unwrap();
        let mut d = Dialog::from_uac(&req, &resp).unwrap();
        assert_eq!(d.state, DialogState::Confirmed);
        assert_eq!(d.id.remote_tag, "a6c85cf");
        assert_eq!(d.remote_target, "sip:bob@192.0.2.4");
        assert_eq!(
            d.route_set,
            vec![
                "<sip:p1.atlanta.example.com;lr>",
                "<sip:p2.biloxi.example.com;lr>"
            ]
        );
        let bye = d.request(Method::Bye, None);
        let expected = "BYE sip:bob@192.0.2.4 SIP/2.0\r\n\
Route: <sip:p1.atlanta.example.com;lr>\r\n\
Route: <sip:p2.biloxi.example.com;lr>\r\n\
Max-Forwards: 70\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 314160 BYE\r\n\r\n";
        assert_eq!(String::from_utf8(bye.to_bytes()).unwrap(), expected);
        let ack = d.request(Method::Ack, Some(314159));
        assert_eq!(ack.cseq().unwrap().seq, 314159);
    }

    #[test]
    fn uas_dialog_cseq_and_target_refresh() {
        let req = Message::parse(INVITE.as_bytes()).unwrap();
        let mut d = Dialog::from_uas(&req, "a6c85cf", true).unwrap();
        assert_eq!(
            d.route_set,
            vec![
                "<sip:p2.biloxi.example.com;lr>",
                "<sip:p1.atlanta.example.com;lr>"
            ]
        );
        assert_eq!(d.remote_target, "sip:alice@pc33.atlanta.example.com");
        assert_eq!(d.local_uri, "Bob <sip:bob@biloxi.example.com>");
        let reinvite = INVITE.replace("CSeq: 314159", "CSeq: 314160").replace(
            "Contact: <sip:alice@pc33.atlanta.example.com>",
            "Contact: <sip:alice@192.0.2.9>",
        );
        assert!(d.on_request(&Message::parse(reinvite.as_bytes()).unwrap()));
        assert_eq!(d.remote_target, "sip:alice@192.0.2.9");
        // Old CSeq again: out of order.
        assert!(!d.on_request(&Message::parse(reinvite.as_bytes()).unwrap()));
    }

    #[test]
    fn tag_stripping() {
        assert_eq!(
            without_tag("\"A;tag=x\" <sip:a@b;tag=y>;tag=1;foo=2"),
            "\"A;tag=x\" <sip:a@b;tag=y>;foo=2"
        );
        assert_eq!(without_tag("sip:a@b;tag=1"), "sip:a@b");
    }
}
