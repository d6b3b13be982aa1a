//! XEP-0030 disco#info about ourselves and the XEP-0115 capabilities hash that stands for
//! it in presence, so a caller can tell which of our resources does Jingle audio.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::ns;
use crate::xml::Element;

/// Our caps node (XEP-0115 §4: a URI for the software).
pub const NODE: &str = "https://natter.invalid/xmpp";
/// Identity: category/type/lang/name.
const IDENTITY: (&str, &str, &str, &str) = ("client", "phone", "", "Natter");

/// What a Natter phone supports.
pub fn default_features() -> Vec<String> {
    [
        ns::DISCO_INFO,
        ns::CAPS,
        ns::PING,
        ns::JINGLE,
        ns::JINGLE_RTP,
        ns::JINGLE_RTP_AUDIO,
        ns::JINGLE_ICE_UDP,
        ns::JINGLE_DTLS,
        ns::JINGLE_RTCP_FB,
        ns::JINGLE_HDREXT,
        ns::JMI,
        "urn:ietf:rfc:5761",
        "urn:ietf:rfc:5888",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The XEP-0115 §5.1 verification string's SHA-1, base64: identities `c/t/lang/name<`,
/// then sorted features each followed by `<`.
pub fn ver(identities: &[(&str, &str, &str, &str)], features: &[String]) -> String {
    let mut ids: Vec<String> = identities
        .iter()
        .map(|(c, t, l, n)| format!("{c}/{t}/{l}/{n}<"))
        .collect();
    ids.sort();
    let mut feats: Vec<&String> = features.iter().collect();
    feats.sort();
    feats.dedup();
    let mut s = ids.concat();
    for f in feats {
        s.push_str(f);
        s.push('<');
    }
    B64.encode(Sha1::digest(s.as_bytes()))
}

/// `<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node=... ver=.../>`.
pub fn caps_element(features: &[String]) -> Element {
    Element::new("c", ns::CAPS)
        .with_attr("hash", "sha-1")
        .with_attr("node", NODE)
        .with_attr("ver", ver(&[IDENTITY], features))
}

/// Our disco#info answer (for the bare query or `node#ver`).
pub fn disco_info(features: &[String], node: Option<&str>) -> Element {
    let mut q = Element::new("query", ns::DISCO_INFO);
    if let Some(n) = node {
        q.set_attr("node", n);
    }
    q.push(
        Element::new("identity", ns::DISCO_INFO)
            .with_attr("category", IDENTITY.0)
            .with_attr("type", IDENTITY.1)
            .with_attr("name", IDENTITY.3),
    );
    for f in features {
        q.push(Element::new("feature", ns::DISCO_INFO).with_attr("var", f.clone()));
    }
    q
}

/// Features listed in a disco#info result.
pub fn features_of(query: &Element) -> Vec<String> {
    query
        .children_named("feature", ns::DISCO_INFO)
        .filter_map(|f| f.attr("var").map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xep0115_simple_example() {
        // XEP-0115 §5.2.
        let f: Vec<String> = [
            "http://jabber.org/protocol/caps",
            "http://jabber.org/protocol/disco#info",
            "http://jabber.org/protocol/disco#items",
            "http://jabber.org/protocol/muc",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            ver(&[("client", "pc", "", "Exodus 0.9.1")], &f),
            "QgayPKawpkPSDYmwT/WM94uAlu0="
        );
    }

    #[test]
    fn disco_lists_jingle_audio() {
        let q = disco_info(&default_features(), None);
        assert!(features_of(&q).iter().any(|f| f == ns::JINGLE_RTP_AUDIO));
    }
}
