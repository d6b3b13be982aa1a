//! `natter phone`: the softphone on the command line. One event per stdout line
//! (`registered`, `incoming`, `ringing`, `established`, `dtmf`, `ended`, `stats`); logs on
//! stderr. The work is done by natter-phone; this module only maps flags.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use natter_ice_io::{ServerUri, TurnServer};
use natter_media::CodecKind;
use natter_phone::audio::SourceSpec;
use natter_phone::offer::SrtpMode;
use natter_phone::sip_transport::{SipTransportKind, TlsTrust};
use natter_phone::{Account, Phone, PhoneConfig};

/// Arguments of `natter phone`.
#[derive(Debug, clap::Args)]
pub struct PhoneArgs {
    /// Our address of record, sip:USER@DOMAIN.
    #[arg(long)]
    pub account: Option<String>,
    /// Digest password of the account.
    #[arg(long)]
    pub password: Option<String>,
    /// Registrar and outbound proxy, sip:HOST[:PORT][;transport=udp|tcp|tls] (or sips:).
    #[arg(long)]
    pub registrar: Option<String>,
    /// PEM certificate (or CA) to trust for a TLS registrar (`;transport=tls` or `sips:`).
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// Do not check the TLS registrar's certificate (natter serve's self-signed one).
    #[arg(long)]
    pub tls_insecure: bool,
    /// SIP listen address (default: an ephemeral port on the route to the registrar).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// STUN server for ICE, stun:HOST[:PORT] (repeatable).
    #[arg(long)]
    pub stun: Vec<String>,
    /// TURN server for ICE, turn:HOST[:PORT].
    #[arg(long, requires = "turn_user")]
    pub turn: Option<String>,
    /// TURN credentials USER:PASSWORD (a REST name EXPIRY:USER:PASSWORD works too).
    #[arg(long)]
    pub turn_user: Option<String>,
    /// Use ICE with host candidates even without --stun/--turn.
    #[arg(long)]
    pub ice: bool,
    /// Codec, repeatable, in preference order: PCMU, PCMA, G722, opus, L16.
    #[arg(long = "codec")]
    pub codecs: Vec<String>,
    /// Opus discontinuous transmission: silence is not sent (the peer plays comfort noise).
    #[arg(long)]
    pub opus_dtx: bool,
    /// Media protection: off, sdes or dtls.
    #[arg(long, default_value = "off")]
    pub srtp: String,
    /// Refuse calls without SRTP.
    #[arg(long)]
    pub srtp_required: bool,
    /// WAV file to send (played once per call, then silence).
    #[arg(long, conflicts_with = "tone")]
    pub play: Option<PathBuf>,
    /// Send a sine tone of this frequency (Hz).
    #[arg(long)]
    pub tone: Option<f32>,
    /// Write what the phone plays out (after the jitter buffer) to this WAV file.
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Talk through a sound device (ALSA; default: the system's default microphone and
    /// speaker) instead of files. Needs a build with ALSA (libasound).
    #[arg(long, num_args = 0..=1, default_missing_value = "default")]
    pub device: Option<String>,
    /// Answer incoming calls automatically.
    #[arg(long)]
    pub answer: bool,
    /// Exit after the first call ends.
    #[arg(long)]
    pub once: bool,
    /// Call this URI (sip:USER@DOMAIN through the registrar, or sip:IP:PORT directly).
    #[arg(long)]
    pub call: Option<String>,
    /// Seconds after which a placed call hangs up.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// DTMF digits to send once the call is established (RFC 4733, else SIP INFO).
    #[arg(long)]
    pub dtmf: Option<String>,
    /// End a call when nothing (no RTP, no RTCP) arrives from the peer for this long.
    #[arg(long, default_value_t = 20.0)]
    pub media_timeout: f64,
    /// Put the call on hold (re-INVITE a=sendonly) this many seconds after it is
    /// established...
    #[arg(long, requires = "resume_at")]
    pub hold_at: Option<f64>,
    /// ...and resume it (a=sendrecv) this many seconds after it is established.
    #[arg(long, requires = "hold_at")]
    pub resume_at: Option<f64>,
}

/// The address, transport and host name of a `sip:HOST[:PORT][;transport=udp|tcp|tls]`
/// (or `sips:`) URI; the default port is 5060, or 5061 for TLS.
fn registrar_addr(uri: &str) -> Result<(SocketAddr, SipTransportKind, String), String> {
    let (s, mut kind) = match uri.strip_prefix("sips:") {
        Some(r) => (r, SipTransportKind::Tls),
        None => (
            uri.strip_prefix("sip:").unwrap_or(uri),
            SipTransportKind::Udp,
        ),
    };
    let (hostport, params) = s.split_once(';').unwrap_or((s, ""));
    for p in params.split(';') {
        if let Some(t) = p.strip_prefix("transport=") {
            kind = match t.to_ascii_lowercase().as_str() {
                "udp" => SipTransportKind::Udp,
                "tcp" => SipTransportKind::Tcp,
                "tls" => SipTransportKind::Tls,
                other => return Err(format!("--registrar transport={other}: udp, tcp or tls")),
            };
        }
    }
    let hostport = hostport
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(hostport);
    let (host, port) = match hostport.strip_prefix('[') {
        Some(r) => {
            let (h, after) = r.split_once(']').ok_or("unclosed '[' in --registrar")?;
            (h, after.strip_prefix(':'))
        }
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    let port: u16 = match port {
        Some(p) => p
            .parse()
            .map_err(|_| format!("--registrar {uri}: bad port {p:?}"))?,
        None if kind == SipTransportKind::Tls => 5061,
        None => 5060,
    };
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("--registrar {uri}: {e}"))?
        .next()
        .ok_or_else(|| format!("--registrar {uri}: no address"))?;
    Ok((addr, kind, host.to_owned()))
}

/// Runs `natter phone`; the exit status says whether every call went well.
pub fn run(a: PhoneArgs) -> Result<(), Box<dyn std::error::Error>> {
    let mut cfg = PhoneConfig::default();
    if let Some(acc) = &a.account {
        cfg.account = Some(Account::parse(acc, a.password.clone())?);
    }
    if let Some(r) = &a.registrar {
        let (addr, kind, host) = registrar_addr(r)?;
        cfg.registrar = Some(addr);
        cfg.transport = kind;
        cfg.tls = TlsTrust {
            ca: a.tls_ca.clone(),
            insecure: a.tls_insecure,
            server_name: host,
        };
    }
    if let Some(l) = a.listen {
        cfg.listen = l;
    }
    for s in &a.stun {
        cfg.stun.extend(ServerUri::parse(s, "stun")?.resolve_all()?);
    }
    if let Some(t) = &a.turn {
        let u = ServerUri::parse(t, "turn")?;
        let (username, password) = crate::config::parse_user(a.turn_user.as_deref().unwrap_or(""))?;
        cfg.turn = Some(TurnServer {
            server: u.resolve()?,
            username,
            password,
        });
    }
    cfg.ice = a.ice;
    if !a.codecs.is_empty() {
        cfg.codecs = a
            .codecs
            .iter()
            .map(|c| CodecKind::from_name(c).ok_or_else(|| format!("unknown codec {c:?}")))
            .collect::<Result<_, _>>()?;
        if let Some(k) = cfg.codecs.iter().find(|k| !k.is_available()) {
            return Err(format!(
                "codec {} is not available in this build (install libopus-dev and rebuild)",
                k.rtp_name()
            )
            .into());
        }
    }
    cfg.codecs.retain(|k| k.is_available());
    cfg.srtp =
        SrtpMode::parse(&a.srtp).ok_or_else(|| format!("--srtp {}: off, sdes or dtls", a.srtp))?;
    cfg.srtp_required = a.srtp_required;
    if cfg.srtp_required && cfg.srtp == SrtpMode::Off {
        cfg.srtp = SrtpMode::Sdes;
    }
    cfg.source = match (&a.play, a.tone) {
        (Some(p), _) => SourceSpec::File(p.clone()),
        (None, Some(hz)) => SourceSpec::Tone(hz),
        _ => SourceSpec::Silence,
    };
    cfg.record = a.record.clone();
    cfg.opus_dtx = a.opus_dtx;
    if a.device.is_some() && !natter_audio_device::available() {
        return Err(
            "--device: this natter was built without ALSA (install libasound2-dev and rebuild)"
                .into(),
        );
    }
    cfg.device = a.device.clone();
    cfg.answer = a.answer;
    cfg.once = a.once;
    cfg.call = a.call.clone();
    cfg.duration = Duration::from_secs_f64(a.duration.max(0.0));
    cfg.dtmf = a.dtmf.clone();
    cfg.media_timeout = Duration::from_secs_f64(a.media_timeout.max(0.5));
    if let (Some(h), Some(r)) = (a.hold_at, a.resume_at) {
        if !(0.0..r).contains(&h) {
            return Err("--hold-at must come before --resume-at".into());
        }
        cfg.hold = Some((Duration::from_secs_f64(h), Duration::from_secs_f64(r)));
    }
    if cfg.call.is_none() && !cfg.answer && cfg.registrar.is_none() {
        return Err("nothing to do: give --call, --answer or --registrar".into());
    }
    let ok = Phone::new(cfg, std::io::stdout())?.run()?;
    if ok {
        Ok(())
    } else {
        Err("a call did not go well (see the ended line)".into())
    }
}
