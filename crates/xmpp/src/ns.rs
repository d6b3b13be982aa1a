//! Namespaces used by the client and Jingle.

/// Client stanzas.
pub const CLIENT: &str = "jabber:client";
/// STARTTLS.
pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// SASL.
pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// Resource binding.
pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
/// Stanza error conditions.
pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// Stream error conditions.
pub const STREAMS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// XEP-0198 stream management.
pub const SM: &str = "urn:xmpp:sm:3";
/// XEP-0199 ping.
pub const PING: &str = "urn:xmpp:ping";
/// XEP-0030 disco#info.
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// XEP-0115 entity capabilities.
pub const CAPS: &str = "http://jabber.org/protocol/caps";
/// RFC 6121 roster.
pub const ROSTER: &str = "jabber:iq:roster";
/// XEP-0215 external service discovery.
pub const EXTDISCO: &str = "urn:xmpp:extdisco:2";
/// XEP-0166 Jingle.
pub const JINGLE: &str = "urn:xmpp:jingle:1";
/// XEP-0166 Jingle errors.
pub const JINGLE_ERRORS: &str = "urn:xmpp:jingle:errors:1";
/// XEP-0167 RTP sessions.
pub const JINGLE_RTP: &str = "urn:xmpp:jingle:apps:rtp:1";
/// XEP-0167 audio (a disco feature).
pub const JINGLE_RTP_AUDIO: &str = "urn:xmpp:jingle:apps:rtp:audio";
/// XEP-0293 RTCP feedback.
pub const JINGLE_RTCP_FB: &str = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0";
/// XEP-0294 RTP header extensions.
pub const JINGLE_HDREXT: &str = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0";
/// XEP-0339 source-specific media attributes.
pub const JINGLE_SSMA: &str = "urn:xmpp:jingle:apps:rtp:ssma:0";
/// XEP-0176 ICE-UDP transport.
pub const JINGLE_ICE_UDP: &str = "urn:xmpp:jingle:transports:ice-udp:1";
/// XEP-0320 DTLS-SRTP fingerprints.
pub const JINGLE_DTLS: &str = "urn:xmpp:jingle:apps:dtls:0";
/// XEP-0338 grouping (BUNDLE).
pub const JINGLE_GROUPING: &str = "urn:xmpp:jingle:apps:grouping:0";
/// XEP-0353 Jingle Message Initiation.
pub const JMI: &str = "urn:xmpp:jingle-message:0";
/// XEP-0334 message processing hints.
pub const HINTS: &str = "urn:xmpp:hints";
