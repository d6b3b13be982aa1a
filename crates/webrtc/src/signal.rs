//! Signaling and events of `natter webrtc` as JSON lines, in the W3C shapes
//! (`RTCSessionDescriptionInit`, `RTCIceCandidateInit`) so a browser page can pass them
//! straight to `setRemoteDescription` / `addIceCandidate`.

use serde_json::{json, Value};

/// One signaling message from the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// `{"type":"offer","sdp":...}`.
    Offer(String),
    /// `{"type":"answer","sdp":...}`.
    Answer(String),
    /// `{"candidate":"candidate:...","sdpMid":...,"sdpMLineIndex":...}`.
    Candidate {
        /// The candidate attribute value, with or without `candidate:`.
        candidate: String,
        /// `sdpMid`.
        mid: Option<String>,
        /// `sdpMLineIndex`.
        mline: Option<u64>,
    },
    /// `{"candidate":""}` (or `null`): the peer has no more candidates.
    EndOfCandidates,
    /// Not signaling but a command of ours: `{"type":"message","label":L,"data":TEXT}`
    /// sends TEXT on the open channel labelled L (the first open channel without a label).
    Send {
        /// Channel label.
        label: Option<String>,
        /// Text to send.
        data: String,
    },
    /// `{"cmd":"stats"}`: print a `{"event":"stats",...}` line now.
    Stats,
    /// `{"cmd":"add-channel","label":L}`: open a data channel; when the session has no
    /// data m-section yet, natter offers one (renegotiation).
    AddChannel {
        /// The channel's label.
        label: String,
    },
    /// `{"cmd":"buffered-low","label":L,"bytes":N}`: set channel L's low mark; natter then
    /// prints `{"event":"buffered-low","label":L,...}` each time its queued bytes fall to N.
    BufferedLow {
        /// The channel's label.
        label: String,
        /// The low mark in bytes.
        bytes: usize,
    },
    /// `{"cmd":"add","kind":"audio"|"data"}`: natter offers the session again with that
    /// m-section added (renegotiation, JSEP §5.2.2).
    AddMedia {
        /// Add audio.
        audio: bool,
        /// Add data.
        data: bool,
    },
}

/// Why a line was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// Not JSON, or not an object.
    #[error("not a JSON object: {0}")]
    Json(String),
    /// A JSON object of no known shape.
    #[error("unknown signaling message: {0}")]
    Unknown(String),
}

impl Signal {
    /// Parses one line.
    pub fn parse(line: &str) -> Result<Signal, SignalError> {
        let v: Value =
            serde_json::from_str(line.trim()).map_err(|e| SignalError::Json(e.to_string()))?;
        let obj = v
            .as_object()
            .ok_or_else(|| SignalError::Json("not an object".into()))?;
        let short = || line.chars().take(80).collect::<String>();
        if let Some(c) = obj.get("cmd").and_then(Value::as_str) {
            return match c {
                "stats" => Ok(Signal::Stats),
                "add-channel" => match obj.get("label").and_then(Value::as_str) {
                    Some(l) => Ok(Signal::AddChannel {
                        label: l.to_owned(),
                    }),
                    None => Err(SignalError::Unknown(short())),
                },
                "buffered-low" => match (
                    obj.get("label").and_then(Value::as_str),
                    obj.get("bytes")
                        .and_then(Value::as_u64)
                        .and_then(|b| usize::try_from(b).ok()),
                ) {
                    (Some(l), Some(bytes)) => Ok(Signal::BufferedLow {
                        label: l.to_owned(),
                        bytes,
                    }),
                    _ => Err(SignalError::Unknown(short())),
                },
                "add" => match obj.get("kind").and_then(Value::as_str) {
                    Some("audio") => Ok(Signal::AddMedia {
                        audio: true,
                        data: false,
                    }),
                    Some("data") => Ok(Signal::AddMedia {
                        audio: false,
                        data: true,
                    }),
                    _ => Err(SignalError::Unknown(short())),
                },
                _ => Err(SignalError::Unknown(short())),
            };
        }
        if let Some(t) = obj.get("type").and_then(Value::as_str) {
            let sdp = obj.get("sdp").and_then(Value::as_str).unwrap_or_default();
            return match t {
                "offer" => Ok(Signal::Offer(sdp.to_owned())),
                "answer" => Ok(Signal::Answer(sdp.to_owned())),
                "message" => Ok(Signal::Send {
                    label: obj.get("label").and_then(Value::as_str).map(str::to_owned),
                    data: obj
                        .get("data")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                }),
                _ => Err(SignalError::Unknown(short())),
            };
        }
        if let Some(c) = obj.get("candidate") {
            let cand = c.as_str().unwrap_or_default().trim();
            if cand.is_empty() {
                return Ok(Signal::EndOfCandidates);
            }
            return Ok(Signal::Candidate {
                candidate: cand.to_owned(),
                mid: obj.get("sdpMid").and_then(Value::as_str).map(str::to_owned),
                mline: obj.get("sdpMLineIndex").and_then(Value::as_u64),
            });
        }
        Err(SignalError::Unknown(short()))
    }
}

