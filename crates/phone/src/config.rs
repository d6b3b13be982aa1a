//! The phone's settings, as `natter phone` takes them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use natter_ice_io::TurnServer;
use natter_media::CodecKind;

use crate::audio::SourceSpec;
use crate::offer::SrtpMode;
use crate::sip_transport::{SipTransportKind, TlsTrust};

/// An account: the AoR we register and call from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// User part.
    pub user: String,
    /// Domain part (the registrar's domain).
    pub domain: String,
    /// Digest password.
    pub password: Option<String>,
}

impl Account {
    /// Parses `sip:user@domain` (or `user@domain`).
    pub fn parse(uri: &str, password: Option<String>) -> Result<Account, String> {
        let s = uri.strip_prefix("sip:").unwrap_or(uri);
        let s = s.split(';').next().unwrap_or(s);
        let (user, domain) = s
            .split_once('@')
            .ok_or_else(|| format!("account must be sip:USER@DOMAIN, got {uri:?}"))?;
        if user.is_empty() || domain.is_empty() {
            return Err(format!("account must be sip:USER@DOMAIN, got {uri:?}"));
        }
        Ok(Account {
            user: user.to_owned(),
            domain: domain.to_owned(),
            password,
        })
    }

    /// `sip:user@domain`.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.user, self.domain)
    }
}

/// Everything the phone needs.
#[derive(Debug, Clone)]
pub struct PhoneConfig {
    /// Account (none: direct calls only, as `natter@IP`).
    pub account: Option<Account>,
    /// Registrar / outbound proxy address.
    pub registrar: Option<SocketAddr>,
    /// Transport towards the registrar (UDP without one).
    pub transport: SipTransportKind,
    /// TLS trust for `transport = Tls`.
    pub tls: TlsTrust,
    /// SIP listen address (port 0: any).
    pub listen: SocketAddr,
    /// STUN servers (ICE server-reflexive candidates).
    pub stun: Vec<SocketAddr>,
    /// TURN server (ICE relayed candidate).
    pub turn: Option<TurnServer>,
    /// Use ICE even without STUN/TURN (host candidates).
    pub ice: bool,
    /// Codecs in preference order.
    pub codecs: Vec<CodecKind>,
    /// Keying.
    pub srtp: SrtpMode,
    /// Refuse plain RTP.
    pub srtp_required: bool,
    /// Microphone.
    pub source: SourceSpec,
    /// Speaker: a WAV file of the playout.
    pub record: Option<PathBuf>,
    /// Opus DTX (silence is not sent).
    pub opus_dtx: bool,
    /// Use this sound device (ALSA name, `default`) as microphone and speaker.
    pub device: Option<String>,
    /// Auto-answer incoming calls.
    pub answer: bool,
    /// Exit after the first call.
    pub once: bool,
    /// Call this URI.
    pub call: Option<String>,
    /// Hang up this long after the call is established.
    pub duration: Duration,
    /// DTMF digits to send once established.
    pub dtmf: Option<String>,
    /// Give up on a call that is not established within this time.
    pub setup_timeout: Duration,
    /// End a call when nothing arrives from the peer this long.
    pub media_timeout: Duration,
    /// Registration expiry asked for.
    pub register_expires: u32,
    /// Put established calls on hold after the first duration and resume after the
    /// second (both from `established`).
    pub hold: Option<(Duration, Duration)>,
}

impl Default for PhoneConfig {
    fn default() -> Self {
        PhoneConfig {
            account: None,
            registrar: None,
            transport: SipTransportKind::Udp,
            tls: TlsTrust::default(),
            listen: SocketAddr::from(([0, 0, 0, 0], 0)),
            stun: Vec::new(),
            turn: None,
            ice: false,
            codecs: vec![
                CodecKind::Opus,
                CodecKind::G722,
                CodecKind::Pcmu,
                CodecKind::Pcma,
            ],
            srtp: SrtpMode::Off,
            srtp_required: false,
            source: SourceSpec::Silence,
            record: None,
            device: None,
            opus_dtx: false,
            answer: false,
            once: false,
            call: None,
            duration: Duration::from_secs(10),
            dtmf: None,
            setup_timeout: Duration::from_secs(30),
            media_timeout: Duration::from_secs(20),
            register_expires: 300,
            hold: None,
        }
    }
}
