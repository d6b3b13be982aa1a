//! SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966), plus opaque absolute URIs.
//!
//! Components borrow from the input and keep their escapes: comparison helpers
//! unescape on demand, and the writer reproduces the original spelling.

use std::borrow::Cow;
use std::fmt;

use crate::error::ParseError;
use crate::syntax::Param;
use crate::syntax::{
    URI_HEADER as HEADER, URI_PARAM as PARAM, URI_PASSWORD as PASSWORD,
    URI_UNRESERVED as UNRESERVED, URI_USER as USER,
};

/// URI scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme<'a> {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
    /// `tel:`
    Tel,
    /// Any other absoluteURI scheme, kept opaque.
    Other(&'a str),
}

/// A parsed URI. For `tel:` the number is in `host`; for other schemes the
/// opaque part (after the colon) is in `host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri<'a> {
    /// Scheme.
    pub scheme: Scheme<'a>,
    /// User part (escaped as written).
    pub user: Option<&'a str>,
    /// Password (escaped as written).
    pub password: Option<&'a str>,
    /// Host name, IPv4 address or `[IPv6]` reference.
    pub host: &'a str,
    /// Explicit port.
    pub port: Option<u16>,
    /// `;name[=value]` URI parameters.
    pub params: Vec<Param<'a>>,
    /// `?h=v&...` headers.
    pub headers: Vec<Param<'a>>,
}

/// Check `s` only holds unreserved bytes, bytes of class `extra` and valid `%HH` escapes.
fn check_escaped(s: &str, extra: u16, what: &'static str) -> Result<(), ParseError> {
    let allowed = UNRESERVED | extra;
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let ok = b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return Err(ParseError::Uri(what));
            }
            i += 3;
            continue;
        }
        if !crate::syntax::is(c, allowed) {
            return Err(ParseError::Uri(what));
        }
        i += 1;
    }
    Ok(())
}

/// Resolve `%HH` escapes (invalid escapes are kept literally).
pub fn unescape(s: &str) -> Cow<'_, [u8]> {
    if !s.contains('%') {
        return Cow::Borrowed(s.as_bytes());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = b.get(i + 1).and_then(|c| char::from(*c).to_digit(16));
            let lo = b.get(i + 2).and_then(|c| char::from(*c).to_digit(16));
            if let (Some(h), Some(l)) = (hi, lo) {
                out.push(u8::try_from(h * 16 + l).unwrap_or(0));
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Cow::Owned(out)
}

/// Validate a host: hostname, IPv4 or `[IPv6]`.
pub fn check_host(host: &str) -> Result<(), ParseError> {
    if host.is_empty() {
        return Err(ParseError::Uri("empty host"));
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or(ParseError::Uri("bad IPv6 reference"))?;
        return inner
            .parse::<std::net::Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| ParseError::Uri("bad IPv6 reference"));
    }
    // Labels of alphanumerics and '-', separated by single dots; a trailing
    // dot (FQDN) is allowed, empty inner labels are not.
    let b = host.as_bytes();
    let ok = b[0] != b'-'
        && b[0] != b'.'
        && b.iter().enumerate().all(|(i, &c)| {
            crate::syntax::is_host_byte(c)
                || (c == b'.' && b.get(i + 1).map_or(true, |&n| n != b'.'))
        });
    if ok {
        Ok(())
    } else {
        Err(ParseError::Uri("bad host"))
    }
}

/// Split `host[:port]` (IPv6 aware).
pub fn split_hostport(s: &str) -> Result<(&str, Option<u16>), ParseError> {
    let (host, port) = if s.starts_with('[') {
        let close =
            crate::syntax::find_byte(s, b']').ok_or(ParseError::Uri("bad IPv6 reference"))?;
        let host = s.get(..=close).unwrap_or("");
        let rest = s.get(close + 1..).unwrap_or("");
        match rest.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if rest.is_empty() => (host, None),
            None => return Err(ParseError::Uri("junk after IPv6 reference")),
        }
    } else {
        match crate::syntax::split_once_byte(s, b':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    check_host(host)?;
    let port = match port {
        Some(p) => {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseError::Uri("bad port"));
            }
            Some(p.parse::<u16>().map_err(|_| ParseError::Uri("bad port"))?)
        }
        None => None,
    };
    Ok((host, port))
}

