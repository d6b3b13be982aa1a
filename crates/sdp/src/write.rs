//! Writer: emits lines in RFC 8866 order with the description's line ending.

use std::fmt::{self, Write as _};

use crate::session::{Attribute, Bandwidth, Connection, Media, SessionDescription};

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nl = self.line_ending.as_str();
        write!(f, "v={}{nl}", self.version)?;
        let o = &self.origin;
        write!(
            f,
            "o={} {} {} {} {} {}{nl}",
            o.username, o.session_id, o.session_version, o.net_type, o.addr_type, o.unicast_address
        )?;
        write!(f, "s={}{nl}", self.session_name)?;
        if let Some(i) = &self.info {
            write!(f, "i={i}{nl}")?;
        }
        if let Some(u) = &self.uri {
            write!(f, "u={u}{nl}")?;
        }
        for e in &self.emails {
            write!(f, "e={e}{nl}")?;
        }
        for p in &self.phones {
            write!(f, "p={p}{nl}")?;
        }
        if let Some(c) = &self.connection {
            write_connection(f, c, nl)?;
        }
        write_bandwidths(f, &self.bandwidths, nl)?;
        for t in &self.timings {
            write!(f, "t={} {}{nl}", t.start, t.stop)?;
            for r in &t.repeats {
                write!(f, "r={r}{nl}")?;
            }
        }
        if let Some(z) = &self.time_zones {
            write!(f, "z={z}{nl}")?;
        }
        if let Some(k) = &self.key {
            write!(f, "k={k}{nl}")?;
        }
        write_attributes(f, &self.attributes, nl)?;
        for m in &self.media {
            write_media(f, m, nl)?;
        }
        Ok(())
    }
}

impl SessionDescription {
    /// Serialises to a `String` (same as `to_string()`, named for readability at call sites).
    pub fn to_sdp(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "a={}:{}", self.name, v),
            None => write!(f, "a={}", self.name),
        }
    }
}

fn write_connection(f: &mut fmt::Formatter<'_>, c: &Connection, nl: &str) -> fmt::Result {
    write!(f, "c={} {} {}{nl}", c.net_type, c.addr_type, c.address)
}

fn write_bandwidths(f: &mut fmt::Formatter<'_>, b: &[Bandwidth], nl: &str) -> fmt::Result {
    for b in b {
        write!(f, "b={}:{}{nl}", b.bw_type, b.bandwidth)?;
    }
    Ok(())
}

fn write_attributes(f: &mut fmt::Formatter<'_>, attrs: &[Attribute], nl: &str) -> fmt::Result {
    for a in attrs {
        write!(f, "{a}{nl}")?;
    }
    Ok(())
}

fn write_media(f: &mut fmt::Formatter<'_>, m: &Media, nl: &str) -> fmt::Result {
    let mut line = format!("m={} {}", m.media, m.port);
    if let Some(n) = m.num_ports {
        let _ = write!(line, "/{n}");
    }
    let _ = write!(line, " {}", m.proto);
    for fmt in &m.formats {
        let _ = write!(line, " {fmt}");
    }
    write!(f, "{line}{nl}")?;
    if let Some(i) = &m.title {
        write!(f, "i={i}{nl}")?;
    }
    for c in &m.connections {
        write_connection(f, c, nl)?;
    }
    write_bandwidths(f, &m.bandwidths, nl)?;
    if let Some(k) = &m.key {
        write!(f, "k={k}{nl}")?;
    }
    write_attributes(f, &m.attributes, nl)
}
