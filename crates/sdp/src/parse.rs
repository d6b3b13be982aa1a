//! Line-oriented parser. Lenient about order within a section (many stacks emit lines out
//! of RFC order), strict about line syntax and about numbers.

use std::str::FromStr;

use crate::error::{Error, Result};
use crate::session::{
    Attribute, Bandwidth, Connection, LineEnding, Media, Origin, SessionDescription, Timing,
};

impl FromStr for SessionDescription {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        SessionDescription::parse(s)
    }
}

impl SessionDescription {
    /// Parses a description from bytes (must be UTF-8).
    pub fn parse_bytes(input: &[u8]) -> Result<Self> {
        if input.len() > crate::MAX_SDP_LEN {
            return Err(Error::TooLarge(input.len()));
        }
        let s = std::str::from_utf8(input).map_err(|_| Error::NotUtf8)?;
        Self::parse(s)
    }

    /// Parses a description. Accepts CRLF or LF line endings (remembered for writing) and
    /// tolerates a missing final terminator.
    pub fn parse(input: &str) -> Result<Self> {
        if input.len() > crate::MAX_SDP_LEN {
            return Err(Error::TooLarge(input.len()));
        }
        let line_ending = match input.find('\n') {
            Some(i) if i > 0 && input.as_bytes().get(i - 1) == Some(&b'\r') => LineEnding::CrLf,
            Some(_) => LineEnding::Lf,
            None => LineEnding::CrLf,
        };
        let mut sd = SessionDescription {
            timings: Vec::new(),
            line_ending,
            ..SessionDescription::default()
        };
        let mut saw_v = false;
        let mut saw_o = false;
        let mut saw_s = false;
        for (idx, raw) in input.split('\n').enumerate() {
            let line_no = idx + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.is_empty() {
                continue;
            }
            if let Some(&byte) = line.as_bytes().iter().find(|&&b| b == 0 || b == b'\r') {
                return Err(Error::ControlCharacter {
                    line: line_no,
                    byte,
                });
            }
            let mut chars = line.chars();
            let kind = chars.next().ok_or(Error::MalformedLine { line: line_no })?;
            if chars.next() != Some('=') {
                return Err(Error::MalformedLine { line: line_no });
            }
            let value = line
                .get(2..)
                .ok_or(Error::MalformedLine { line: line_no })?;
            let bad = |what| Error::InvalidField {
                line: line_no,
                what,
            };
            let unexpected = Error::UnexpectedLine {
                line: line_no,
                kind,
            };
            if !saw_v {
                if kind != 'v' {
                    return Err(Error::Missing('v'));
                }
                sd.version = value.parse().map_err(|_| bad("version"))?;
                saw_v = true;
                continue;
            }
            if let Some(media) = sd.media.last_mut() {
                match kind {
                    'm' => sd.media.push(parse_media(value, line_no)?),
                    'i' if media.title.is_none() => media.title = Some(value.into()),
                    'c' => media.connections.push(parse_connection(value, line_no)?),
                    'b' => media.bandwidths.push(parse_bandwidth(value, line_no)?),
                    'k' if media.key.is_none() => media.key = Some(value.into()),
                    'a' => media.attributes.push(parse_attribute(value)),
                    'v' | 'o' | 's' | 'u' | 'e' | 'p' | 't' | 'r' | 'z' | 'i' | 'k' => {
                        return Err(unexpected)
                    }
                    _ => {
                        return Err(Error::UnknownLineType {
                            line: line_no,
                            kind,
                        })
                    }
                }
                continue;
            }
            match kind {
                'o' if !saw_o => {
                    sd.origin = parse_origin(value, line_no)?;
                    saw_o = true;
                }
                's' if !saw_s => {
                    sd.session_name = value.into();
                    saw_s = true;
                }
                'i' if sd.info.is_none() => sd.info = Some(value.into()),
                'u' if sd.uri.is_none() => sd.uri = Some(value.into()),
                'e' => sd.emails.push(value.into()),
                'p' => sd.phones.push(value.into()),
                'c' if sd.connection.is_none() => {
                    sd.connection = Some(parse_connection(value, line_no)?)
                }
                'b' => sd.bandwidths.push(parse_bandwidth(value, line_no)?),
                't' => {
                    let mut it = value.split(' ');
                    let start = parse_num(it.next(), line_no, "start time")?;
                    let stop = parse_num(it.next(), line_no, "stop time")?;
                    if it.next().is_some() {
                        return Err(bad("t= line"));
                    }
                    sd.timings.push(Timing {
                        start,
                        stop,
                        repeats: Vec::new(),
                    });
                }
                'r' => match sd.timings.last_mut() {
                    Some(t) => t.repeats.push(value.into()),
                    None => return Err(unexpected),
                },
                'z' if sd.time_zones.is_none() => sd.time_zones = Some(value.into()),
                'k' if sd.key.is_none() => sd.key = Some(value.into()),
                'a' => sd.attributes.push(parse_attribute(value)),
                'm' => {
                    if !saw_o {
                        return Err(Error::Missing('o'));
                    }
                    if !saw_s {
                        return Err(Error::Missing('s'));
                    }
                    sd.media.push(parse_media(value, line_no)?)
                }
                'v' | 'o' | 's' | 'i' | 'u' | 'c' | 'z' | 'k' => return Err(unexpected),
                _ => {
                    return Err(Error::UnknownLineType {
                        line: line_no,
                        kind,
                    })
                }
            }
        }
        if !saw_v {
            return Err(Error::Missing('v'));
        }
        if !saw_o {
            return Err(Error::Missing('o'));
        }
        if !saw_s {
            return Err(Error::Missing('s'));
        }
        if sd.timings.is_empty() {
            return Err(Error::Missing('t'));
        }
        Ok(sd)
    }
}

