//! Header names (with RFC 3261 §7.3.3 compact forms) and raw header fields.

use std::borrow::Cow;

macro_rules! header_names {
    ($( $variant:ident => $canon:literal $(, $compact:literal)? ; )*) => {
        /// Headers the stack knows by name. Anything else is `Other` and is
        /// carried verbatim.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum HeaderName {
            $( #[doc = $canon] $variant, )*
            /// Extension or unknown header.
            Other,
        }

        impl HeaderName {
            /// Look up a wire name (case-insensitive, compact forms accepted).
            pub fn from_wire(name: &str) -> HeaderName {
                $(
                    if name.eq_ignore_ascii_case($canon) $( || name.eq_ignore_ascii_case($compact) )? {
                        return HeaderName::$variant;
                    }
                )*
                HeaderName::Other
            }

            /// Canonical long form (`Other` has none: empty string).
            pub fn as_str(self) -> &'static str {
                match self {
                    $( HeaderName::$variant => $canon, )*
                    HeaderName::Other => "",
                }
            }
        }
    };
}

header_names! {
    Via => "Via", "v";
    From => "From", "f";
    To => "To", "t";
    CallId => "Call-ID", "i";
    CSeq => "CSeq";
    Contact => "Contact", "m";
    ContentLength => "Content-Length", "l";
    ContentType => "Content-Type", "c";
    ContentEncoding => "Content-Encoding", "e";
    MaxForwards => "Max-Forwards";
    Route => "Route";
    RecordRoute => "Record-Route";
    Expires => "Expires";
    MinExpires => "Min-Expires";
    Authorization => "Authorization";
    ProxyAuthorization => "Proxy-Authorization";
    WwwAuthenticate => "WWW-Authenticate";
    ProxyAuthenticate => "Proxy-Authenticate";
    AuthenticationInfo => "Authentication-Info";
    Allow => "Allow";
    Supported => "Supported", "k";
    Require => "Require";
    ProxyRequire => "Proxy-Require";
    Unsupported => "Unsupported";
    Subject => "Subject", "s";
    Date => "Date";
    Path => "Path";
    Accept => "Accept";
    AcceptEncoding => "Accept-Encoding";
    AcceptLanguage => "Accept-Language";
    UserAgent => "User-Agent";
    Server => "Server";
    RetryAfter => "Retry-After";
    Timestamp => "Timestamp";
    Warning => "Warning";
    Event => "Event", "o";
    AllowEvents => "Allow-Events", "u";
    ReferTo => "Refer-To", "r";
    ReferredBy => "Referred-By", "b";
    SessionExpires => "Session-Expires", "x";
    Identity => "Identity", "y";
    RSeq => "RSeq";
    RAck => "RAck";
    Reason => "Reason";
    ContentDisposition => "Content-Disposition";
    ContentLanguage => "Content-Language";
    MimeVersion => "MIME-Version";
    Organization => "Organization";
    Priority => "Priority";
    ReplyTo => "Reply-To";
    InReplyTo => "In-Reply-To";
    AlertInfo => "Alert-Info";
    CallInfo => "Call-Info";
    ErrorInfo => "Error-Info";
}

impl HeaderName {
    /// Headers that may be combined into one comma-separated line (RFC 3261
    /// §7.3.1). Authorization-family headers are excluded: their values contain
    /// commas but are not lists.
    pub fn is_list(self) -> bool {
        matches!(
            self,
            HeaderName::Via
                | HeaderName::Contact
                | HeaderName::Route
                | HeaderName::RecordRoute
                | HeaderName::Path
                | HeaderName::Allow
                | HeaderName::Supported
                | HeaderName::Require
                | HeaderName::ProxyRequire
                | HeaderName::Unsupported
                | HeaderName::Accept
                | HeaderName::AcceptEncoding
                | HeaderName::AcceptLanguage
                | HeaderName::AllowEvents
                | HeaderName::ContentEncoding
                | HeaderName::ContentLanguage
                | HeaderName::Warning
                | HeaderName::AlertInfo
                | HeaderName::CallInfo
                | HeaderName::ErrorInfo
                | HeaderName::InReplyTo
                | HeaderName::Reason
        )
    }
}

/// One header field as received: the name as spelled on the wire and the
/// value with folding removed and surrounding whitespace trimmed. Single-line
/// values borrow from the input; unfolded values are owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    /// Recognised name (`Other` for extensions).
    pub kind: HeaderName,
    /// Name as written.
    pub name: Cow<'a, str>,
    /// Unfolded, trimmed value.
    pub value: Cow<'a, str>,
}

impl<'a> Header<'a> {
    /// Build a header with the canonical name of `kind`.
    pub fn new(kind: HeaderName, value: impl Into<Cow<'a, str>>) -> Header<'a> {
        Header {
            kind,
            name: Cow::Borrowed(kind.as_str()),
            value: value.into(),
        }
    }

    /// Build an extension header.
    pub fn other(name: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) -> Header<'a> {
        let name = name.into();
        Header {
            kind: HeaderName::from_wire(&name),
            name,
            value: value.into(),
        }
    }

    /// Detach from the input buffer.
    pub fn into_owned(self) -> Header<'static> {
        // Names spelled canonically (the common case) point at the static
        // string instead of allocating a copy.
        let canonical = self.kind.as_str();
        let name = if !canonical.is_empty() && self.name == canonical {
            Cow::Borrowed(canonical)
        } else {
            Cow::Owned(self.name.into_owned())
        };
        Header {
            kind: self.kind,
            name,
            value: Cow::Owned(self.value.into_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_forms() {
        assert_eq!(HeaderName::from_wire("v"), HeaderName::Via);
        assert_eq!(HeaderName::from_wire("VIA"), HeaderName::Via);
        assert_eq!(HeaderName::from_wire("i"), HeaderName::CallId);
        assert_eq!(HeaderName::from_wire("L"), HeaderName::ContentLength);
        assert_eq!(HeaderName::from_wire("m"), HeaderName::Contact);
        assert_eq!(HeaderName::from_wire("C%6Fntact"), HeaderName::Other);
        assert_eq!(HeaderName::CallId.as_str(), "Call-ID");
    }
}