fn uri_params(s: &str) -> Result<Vec<Param<'_>>, ParseError> {
    let mut out = Vec::new();
    for p in s.split(';') {
        let (name, value) = match crate::syntax::split_once_byte(p, b'=') {
            Some((n, v)) => (n, Some(v)),
            None => (p, None),
        };
        if name.is_empty() {
            return Err(ParseError::Uri("empty URI parameter"));
        }
        check_escaped(name, PARAM, "bad URI parameter")?;
        if let Some(v) = value {
            if v.is_empty() {
                return Err(ParseError::Uri("empty URI parameter value"));
            }
            check_escaped(v, PARAM, "bad URI parameter")?;
        }
        out.push(Param { name, value });
    }
    Ok(out)
}

fn uri_headers(s: &str) -> Result<Vec<Param<'_>>, ParseError> {
    let mut out = Vec::new();
    for h in s.split('&') {
        let (name, value) =
            crate::syntax::split_once_byte(h, b'=').ok_or(ParseError::Uri("bad URI header"))?;
        if name.is_empty() {
            return Err(ParseError::Uri("bad URI header"));
        }
        check_escaped(name, HEADER, "bad URI header")?;
        check_escaped(value, HEADER, "bad URI header")?;
        out.push(Param {
            name,
            value: Some(value),
        });
    }
    Ok(out)
}

fn scheme_ok(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|c| c.is_ascii_alphabetic())
        && bytes.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

impl<'a> Uri<'a> {
    /// Parse a URI (no surrounding whitespace or angle brackets).
    pub fn parse(s: &'a str) -> Result<Uri<'a>, ParseError> {
        let (scheme_str, rest) =
            crate::syntax::split_once_byte(s, b':').ok_or(ParseError::Uri("missing scheme"))?;
        if !scheme_ok(scheme_str) {
            return Err(ParseError::Uri("bad scheme"));
        }
        if rest.is_empty() {
            return Err(ParseError::Uri("empty URI"));
        }
        if s.bytes()
            .any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
        {
            return Err(ParseError::Uri("whitespace in URI"));
        }
        let scheme = if scheme_str.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme_str.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else if scheme_str.eq_ignore_ascii_case("tel") {
            Scheme::Tel
        } else {
            if rest.contains(['<', '>', '"']) {
                return Err(ParseError::Uri("bad character in URI"));
            }
            return Ok(Uri {
                scheme: Scheme::Other(scheme_str),
                user: None,
                password: None,
                host: rest,
                port: None,
                params: Vec::new(),
                headers: Vec::new(),
            });
        };
        if scheme == Scheme::Tel {
            let (number, params) = match crate::syntax::split_once_byte(rest, b';') {
                Some((n, p)) => (n, uri_params(p)?),
                None => (rest, Vec::new()),
            };
            let ok = !number.is_empty()
                && number.chars().all(|c| {
                    c.is_ascii_hexdigit() || matches!(c, '+' | '-' | '.' | '(' | ')' | '*' | '#')
                });
            if !ok {
                return Err(ParseError::Uri("bad telephone number"));
            }
            return Ok(Uri {
                scheme,
                user: None,
                password: None,
                host: number,
                port: None,
                params,
                headers: Vec::new(),
            });
        }
        // sip / sips: userinfo is everything before the first '@' (neither
        // parameters nor headers may contain an unescaped '@').
        let (userinfo, hostpart) = match crate::syntax::split_once_byte(rest, b'@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            Some(u) => {
                let (user, pw) = match crate::syntax::split_once_byte(u, b':') {
                    Some((a, b)) => (a, Some(b)),
                    None => (u, None),
                };
                if user.is_empty() {
                    return Err(ParseError::Uri("empty user"));
                }
                check_escaped(user, USER, "bad user part")?;
                if let Some(pw) = pw {
                    check_escaped(pw, PASSWORD, "bad password")?;
                }
                (Some(user), pw)
            }
            None => (None, None),
        };
        let (before_headers, headers) = match crate::syntax::split_once_byte(hostpart, b'?') {
            Some((a, h)) => (a, uri_headers(h)?),
            None => (hostpart, Vec::new()),
        };
        let (hostport, params) = match crate::syntax::split_once_byte(before_headers, b';') {
            Some((hp, p)) => (hp, uri_params(p)?),
            None => (before_headers, Vec::new()),
        };
        let (host, port) = split_hostport(hostport)?;
        Ok(Uri {
            scheme,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }

    /// True for `sip:` and `sips:`.
    pub fn is_sip(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }

    /// URI parameter by case-insensitive name.
    pub fn param(&self, name: &str) -> Option<&Param<'a>> {
        crate::syntax::find_param(&self.params, name)
    }

    /// `user@host` with escapes resolved and host lower-cased: the key a
    /// registrar uses for its location service (RFC 3261 §10.3 step 5).
    pub fn aor(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Sips => "sips",
            Scheme::Tel => "tel",
            Scheme::Other(s) => s,
            Scheme::Sip => "sip",
        };
        let mut out = String::with_capacity(self.host.len() + 16);
        out.push_str(scheme);
        out.push(':');
        if let Some(u) = self.user {
            out.push_str(&String::from_utf8_lossy(&unescape(u)));
            out.push('@');
        }
        out.push_str(&self.host.to_ascii_lowercase());
        out
    }

