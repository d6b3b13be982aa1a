//! Natter's XMPP client and Jingle voice calls.
//!
//! Layers, each sans-IO except the last:
//! - [`xml`]: a bounded streaming XML parser (quick-xml) and element tree;
//! - [`client`]: the RFC 6120/6121 client stream (STARTTLS, SASL SCRAM/PLAIN, binding,
//!   XEP-0198 stream management, XEP-0199 ping, XEP-0030/0115 disco and caps);
//! - [`extdisco`]: XEP-0215 external services (TURN credentials);
//! - [`jingle`]: XEP-0166/0167/0176/0320 model, Jingle ⇄ SDP mapping, the session state
//!   machine, and XEP-0353 message initiation;
//! - [`driver`]: tokio: the TCP/TLS connection, the call composed from natter-phone's
//!   media session and natter-ice-io's transport.

pub mod caps;
pub mod client;
pub mod driver;
pub mod extdisco;
pub mod jid;
pub mod jingle;
pub mod ns;
pub mod sasl;
pub mod xml;

pub use client::{Client, ClientConfig, ClientError, Event, TlsPolicy};
pub use jid::Jid;
