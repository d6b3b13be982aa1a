//! Character classes and small lexical helpers from the RFC 3261 §25 grammar.
//!
//! Everything here works on `&str` slices and returns sub-slices, so typed header
//! parsers stay zero-copy. Nothing here panics: all slicing goes through `get`
//! or happens at ASCII boundaries found by scanning.

use crate::error::ParseError;

/// Byte classes, looked up in one table on the hot parsing paths (a REGISTER
/// runs these over every header several times).
const TOKEN: u16 = 1;
/// `token` characters plus `[`, `]` and `:` (unquoted parameter values).
const PARAM_VALUE: u16 = 2;
/// Host name characters: alphanumerics and `-` (labels; dots apart).
const HOST: u16 = 4;
/// `word` characters (Call-ID): `token` plus the separators it allows.
const WORD: u16 = 8;
/// What may appear unescaped in each part of a SIP URI (RFC 3261 §25.1): `unreserved`.
pub(crate) const URI_UNRESERVED: u16 = 16;
/// user-unreserved: `& = + $ , ; ? /`.
pub(crate) const URI_USER: u16 = 32;
/// Password: `& = + $ ,`.
pub(crate) const URI_PASSWORD: u16 = 64;
/// paramchar: param-unreserved `[ ] / : & + $`.
pub(crate) const URI_PARAM: u16 = 128;
/// hnv-unreserved and friends: `[ ] / ? : + $`.
pub(crate) const URI_HEADER: u16 = 256;

const fn byte_classes() -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let alnum = b.is_ascii_alphanumeric();
        let token = alnum
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        let mut v = 0;
        if token {
            v |= TOKEN | PARAM_VALUE | WORD;
        }
        if matches!(
            b,
            b'(' | b')'
                | b'<'
                | b'>'
                | b':'
                | b'\\'
                | b'"'
                | b'/'
                | b'['
                | b']'
                | b'?'
                | b'{'
                | b'}'
        ) {
            v |= WORD;
        }
        if matches!(b, b'[' | b']' | b':') {
            v |= PARAM_VALUE;
        }
        if alnum || b == b'-' {
            v |= HOST;
        }
        if alnum
            || matches!(
                b,
                b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
            )
        {
            v |= URI_UNRESERVED;
        }
        if matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/') {
            v |= URI_USER;
        }
        if matches!(b, b'&' | b'=' | b'+' | b'$' | b',') {
            v |= URI_PASSWORD;
        }
        if matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$') {
            v |= URI_PARAM;
        }
        if matches!(b, b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$') {
            v |= URI_HEADER;
        }
        t[i] = v;
        i += 1;
    }
    t
}

static CLASSES: [u16; 256] = byte_classes();

/// Whether byte `b` is in `class` (any of the bits given).
#[inline]
pub(crate) fn is(b: u8, class: u16) -> bool {
    CLASSES[usize::from(b)] & class != 0
}

/// Host-name byte (alphanumeric or `-`).
#[inline]
pub fn is_host_byte(b: u8) -> bool {
    is(b, HOST)
}

/// `token` characters (RFC 3261 §25.1).
#[inline]
pub fn is_token_char(c: char) -> bool {
    c.is_ascii() && is(c as u8, TOKEN)
}

/// Position of ASCII byte `b` in `s` (a char boundary, since `b` is ASCII).
/// A plain byte scan: on the short strings of SIP headers it beats the
/// generic `str::find(char)` searcher several times over.
#[inline]
pub fn find_byte(s: &str, b: u8) -> Option<usize> {
    s.bytes().position(|c| c == b)
}

/// `str::split_once` for an ASCII byte, by [`find_byte`].
#[inline]
pub fn split_once_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    let i = find_byte(s, b)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// Where an address or host-port ends: the first `;`, SP or HT, or the end of `s`.
#[inline]
pub fn end_of_address(s: &str) -> usize {
    s.bytes()
        .position(|b| matches!(b, b';' | b' ' | b'\t'))
        .unwrap_or(s.len())
}