    /// Default port for the scheme when none is given.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(if self.scheme == Scheme::Sips {
            5061
        } else {
            5060
        })
    }
}

impl Scheme<'_> {
    /// The scheme's name, without the colon.
    pub fn as_str(&self) -> &str {
        match self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
            Scheme::Tel => "tel",
            Scheme::Other(s) => s,
        }
    }
}

impl fmt::Display for Scheme<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Uri<'_> {
    /// Writes the URI as [`fmt::Display`] shows it, piece by piece: the registrar writes
    /// every Contact it stores this way, and `format_args!` per piece cost more than the
    /// copying.
    pub fn write_into<W: fmt::Write>(&self, w: &mut W) -> fmt::Result {
        w.write_str(self.scheme.as_str())?;
        w.write_str(":")?;
        if let Some(u) = self.user {
            w.write_str(u)?;
            if let Some(p) = self.password {
                w.write_str(":")?;
                w.write_str(p)?;
            }
            w.write_str("@")?;
        }
        w.write_str(self.host)?;
        if let Some(p) = self.port {
            let (digits, start) = crate::syntax::decimal_digits(u32::from(p));
            w.write_str(":")?;
            w.write_str(
                std::str::from_utf8(digits.get(start..).unwrap_or_default()).unwrap_or_default(),
            )?;
        }
        for p in &self.params {
            w.write_str(";")?;
            w.write_str(p.name)?;
            if let Some(v) = p.value {
                w.write_str("=")?;
                w.write_str(v)?;
            }
        }
        for (i, h) in self.headers.iter().enumerate() {
            w.write_str(if i == 0 { "?" } else { "&" })?;
            w.write_str(h.name)?;
            w.write_str("=")?;
            w.write_str(h.value.unwrap_or(""))?;
        }
        Ok(())
    }

    /// The URI as text (what `to_string` gives), in one allocation of about the right size.
    pub fn to_text(&self) -> String {
        let mut s = String::with_capacity(self.host.len() + self.user.map_or(0, str::len) + 40);
        let _ = self.write_into(&mut s);
        s
    }
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_into(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_parts() {
        let u = Uri::parse("sip:alice:secret@[2001:db8::1]:5070;transport=tcp;lr?subject=x&h=")
            .unwrap();
        assert_eq!(u.user, Some("alice"));
        assert_eq!(u.password, Some("secret"));
        assert_eq!(u.host, "[2001:db8::1]");
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.params.len(), 2);
        assert_eq!(u.headers.len(), 2);
        assert_eq!(
            u.to_string(),
            "sip:alice:secret@[2001:db8::1]:5070;transport=tcp;lr?subject=x&h="
        );
        assert_eq!(u.to_text(), u.to_string());
        for text in [
            "sips:bob@example.com:65535",
            "sip:10.0.0.1:0",
            "tel:+1-201;x=y",
        ] {
            let u = Uri::parse(text).unwrap();
            assert_eq!(u.to_text(), text);
        }
    }

    #[test]
    fn tel_and_opaque() {
        let t = Uri::parse("tel:+1-201-555-0123;phone-context=example.com").unwrap();
        assert_eq!(t.scheme, Scheme::Tel);
        assert_eq!(t.host, "+1-201-555-0123");
        let o = Uri::parse("soap.beep://192.0.2.103:3002").unwrap();
        assert_eq!(o.scheme, Scheme::Other("soap.beep"));
        assert_eq!(o.to_string(), "soap.beep://192.0.2.103:3002");
    }

    #[test]
    fn rejects() {
        for bad in [
            "<sip:a@b>",
            "sip:a@b c",
            "sip:a@",
            "sip:a@b:99999",
            "sip:a@b;",
            "sip:%zz@b",
            "sip:a@-b",
            "nocolon",
            "sip:a@b?x",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn aor_unescapes() {
        let u = Uri::parse("sip:%75se%72@EXAMPLE.com;transport=udp").unwrap();
        assert_eq!(u.aor(), "sip:user@example.com");
    }
}
