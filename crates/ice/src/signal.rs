//! Signalling helpers: the SDP attribute lines of RFC 8839 that carry ICE parameters,
//! either one per line (the `natter ice connect` contract and libnice's `nice_peer.py`)
//! or from a parsed session description.

use natter_sdp::{Attribute, SessionDescription};

use crate::agent::Agent;
use crate::candidate::Candidate;
use crate::error::Result;

/// One ICE line of a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IceLine {
    /// `a=ice-ufrag:`
    Ufrag(String),
    /// `a=ice-pwd:`
    Pwd(String),
    /// `a=candidate:`
    Candidate(Candidate),
    /// `a=end-of-candidates`
    EndOfCandidates,
    /// `a=ice-lite`
    Lite,
    /// `a=ice-options:` tokens
    Options(Vec<String>),
}

impl IceLine {
    /// Parses one line (`a=` prefix optional, surrounding whitespace ignored). `Ok(None)`
    /// for lines that are not ICE (other attributes, comments); `Err` for a malformed or
    /// unsupported candidate.
    pub fn parse(line: &str) -> Result<Option<IceLine>> {
        let l = line.trim();
        let l = l.strip_prefix("a=").unwrap_or(l);
        Ok(Some(if let Some(v) = l.strip_prefix("ice-ufrag:") {
            IceLine::Ufrag(v.trim().to_owned())
        } else if let Some(v) = l.strip_prefix("ice-pwd:") {
            IceLine::Pwd(v.trim().to_owned())
        } else if l.starts_with("candidate:") {
            IceLine::Candidate(Candidate::from_sdp(l)?)
        } else if l == "end-of-candidates" {
            IceLine::EndOfCandidates
        } else if l == "ice-lite" {
            IceLine::Lite
        } else if let Some(v) = l.strip_prefix("ice-options:") {
            IceLine::Options(v.split_ascii_whitespace().map(str::to_owned).collect())
        } else {
            return Ok(None);
        }))
    }
}

impl std::fmt::Display for IceLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IceLine::Ufrag(u) => write!(f, "a=ice-ufrag:{u}"),
            IceLine::Pwd(p) => write!(f, "a=ice-pwd:{p}"),
            IceLine::Candidate(c) => f.write_str(&c.to_sdp_line()),
            IceLine::EndOfCandidates => f.write_str("a=end-of-candidates"),
            IceLine::Lite => f.write_str("a=ice-lite"),
            IceLine::Options(o) => write!(f, "a=ice-options:{}", o.join(" ")),
        }
    }
}

/// Collects a peer's line-by-line description and feeds the agent as soon as it can
/// (candidates may arrive before credentials).
#[derive(Debug, Default)]
pub struct RemoteLines {
    ufrag: Option<String>,
    pwd: Option<String>,
    /// Whether `a=end-of-candidates` was seen.
    pub ended: bool,
}

impl RemoteLines {
    /// A new collector.
    pub fn new() -> Self {
        RemoteLines::default()
    }

    /// Applies one line to `agent`. Returns `Ok(true)` once `a=end-of-candidates` has
    /// been seen.
    pub fn apply(&mut self, agent: &mut Agent, line: &str) -> Result<bool> {
        match IceLine::parse(line)? {
            Some(IceLine::Ufrag(u)) => self.ufrag = Some(u),
            Some(IceLine::Pwd(p)) => self.pwd = Some(p),
            Some(IceLine::Candidate(c)) => agent.add_remote_candidate(c)?,
            Some(IceLine::EndOfCandidates) => {
                self.ended = true;
                agent.end_of_remote_candidates();
            }
            Some(IceLine::Lite) => agent.set_remote_lite(true),
            Some(IceLine::Options(_)) | None => {}
        }
        if let (Some(u), Some(p)) = (&self.ufrag, &self.pwd) {
            agent.set_remote_credentials(u, p);
        }
        Ok(self.ended)
    }
}

impl Agent {
    /// The credential lines to signal first.
    pub fn credential_lines(&self) -> [String; 2] {
        let c = self.local_credentials();
        [
            IceLine::Ufrag(c.ufrag.clone()).to_string(),
            IceLine::Pwd(c.pwd.clone()).to_string(),
        ]
    }

    /// Media-level attributes describing the local side for an SDP offer or answer:
    /// ufrag, pwd, `ice-options:trickle`, `ice-lite` when lite, every current local
    /// candidate and `end-of-candidates` when gathering is complete.
    pub fn local_attributes(&self) -> Vec<Attribute> {
        let c = self.local_credentials();
        let mut v = vec![
            Attribute::value("ice-ufrag", c.ufrag.clone()),
            Attribute::value("ice-pwd", c.pwd.clone()),
            Attribute::value("ice-options", "trickle"),
        ];
        if self.is_lite() {
            v.push(Attribute::property("ice-lite"));
        }
        v.extend(
            self.local_candidates()
                .iter()
                .map(|c| Attribute::value("candidate", c.to_sdp_value())),
        );
        if self.gathering_state() == crate::GatheringState::Complete {
            v.push(Attribute::property("end-of-candidates"));
        }
        v
    }

    /// Applies the ICE parameters of media section `media` of a remote description:
    /// credentials (media level over session level), candidates (unsupported ones such
    /// as TCP or mDNS names are skipped), `ice-lite` and `end-of-candidates`. Returns
    /// the number of candidates added.
    pub fn apply_remote_description(&mut self, sd: &SessionDescription, media: usize) -> usize {
        if let (Some(u), Some(p)) = (sd.ice_ufrag(media), sd.ice_pwd(media)) {
            let (u, p) = (u.to_owned(), p.to_owned());
            self.set_remote_credentials(&u, &p);
        }
        if sd.ice_lite() {
            self.set_remote_lite(true);
        }
        let mut added = 0;
        if let Some(m) = sd.media.get(media) {
            for v in m.attribute_values("candidate") {
                if let Ok(c) = Candidate::from_sdp(v) {
                    if self.add_remote_candidate(c).is_ok() {
                        added += 1;
                    }
                }
            }
            if m.end_of_candidates() {
                self.end_of_remote_candidates();
            }
        }
        added
    }
}
