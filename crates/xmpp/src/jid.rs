//! JIDs (RFC 7622), in the simple form a client needs: `local@domain/resource`, with
//! length bounds and no stringprep beyond lower-casing the domain.

use std::fmt;

/// Why a JID is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad JID {0:?}")]
pub struct JidError(pub String);

/// A JID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Jid {
    /// Localpart (may be empty: a server JID).
    pub local: String,
    /// Domainpart.
    pub domain: String,
    /// Resourcepart (empty: a bare JID).
    pub resource: String,
}

impl Jid {
    /// Parses `[local@]domain[/resource]`.
    pub fn parse(s: &str) -> Result<Jid, JidError> {
        let bad = || JidError(s.chars().take(80).collect());
        let (rest, resource) = match s.split_once('/') {
            Some((a, r)) => (a, r),
            None => (s, ""),
        };
        let (local, domain) = match rest.split_once('@') {
            Some((l, d)) => (l, d),
            None => ("", rest),
        };
        if domain.is_empty()
            || domain.len() > 1023
            || local.len() > 1023
            || resource.len() > 1023
            || (s.contains('/') && resource.is_empty())
            || (rest.contains('@') && local.is_empty())
            || domain.contains('@')
            || s.chars().any(char::is_control)
            || local
                .chars()
                .any(|c| c.is_whitespace() || "\"&'/:<>@".contains(c))
        {
            return Err(bad());
        }
        Ok(Jid {
            local: local.to_owned(),
            domain: domain.to_ascii_lowercase(),
            resource: resource.to_owned(),
        })
    }

    /// The bare JID (`local@domain`).
    pub fn bare(&self) -> Jid {
        Jid {
            resource: String::new(),
            ..self.clone()
        }
    }

    /// Whether there is no resource.
    pub fn is_bare(&self) -> bool {
        self.resource.is_empty()
    }

    /// With another resource.
    pub fn with_resource(&self, r: &str) -> Jid {
        Jid {
            resource: r.to_owned(),
            ..self.clone()
        }
    }
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.local.is_empty() {
            write!(f, "{}@", self.local)?;
        }
        f.write_str(&self.domain)?;
        if !self.resource.is_empty() {
            write!(f, "/{}", self.resource)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_forms() {
        let j = Jid::parse("bob@LocalHost/phone/1").expect("full");
        assert_eq!(
            (j.local.as_str(), j.domain.as_str(), j.resource.as_str()),
            ("bob", "localhost", "phone/1")
        );
        assert_eq!(j.to_string(), "bob@localhost/phone/1");
        assert_eq!(j.bare().to_string(), "bob@localhost");
        assert!(Jid::parse("localhost").expect("domain").local.is_empty());
        for bad in ["", "@x", "a@", "a@b/", "a b@c", "a@b@c"] {
            assert!(Jid::parse(bad).is_err(), "{bad}");
        }
    }
}