/// Length of the leading run of `s` in `class` (ASCII only, so a char boundary).
#[inline]
fn run_len(s: &str, class: u16) -> usize {
    s.bytes().position(|b| !is(b, class)).unwrap_or(s.len())
}

/// `word` characters: token plus the separators that Call-ID allows.
pub fn is_word_char(c: char) -> bool {
    c.is_ascii() && is(c as u8, WORD)
}

/// True when `s` is a non-empty `token`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| is(b, TOKEN))
}

/// True when `s` is a non-empty `word` run, optionally `word@word` (Call-ID).
pub fn is_callid(s: &str) -> bool {
    let (first, second) = match split_once_byte(s, b'@') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let ok = |p: &str| !p.is_empty() && p.bytes().all(|b| is(b, WORD));
    ok(first) && second.map_or(true, ok)
}

/// Whitespace inside a header value (folding already removed).
pub fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Trim SP/HT on both ends. Byte by byte: `str::trim_matches` with a `char` predicate
/// decodes UTF-8 and was 2 % of a REGISTER's instructions.
#[inline]
pub fn trim_ws(s: &str) -> &str {
    trim_ws_end(trim_ws_start(s))
}

/// Trim SP/HT at the start (ASCII bytes, so the cut is a char boundary).
#[inline]
pub fn trim_ws_start(s: &str) -> &str {
    let n = s.bytes().take_while(|&b| b == b' ' || b == b'\t').count();
    s.get(n..).unwrap_or("")
}

/// Trim SP/HT at the end.
#[inline]
pub fn trim_ws_end(s: &str) -> &str {
    let n = s
        .bytes()
        .rev()
        .take_while(|&b| b == b' ' || b == b'\t')
        .count();
    s.get(..s.len() - n).unwrap_or("")
}

/// Parse a quoted string starting at the opening `"` of `s`.
/// Returns (content between quotes, still escaped; rest after closing quote).
pub fn quoted_string(s: &str) -> Result<(&str, &str), ParseError> {
    let inner = s
        .strip_prefix('"')
        .ok_or(ParseError::Syntax("expected quoted string"))?;
    let mut escaped = false;
    for (i, c) in inner.char_indices() {
        if escaped {
            // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
            if c == '\r' || c == '\n' || !c.is_ascii() {
                return Err(ParseError::Syntax("bad quoted-pair"));
            }
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            let content = inner.get(..i).unwrap_or("");
            let rest = inner.get(i + 1..).unwrap_or("");
            return Ok((content, rest));
        } else if c == '\r' || c == '\n' {
            return Err(ParseError::Syntax("line break in quoted string"));
        }
    }
    Err(ParseError::Syntax("unterminated quoted string"))
}

/// Remove quoted-pair escapes from the content of a quoted string.
pub fn unescape_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut esc = false;
    for c in s.chars() {
        if esc {
            out.push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else {
            out.push(c);
        }
    }
    out
}

/// Split a header value at top-level commas: commas inside quoted strings or
/// `<...>` do not count. Empty elements are an error (RFC 4475 badinv01).
/// The result is bounded by the value's length.
pub fn split_commas(value: &str) -> Result<Vec<&str>, ParseError> {
    let mut out = Vec::new();
    for_each_comma_part(value, |part| {
        out.push(part);
        Ok(())
    })?;
    Ok(out)
}