/// `{"type":kind,"sdp":sdp}`.
pub fn description(kind: &str, sdp: &str) -> String {
    json!({ "type": kind, "sdp": sdp }).to_string()
}

/// A trickled local candidate (`value` without `candidate:`), or end-of-candidates when
/// `None`.
pub fn candidate(value: Option<&str>, mid: &str, mline: u64) -> String {
    let c = value.map_or_else(String::new, |v| format!("candidate:{v}"));
    json!({ "candidate": c, "sdpMid": mid, "sdpMLineIndex": mline }).to_string()
}

/// An event line, `{"event":name, ...fields}`.
pub fn event(name: &str, fields: Value) -> String {
    let mut o = serde_json::Map::new();
    o.insert("event".into(), Value::String(name.into()));
    if let Value::Object(m) = fields {
        o.extend(m);
    }
    Value::Object(o).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_w3c_shapes() {
        assert_eq!(
            Signal::parse(r#"{"type":"offer","sdp":"v=0\r\n"}"#),
            Ok(Signal::Offer("v=0\r\n".into()))
        );
        assert_eq!(
            Signal::parse(
                r#"{"candidate":"candidate:1 1 udp 1 10.0.0.1 9 typ host","sdpMid":"0","sdpMLineIndex":0}"#
            ),
            Ok(Signal::Candidate {
                candidate: "candidate:1 1 udp 1 10.0.0.1 9 typ host".into(),
                mid: Some("0".into()),
                mline: Some(0)
            })
        );
        assert_eq!(
            Signal::parse(r#"{"candidate":"","sdpMid":"0","sdpMLineIndex":0}"#),
            Ok(Signal::EndOfCandidates)
        );
        assert_eq!(Signal::parse(r#"{"cmd":"stats"}"#), Ok(Signal::Stats));
        assert_eq!(
            Signal::parse(r#"{"cmd":"add-channel","label":"late"}"#),
            Ok(Signal::AddChannel {
                label: "late".into()
            })
        );
        assert_eq!(
            Signal::parse(r#"{"cmd":"add","kind":"audio"}"#),
            Ok(Signal::AddMedia {
                audio: true,
                data: false
            })
        );
        assert!(Signal::parse(r#"{"cmd":"add","kind":"smell"}"#).is_err());
        assert!(Signal::parse(r#"{"cmd":"add-channel"}"#).is_err());
        assert_eq!(
            Signal::parse(r#"{"cmd":"buffered-low","label":"bulk","bytes":65536}"#),
            Ok(Signal::BufferedLow {
                label: "bulk".into(),
                bytes: 65536
            })
        );
        assert!(Signal::parse(r#"{"cmd":"buffered-low","label":"bulk","bytes":-1}"#).is_err());
        assert!(Signal::parse(r#"{"cmd":"buffered-low","bytes":1}"#).is_err());
        assert!(Signal::parse(r#"{"cmd":"reboot"}"#).is_err());
        assert!(Signal::parse("[1]").is_err());
        assert!(Signal::parse(r#"{"foo":1}"#).is_err());
    }

    #[test]
    fn writes_events_and_candidates() {
        assert_eq!(
            event("channel-open", json!({"label": "bar"})),
            r#"{"event":"channel-open","label":"bar"}"#
        );
        assert_eq!(
            candidate(None, "0", 0),
            r#"{"candidate":"","sdpMLineIndex":0,"sdpMid":"0"}"#
        );
    }
}
