//! `name-addr` / `addr-spec` values: From, To, Contact, Route, Record-Route,
//! Path, Reply-To (RFC 3261 §20, §25.1).

use std::borrow::Cow;
use std::fmt;

use crate::error::ParseError;
use crate::syntax::{
    end_of_address, find_param, header_params, is_token_char, is_ws, quoted_string, trim_ws,
    trim_ws_start, unescape_quoted, Param,
};
use crate::uri::Uri;

/// Display name of a name-addr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisplayName<'a> {
    /// `"..."`: content between the quotes, still escaped.
    Quoted(&'a str),
    /// Unquoted token sequence.
    Tokens(&'a str),
}

impl DisplayName<'_> {
    /// Display name with quoting removed.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            DisplayName::Quoted(s) if s.as_bytes().contains(&b'\\') => {
                Cow::Owned(unescape_quoted(s))
            }
            DisplayName::Quoted(s) | DisplayName::Tokens(s) => Cow::Borrowed(s),
        }
    }
}

/// An address with header parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// Optional display name.
    pub display: Option<DisplayName<'a>>,
    /// The URI.
    pub uri: Uri<'a>,
    /// True when the URI was written in `<...>`.
    pub angle: bool,
    /// Header parameters (`tag`, `expires`, `q`, ...).
    pub params: Vec<Param<'a>>,
}

impl<'a> NameAddr<'a> {
    /// Parse one `(name-addr / addr-spec) *(SEMI param)`.
    pub fn parse(s: &'a str) -> Result<NameAddr<'a>, ParseError> {
        let s = trim_ws(s);
        let (display, after_display) = if s.starts_with('"') {
            let (content, rest) = quoted_string(s)?;
            let rest = trim_ws_start(rest);
            if !rest.starts_with('<') {
                return Err(ParseError::Syntax("display name without <URI>"));
            }
            (Some(DisplayName::Quoted(content)), rest)
        } else if let Some(lt) = crate::syntax::find_byte(s, b'<') {
            let name = trim_ws(s.get(..lt).unwrap_or(""));
            if !name.chars().all(|c| is_token_char(c) || is_ws(c)) {
                return Err(ParseError::Syntax("display name is not a token sequence"));
            }
            let d = if name.is_empty() {
                None
            } else {
                Some(DisplayName::Tokens(name))
            };
            (d, s.get(lt..).unwrap_or(""))
        } else {
            (None, s)
        };
        if let Some(inner) = after_display.strip_prefix('<') {
            let gt =
                crate::syntax::find_byte(inner, b'>').ok_or(ParseError::Syntax("missing '>'"))?;
            let uri_str = inner.get(..gt).unwrap_or("");
            // LAQUOT/RAQUOT allow no whitespace inside the brackets (RFC 4475 badaspec).
            let uri = Uri::parse(uri_str)?;
            let params = header_params(inner.get(gt + 1..).unwrap_or(""))?;
            return Ok(NameAddr {
                display,
                uri,
                angle: true,
                params,
            });
        }
        // addr-spec: the URI ends at the first ';' or whitespace, and may not
        // contain ',', '?' or ';' of its own (RFC 3261 §20.10).
        let end = end_of_address(s);
        let uri_str = s.get(..end).unwrap_or("");
        if uri_str.bytes().any(|b| b == b'?' || b == b',') {
            return Err(ParseError::Syntax("addr-spec with '?' or ',' needs <>"));
        }
        let uri = Uri::parse(uri_str)?;
        let params = header_params(s.get(end..).unwrap_or(""))?;
        Ok(NameAddr {
            display: None,
            uri,
            angle: false,
            params,
        })
    }

    /// The header-parameter part of a name-addr/addr-spec value (from its
    /// first `;` after the address on), found without parsing the URI: the
    /// hot paths that only want a tag use it on messages that were already
    /// validated. Garbage gives `None`.
    pub fn params_part(s: &'a str) -> Option<&'a str> {
        let s = trim_ws(s);
        let rest = if s.starts_with('"') {
            quoted_string(s).ok()?.1
        } else {
            s
        };
        match crate::syntax::find_byte(rest, b'<') {
            Some(lt) => {
                let inner = rest.get(lt + 1..)?;
                let gt = crate::syntax::find_byte(inner, b'>')?;
                inner.get(gt + 1..)
            }
            None => {
                let end = end_of_address(rest);
                rest.get(end..)
            }
        }
    }

    /// The `tag` header parameter of a From/To value, without building the
    /// whole [`NameAddr`] (see [`NameAddr::params_part`]).
    pub fn tag_of(value: &'a str) -> Option<&'a str> {
        crate::syntax::find_header_param(NameAddr::params_part(value)?, "tag")
            .ok()?
            .and_then(|p| p.value)
    }

    /// Parameter by case-insensitive name.
    pub fn param(&self, name: &str) -> Option<&Param<'a>> {
        find_param(&self.params, name)
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&'a str> {
        self.param("tag").and_then(|p| p.value)
    }

    /// `q` value in thousandths (RFC 3261 §20.10); 1000 when absent.
    pub fn q_millis(&self) -> Result<u16, ParseError> {
        let Some(v) = self.param("q").and_then(|p| p.value) else {
            return Ok(1000);
        };
        let bad = ParseError::BadValue("q");
        let (int, frac) = v.split_once('.').unwrap_or((v, ""));
        if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad);
        }
        let mut f: u16 = 0;
        for b in frac.bytes().chain(std::iter::repeat(b'0')).take(3) {
            f = f * 10 + u16::from(b.wrapping_sub(b'0'));
        }
        match int {
            "0" => Ok(f),
            "1" if f == 0 => Ok(1000),
            _ => Err(bad),
        }
    }