/// The elements of [`split_commas`], handed to `f` in order without
/// collecting them (digest credentials are split on every authenticated
/// request). An error from `f` stops the walk and is returned; a syntax error
/// in the list may surface after earlier elements were handed over.
pub fn for_each_comma_part<'a, E: From<ParseError>>(
    value: &'a str,
    mut f: impl FnMut(&'a str) -> Result<(), E>,
) -> Result<(), E> {
    let empty = || ParseError::Syntax("empty element in comma-separated list");
    let bytes = value.as_bytes();
    // Most values are one element with no quotes: one memchr scan decides it.
    if memchr::memchr2(b',', b'"', bytes).is_none() {
        let only = trim_ws(value);
        if only.is_empty() {
            return Err(empty().into());
        }
        return f(only);
    }
    // Jump between the bytes that matter (memchr), not through every byte: an
    // Authorization header is ~250 bytes of mostly quoted hex.
    let mut start = 0usize;
    let mut in_quote = false;
    let mut in_angle = false;
    let mut i = 0usize;
    while let Some(rest) = bytes.get(i..) {
        if rest.is_empty() {
            break;
        }
        if in_quote {
            match memchr::memchr2(b'\\', b'"', rest) {
                // An escape hides the next byte; an escape at the very end leaves the
                // quote open, which is refused below.
                Some(k) if rest.get(k) == Some(&b'\\') => i += k + 2,
                Some(k) => {
                    in_quote = false;
                    i += k + 1;
                }
                None => break,
            }
            continue;
        }
        let found = if in_angle {
            memchr::memchr2(b'"', b'>', rest)
        } else {
            memchr::memchr3(b'"', b'<', b',', rest)
        };
        let Some(k) = found else { break };
        let at = i + k;
        match bytes.get(at) {
            Some(b'"') => in_quote = true,
            Some(b'<') => in_angle = true,
            Some(b'>') => in_angle = false,
            _ => {
                let part = trim_ws(value.get(start..at).unwrap_or(""));
                if part.is_empty() {
                    return Err(empty().into());
                }
                f(part)?;
                start = at + 1;
            }
        }
        i = at + 1;
    }
    if in_quote {
        return Err(ParseError::Syntax("unterminated quoted string").into());
    }
    let last = trim_ws(value.get(start..).unwrap_or(""));
    if last.is_empty() {
        return Err(empty().into());
    }
    f(last)
}

/// A `generic-param` (`name[=value]`) as found after `;` in headers and URIs.
/// The value is kept as written (quoted strings keep their quotes) so the
/// writer reproduces it exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param<'a> {
    /// Parameter name as written.
    pub name: &'a str,
    /// Raw value, if any (quoted strings keep their quotes).
    pub value: Option<&'a str>,
}

impl<'a> Param<'a> {
    /// Value with surrounding quotes removed and escapes resolved.
    pub fn unquoted(&self) -> Option<std::borrow::Cow<'a, str>> {
        self.value.map(
            |v| match v.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
                Some(inner) if inner.contains('\\') => {
                    std::borrow::Cow::Owned(unescape_quoted(inner))
                }
                Some(inner) => std::borrow::Cow::Borrowed(inner),
                None => std::borrow::Cow::Borrowed(v),
            },
        )
    }
}

/// Find a parameter by case-insensitive name.
pub fn find_param<'p, 'a>(params: &'p [Param<'a>], name: &str) -> Option<&'p Param<'a>> {
    params.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// Parse `*( SEMI generic-param )` with LWS allowed around `;` and `=`.
/// `s` must start with `;` or be empty/whitespace. Values are `token`,
/// `host` (incl. IPv6 reference) or `quoted-string`.
pub fn header_params(s: &str) -> Result<Vec<Param<'_>>, ParseError> {
    let mut out = Vec::new();
    each_header_param(s, |p| {
        out.push(p);
        true
    })?;
    Ok(out)
}

/// The parameter `name` (case-insensitive) of a `*( SEMI generic-param )`
/// string, checking the whole string as [`header_params`] does but without
/// collecting (tags are looked up several times per request).
pub fn find_header_param<'a>(s: &'a str, name: &str) -> Result<Option<Param<'a>>, ParseError> {
    let mut found = None;
    each_header_param(s, |p| {
        if found.is_none() && p.name.eq_ignore_ascii_case(name) {
            found = Some(p);
        }
        true
    })?;
    Ok(found)
}