fn parse_num<T: FromStr>(s: Option<&str>, line: usize, what: &'static str) -> Result<T> {
    let s = s.ok_or(Error::InvalidField { line, what })?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::InvalidField { line, what });
    }
    s.parse().map_err(|_| Error::InvalidField { line, what })
}

fn token(s: Option<&str>, line: usize, what: &'static str) -> Result<String> {
    match s {
        Some(t) if !t.is_empty() => Ok(t.to_owned()),
        _ => Err(Error::InvalidField { line, what }),
    }
}

fn parse_origin(value: &str, line: usize) -> Result<Origin> {
    let mut it = value.split(' ');
    let o = Origin {
        username: token(it.next(), line, "origin username")?,
        session_id: {
            let id = token(it.next(), line, "origin session id")?;
            if !id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::InvalidField {
                    line,
                    what: "origin session id",
                });
            }
            id
        },
        session_version: parse_num(it.next(), line, "origin session version")?,
        net_type: token(it.next(), line, "origin nettype")?,
        addr_type: token(it.next(), line, "origin addrtype")?,
        unicast_address: token(it.next(), line, "origin address")?,
    };
    if it.next().is_some() {
        return Err(Error::InvalidField {
            line,
            what: "origin (extra fields)",
        });
    }
    Ok(o)
}

fn parse_connection(value: &str, line: usize) -> Result<Connection> {
    let mut it = value.split(' ');
    let c = Connection {
        net_type: token(it.next(), line, "connection nettype")?,
        addr_type: token(it.next(), line, "connection addrtype")?,
        address: token(it.next(), line, "connection address")?,
    };
    if it.next().is_some() {
        return Err(Error::InvalidField {
            line,
            what: "connection (extra fields)",
        });
    }
    Ok(c)
}

fn parse_bandwidth(value: &str, line: usize) -> Result<Bandwidth> {
    let (t, v) = value.split_once(':').ok_or(Error::InvalidField {
        line,
        what: "bandwidth",
    })?;
    if t.is_empty() {
        return Err(Error::InvalidField {
            line,
            what: "bandwidth type",
        });
    }
    Ok(Bandwidth {
        bw_type: t.into(),
        bandwidth: parse_num(Some(v), line, "bandwidth value")?,
    })
}

fn parse_attribute(value: &str) -> Attribute {
    match value.split_once(':') {
        Some((n, v)) => Attribute {
            name: n.into(),
            value: Some(v.into()),
        },
        None => Attribute {
            name: value.into(),
            value: None,
        },
    }
}

fn parse_media(value: &str, line: usize) -> Result<Media> {
    let mut it = value.split(' ');
    let media = token(it.next(), line, "media type")?;
    let port_field = token(it.next(), line, "media port")?;
    let (port, num_ports) = match port_field.split_once('/') {
        Some((p, n)) => (
            parse_num(Some(p), line, "media port")?,
            Some(parse_num(Some(n), line, "port count")?),
        ),
        None => (parse_num(Some(&port_field), line, "media port")?, None),
    };
    let proto = token(it.next(), line, "media proto")?;
    let formats: Vec<String> = it.map(str::to_owned).collect();
    if formats.iter().any(String::is_empty) {
        return Err(Error::InvalidField {
            line,
            what: "media format list",
        });
    }
    Ok(Media {
        num_ports,
        formats,
        ..Media::new(&media, port, &proto, Vec::new())
    })
}
