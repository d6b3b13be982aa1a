//! natter-sip: a sans-IO SIP stack (RFC 3261).
//!
//! * Message model, zero-copy parser and writer ([`Message`], [`parse`](Message::parse),
//!   [`to_bytes`](Message::to_bytes)), typed views of the headers the stack
//!   relies on ([`Via`], [`NameAddr`], [`CSeq`], [`Uri`]), stream framing
//!   ([`StreamFramer`]).
//! * Transaction layer ([`transaction`]): the four RFC 3261 §17 state machines
//!   with RFC 6026 fixes, driven by explicit `Instant`s.
//! * Digest authentication ([`digest`]): RFC 8760 / 7616 / 2617 client and server.
//!
//! No sockets, no clocks: callers pass bytes and time in and get bytes and
//! deadlines out.

pub mod addr;
pub mod build;
pub mod dialog;
pub mod digest;

pub mod error;
pub mod framer;
pub mod header;
pub mod message;
pub mod method;
pub mod parser;
pub mod syntax;
pub mod transaction;
pub mod ua;

pub mod uri;
pub mod via;
mod writer;

pub use addr::{Contact, DisplayName, NameAddr};
pub use error::ParseError;
pub use framer::{Frame, StreamFramer};
pub use header::{Header, HeaderName};
pub use message::{CSeq, Message, StartLine};
pub use method::Method;
pub use parser::{Framing, Limits, Views};
pub use syntax::Param;
pub use uri::{Scheme, Uri};
pub use via::{Via, MAGIC_COOKIE};