/// Walk the parameters of [`header_params`]' syntax, in order, until `f`
/// returns false.
fn each_header_param<'a>(
    s: &'a str,
    mut f: impl FnMut(Param<'a>) -> bool,
) -> Result<(), ParseError> {
    let mut rest = trim_ws(s);
    while !rest.is_empty() {
        rest = rest
            .strip_prefix(';')
            .ok_or(ParseError::Syntax("expected ';' before parameter"))?;
        rest = trim_ws_start(rest);
        let name_end = run_len(rest, TOKEN);
        let name = rest.get(..name_end).unwrap_or("");
        if name.is_empty() {
            return Err(ParseError::Syntax("empty parameter"));
        }
        rest = trim_ws_start(rest.get(name_end..).unwrap_or(""));
        let mut value = None;
        if let Some(after_eq) = rest.strip_prefix('=') {
            let v = trim_ws_start(after_eq);
            if v.starts_with('"') {
                let (_, after) = quoted_string(v)?;
                let raw_len = v.len() - after.len();
                value = Some(v.get(..raw_len).unwrap_or(""));
                rest = after;
            } else {
                let end = run_len(v, PARAM_VALUE);
                let raw = v.get(..end).unwrap_or("");
                if raw.is_empty() {
                    return Err(ParseError::Syntax("empty parameter value"));
                }
                value = Some(raw);
                rest = v.get(end..).unwrap_or("");
            }
            rest = trim_ws_start(rest);
        }
        if !rest.is_empty() && !rest.starts_with(';') {
            return Err(ParseError::Syntax("junk after parameter"));
        }
        if !f(Param { name, value }) {
            break;
        }
    }
    Ok(())
}

/// Parse a decimal number that fits in `u32`, rejecting signs and overflow.
pub fn parse_u32(s: &str, what: &'static str) -> Result<u32, ParseError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::BadValue(what));
    }
    // Leading zeros are legal (RFC 4475 wsinv); strip them before length checks.
    let digits = s.trim_start_matches('0');
    if digits.len() > 10 {
        return Err(ParseError::BadValue(what));
    }
    digits
        .parse::<u64>()
        .ok()
        .or(if digits.is_empty() { Some(0) } else { None })
        .and_then(|v| u32::try_from(v).ok())
        .ok_or(ParseError::BadValue(what))
}

/// Write `s` as a quoted string, escaping `"` and `\`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_quoted(&mut out, s);
    out
}

/// Append `s` to `out` as a quoted string, escaping `"` and `\`.
pub fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Append `n` in decimal: ports and counters in headers written for nearly
/// every request, where `write!` and its formatting machinery showed in profiles.
pub fn push_decimal(out: &mut String, n: u32) {
    let (buf, start) = decimal_digits(n);
    for &d in buf.get(start..).unwrap_or(&[]) {
        out.push(char::from(d));
    }
}

/// The ASCII digits of `n`: a buffer and where in it they start.
pub(crate) fn decimal_digits(n: u32) -> ([u8; 10], usize) {
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        if let Some(d) = buf.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    (buf, i)
}

/// Append an IP address as a SIP host (`received=` and the like): IPv4 in
/// dotted decimal without formatting machinery, IPv6 as its display form.
pub fn push_ip(out: &mut String, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_decimal(out, u32::from(o));
            }
        }
        std::net::IpAddr::V6(v6) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{v6}");
        }
    }
}

