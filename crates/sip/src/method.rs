//! Request methods. Unknown methods are kept verbatim (RFC 3261 §8.2.1: a UAS
//! answers 501/405; a proxy forwards them).

use std::borrow::Cow;
use std::fmt;

use crate::error::ParseError;
use crate::syntax::is_token;

/// A SIP request method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method<'a> {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// OPTIONS
    Options,
    /// REGISTER
    Register,
    /// PRACK (RFC 3262)
    Prack,
    /// SUBSCRIBE
    Subscribe,
    /// NOTIFY
    Notify,
    /// PUBLISH
    Publish,
    /// INFO
    Info,
    /// REFER
    Refer,
    /// MESSAGE (RFC 3428)
    Message,
    /// UPDATE (RFC 3311)
    Update,
    /// Any other token, case preserved (methods are case-sensitive).
    Extension(Cow<'a, str>),
}

impl<'a> Method<'a> {
    /// Parse a method token (case-sensitive, RFC 3261 §7.1).
    pub fn parse(s: &'a str) -> Result<Method<'a>, ParseError> {
        if !is_token(s) {
            return Err(ParseError::BadValue("method"));
        }
        Ok(match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "PUBLISH" => Method::Publish,
            "INFO" => Method::Info,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "UPDATE" => Method::Update,
            other => Method::Extension(Cow::Borrowed(other)),
        })
    }

    /// Wire spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Publish => "PUBLISH",
            Method::Info => "INFO",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Update => "UPDATE",
            Method::Extension(s) => s,
        }
    }

    /// Detach from the input buffer.
    pub fn into_owned(self) -> Method<'static> {
        match self {
            Method::Extension(s) => Method::Extension(Cow::Owned(s.into_owned())),
            Method::Invite => Method::Invite,
            Method::Ack => Method::Ack,
            Method::Bye => Method::Bye,
            Method::Cancel => Method::Cancel,
            Method::Options => Method::Options,
            Method::Register => Method::Register,
            Method::Prack => Method::Prack,
            Method::Subscribe => Method::Subscribe,
            Method::Notify => Method::Notify,
            Method::Publish => Method::Publish,
            Method::Info => Method::Info,
            Method::Refer => Method::Refer,
            Method::Message => Method::Message,
            Method::Update => Method::Update,
        }
    }
}

impl fmt::Display for Method<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
