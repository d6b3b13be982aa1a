//! XEP-0215 external service discovery (`urn:xmpp:extdisco:2`): the server hands out STUN
//! and TURN servers with short-lived credentials (Prosody's mod_turn_external uses the
//! TURN REST scheme that `natter serve --auth-secret` checks).

use crate::ns;
use crate::xml::Element;

/// One advertised service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// `stun`, `turn`, `turns`, ...
    pub kind: String,
    /// Host name or address.
    pub host: String,
    /// Port (the scheme's default when absent).
    pub port: u16,
    /// `udp` or `tcp`.
    pub transport: String,
    /// Credentials, when the service needs them.
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// Expiry as the server wrote it (ISO 8601).
    pub expires: Option<String>,
}

impl Service {
    /// Whether this is TURN over UDP with credentials (what an ICE agent can use).
    pub fn is_turn_udp(&self) -> bool {
        self.kind == "turn" && self.transport == "udp" && self.username.is_some()
    }
}

/// The IQ payload asking for every service.
pub fn request() -> Element {
    Element::new("services", ns::EXTDISCO)
}

/// Services in an IQ result (unknown or incomplete entries are skipped).
pub fn parse(iq: &Element) -> Vec<Service> {
    let Some(s) = iq.child("services", ns::EXTDISCO) else {
        return Vec::new();
    };
    s.children_named("service", ns::EXTDISCO)
        .filter_map(|e| {
            let kind = e.attr("type")?.to_ascii_lowercase();
            let default_port = if kind.ends_with('s') { 5349 } else { 3478 };
            Some(Service {
                host: e.attr("host").filter(|h| !h.is_empty())?.to_owned(),
                port: match e.attr("port") {
                    Some(p) => p.parse().ok()?,
                    None => default_port,
                },
                transport: e.attr("transport").unwrap_or("udp").to_ascii_lowercase(),
                username: e.attr("username").map(str::to_owned),
                password: e.attr("password").map(str::to_owned),
                expires: e.attr("expires").map(str::to_owned),
                kind,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_element;

    #[test]
    fn prosody_turn_external_answer() {
        let iq = parse_element(
            "<iq type='result' xmlns='jabber:client'><services xmlns='urn:xmpp:extdisco:2'>\
             <service type='stun' host='127.0.0.1' port='3478' transport='udp'/>\
             <service type='turn' host='127.0.0.1' port='3478' transport='udp' username='1700000000' password='c2VjcmV0' expires='2023-11-14T22:13:20Z' restricted='1'/>\
             <service type='turn' port='3478'/></services></iq>",
        )
        .expect("parse");
        let s = parse(&iq);
        assert_eq!(s.len(), 2);
        assert!(!s[0].is_turn_udp());
        assert!(s[1].is_turn_udp());
        assert_eq!(s[1].username.as_deref(), Some("1700000000"));
        assert_eq!(s[1].port, 3478);
    }
}