/// Lower-case hex of bytes (digest responses, nonces).
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_are_words_with_at_most_one_at() {
        for ok in [
            "a",
            "a84b4c76e66710@pc33.atlanta.com",
            "x(1)<2>:3/[4]?{5}\"6\"\\",
            "~`!%*_+-.",
        ] {
            assert!(is_callid(ok), "{ok}");
        }
        for bad in [
            "",
            "@b",
            "a@",
            "a@b@c",
            "a b",
            "a\tb",
            "caf\u{e9}",
            "a;b",
            "a,b",
            "a=b",
        ] {
            assert!(!is_callid(bad), "{bad}");
        }
        assert!(is_word_char('?') && !is_word_char(' ') && !is_word_char('@'));
    }

    #[test]
    fn decimals_and_addresses_are_written_plainly() {
        let mut s = String::new();
        push_decimal(&mut s, 0);
        s.push(' ');
        push_decimal(&mut s, 65535);
        s.push(' ');
        push_decimal(&mut s, u32::MAX);
        s.push(' ');
        push_ip(&mut s, "192.0.2.255".parse().expect("v4"));
        s.push(' ');
        push_ip(&mut s, "2001:db8::1".parse().expect("v6"));
        assert_eq!(s, "0 65535 4294967295 192.0.2.255 2001:db8::1");
    }

    #[test]
    fn commas_respect_quotes_and_angles() {
        let v = split_commas(r#""a,b" <sip:x@y;p=1,2>, <sip:z>"#).unwrap();
        assert_eq!(v, vec![r#""a,b" <sip:x@y;p=1,2>"#, "<sip:z>"]);
        assert!(split_commas("a,,b").is_err());
        assert!(split_commas("a,").is_err());
    }

    #[test]
    fn commas_inside_escapes_and_unclosed_quotes() {
        // An escaped quote does not close the string; an escaped backslash does not hide it.
        let v = split_commas(r#""a\",b", c"#).unwrap();
        assert_eq!(v, vec![r#""a\",b""#, "c"]);
        let v = split_commas(r#""a\\", b"#).unwrap();
        assert_eq!(v, vec![r#""a\\""#, "b"]);
        // A quote inside <> still opens a string; '>' ends the brackets.
        let v = split_commas(r#"<sip:x;p="1,>">, d"#).unwrap();
        assert_eq!(v, vec![r#"<sip:x;p="1,>">"#, "d"]);
        assert!(split_commas(r#""a, b"#).is_err());
        assert!(split_commas(r#""a\"#).is_err());
        assert!(split_commas(r#"a, "b\"#).is_err());
        assert_eq!(split_commas("  x  ,\ty ").unwrap(), vec!["x", "y"]);
        assert_eq!(split_commas("é, ü").unwrap(), vec!["é", "ü"]);
    }

    #[test]
    fn trims_take_only_spaces_and_tabs() {
        assert_eq!(trim_ws(" \t a b \t"), "a b");
        assert_eq!(trim_ws("\r a\n"), "\r a\n");
        assert_eq!(trim_ws("   "), "");
        assert_eq!(trim_ws_start(" é "), "é ");
        assert_eq!(trim_ws_end(" é "), " é");
        assert_eq!(end_of_address("sip:a@b;lr"), 7);
        assert_eq!(end_of_address("h:5060 ;x"), 6);
        assert_eq!(end_of_address("h"), 1);
    }

    #[test]
    fn params_with_lws() {
        let p = header_params(" ;   tag    = 1918181833n ; lr ;x=\"q;\\\"v\"").unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(
            p[0],
            Param {
                name: "tag",
                value: Some("1918181833n")
            }
        );
        assert_eq!(
            p[1],
            Param {
                name: "lr",
                value: None
            }
        );
        assert_eq!(p[2].unquoted().unwrap(), "q;\"v");
        assert!(header_params(";;").is_err());
        assert!(header_params(";a=").is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u32("0009", "x").unwrap(), 9);
        assert_eq!(parse_u32("4294967295", "x").unwrap(), u32::MAX);
        assert!(parse_u32("4294967296", "x").is_err());
        assert!(parse_u32("-1", "x").is_err());
        assert!(parse_u32("36893488147419103232", "x").is_err());
        assert_eq!(parse_u32("000", "x").unwrap(), 0);
    }
}