    /// `expires` parameter in seconds.
    pub fn expires(&self) -> Option<Result<u32, ParseError>> {
        self.param("expires")
            .map(|p| crate::syntax::parse_u32(p.value.unwrap_or(""), "expires"))
    }
}

impl fmt::Display for NameAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.display {
            Some(DisplayName::Quoted(s)) => write!(f, "\"{s}\" ")?,
            Some(DisplayName::Tokens(s)) => write!(f, "{s} ")?,
            None => {}
        }
        if self.angle || self.display.is_some() {
            write!(f, "<{}>", self.uri)?;
        } else {
            write!(f, "{}", self.uri)?;
        }
        for p in &self.params {
            write!(f, ";{}", p.name)?;
            if let Some(v) = p.value {
                write!(f, "={v}")?;
            }
        }
        Ok(())
    }
}

/// A Contact value: either `*` (remove all bindings) or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact<'a> {
    /// `Contact: *`
    Star,
    /// An address.
    Addr(NameAddr<'a>),
}

#[cfg(test)]
mod tests {

    #[test]
    fn tag_of_agrees_with_the_full_parse() {
        for v in [
            "<sip:a@b;tag=uri-param>;tag=hdr",
            "\"Bob; <not> \\\"x\" <sip:b@c>;TAG=t1",
            "sip:a@b;tag=x",
            "Alice <sip:a@b> ; tag = spaced",
            "<sip:a@b>",
            "sip:a@b",
            "<sip:a@b>;q=0.5;tag=last",
        ] {
            let full = NameAddr::parse(v).unwrap();
            assert_eq!(NameAddr::tag_of(v), full.tag(), "{v}");
        }
        assert_eq!(NameAddr::tag_of("\"unterminated <sip:a@b>;tag=x"), None);
        assert_eq!(NameAddr::tag_of("<sip:a@b;tag=x"), None);
    }

    use super::*;

    #[test]
    fn name_addr_forms() {
        let a = NameAddr::parse(
            r#""J Rosenberg \\\""       <sip:jdrosen@example.com> ;   tag = 98asjd8"#,
        )
        .unwrap();
        assert_eq!(a.display.as_ref().unwrap().text(), "J Rosenberg \\\"");
        assert_eq!(a.tag(), Some("98asjd8"));
        let b =
            NameAddr::parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert!(!b.angle);
        assert_eq!(b.tag(), Some("1918181833n"));
        let c = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(c.display, Some(DisplayName::Tokens("caller")));
        let d = NameAddr::parse("<sip:a@b;lr>;q=0.33;expires=60").unwrap();
        assert_eq!(d.q_millis().unwrap(), 330);
        assert_eq!(d.expires().unwrap().unwrap(), 60);
        assert_eq!(d.to_string(), "<sip:a@b;lr>;q=0.33;expires=60");
    }

    #[test]
    fn name_addr_rejects() {
        for bad in [
            r#""Mr. J. User <sip:j.user@example.com>"#,
            "Watson, Thomas <sip:t.watson@example.org>",
            "< sip:t.watson@example.org >",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "<sip:a@b>;;;;",
            "<sip:a@b",
        ] {
            assert!(NameAddr::parse(bad).is_err(), "{bad}");
        }
        assert!(NameAddr::parse("<sip:a@b>;q=1.5")
            .unwrap()
            .q_millis()
            .is_err());
    }
}
