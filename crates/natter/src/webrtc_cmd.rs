//! `natter webrtc`: one WebRTC PeerConnection with JSON signaling on stdin/stdout (W3C
//! shapes) and JSON event lines on stdout; logs on stderr. The work is done by
//! natter-webrtc; this module only maps flags.

use std::path::PathBuf;
use std::time::Duration;

use natter_ice_io::{ServerUri, TurnServer};
use natter_webrtc::driver::{self, Options};
use natter_webrtc::SignalingRole;

/// Arguments of `natter webrtc`.
#[derive(Debug, clap::Args)]
pub struct WebrtcArgs {
    /// offer: send the offer first; answer: wait for the peer's offer.
    #[arg(long, value_parser = ["offer", "answer"])]
    pub role: String,
    /// STUN server, stun:HOST[:PORT] (repeatable).
    #[arg(long)]
    pub stun: Vec<String>,
    /// TURN server, turn:HOST[:PORT].
    #[arg(long, requires = "turn_user")]
    pub turn: Option<String>,
    /// TURN credentials USER:PASSWORD.
    #[arg(long)]
    pub turn_user: Option<String>,
    /// Gather host candidates on this address only (repeatable; default: every usable
    /// interface).
    #[arg(long)]
    pub bind: Vec<std::net::IpAddr>,
    /// Audio (Opus) transceiver.
    #[arg(long)]
    pub audio: bool,
    /// Video (VP8): offer or accept a sendrecv video m-section. With --test-pattern or
    /// --send-video natter sends video of its own and decodes the peer's; otherwise, with
    /// --echo, the peer's video is sent back as it came.
    #[arg(long)]
    pub video: bool,
    /// Send a y4m file (4:2:0, looped) as VP8 video (needs --video).
    #[arg(long, conflicts_with = "test_pattern")]
    pub send_video: Option<PathBuf>,
    /// Send a moving test pattern (320x240, 30 fps) as VP8 video (needs --video).
    #[arg(long)]
    pub test_pattern: bool,
    /// Decode the peer's video and write it to this y4m file (needs --video).
    #[arg(long)]
    pub record_video: Option<PathBuf>,
    /// Preferred video codec, vp8 or h264 (H.264 packetization-mode 1, Constrained
    /// Baseline; OpenH264, cargo feature h264): offered first, chosen when offered.
    #[arg(long, default_value = "vp8", value_parser = ["vp8", "h264"])]
    pub video_codec: String,
    /// Data channels (as offerer: open channel "natter").
    #[arg(long)]
    pub data: bool,
    /// Answer each text message M with "echo:M"; send received audio back.
    #[arg(long)]
    pub echo: bool,
    /// WAV file to send as audio (once, then silence); without it and without --echo a
    /// 440 Hz tone is sent.
    #[arg(long)]
    pub play: Option<PathBuf>,
    /// WAV file (48 kHz mono) to record received audio to.
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// DTLS engine: dimpl (DTLS 1.3, falls back to 1.2) or openssl (DTLS 1.2 only).
    #[arg(long, default_value = "dimpl", value_parser = ["dimpl", "openssl"])]
    pub dtls: String,
    /// Do not resolve the peer's mDNS (.local) candidates; rely on peer-reflexive ones.
    #[arg(long)]
    pub no_mdns: bool,
    /// Print a {"event":"stats",...} line every this many seconds (also on stdin
    /// {"cmd":"stats"}).
    #[arg(long)]
    pub stats_interval: Option<f64>,
    /// Give up when not connected after this many seconds.
    #[arg(long, default_value_t = 60)]
    pub connect_timeout: u64,
    /// Built-in sender (offerer with --data): once the channel opens, send this many MB
    /// to a peer running --echo, print a {"event":"bench",...} line and exit.
    #[arg(long)]
    pub bench_send: Option<f64>,
    /// Message size of --bench-send in bytes.
    #[arg(long, default_value_t = 65536)]
    pub bench_size: usize,
    /// Messages of --bench-send in flight (sent, echo not back yet).
    #[arg(long, default_value_t = 8)]
    pub bench_window: usize,
    /// Do not print {"event":"message"} lines (an echoing bench peer).
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `natter webrtc`.
pub fn run(a: WebrtcArgs) -> Result<(), Box<dyn std::error::Error>> {
    let role = if a.role == "offer" {
        SignalingRole::Offerer
    } else {
        SignalingRole::Answerer
    };
    if (a.play.is_some() || a.record.is_some()) && !a.audio {
        return Err("--play and --record need --audio".into());
    }
    if (a.send_video.is_some() || a.test_pattern || a.record_video.is_some()) && !a.video {
        return Err("--send-video, --test-pattern and --record-video need --video".into());
    }
    let send_video = match (a.send_video, a.test_pattern) {
        (Some(p), _) => Some(driver::VideoInput::File(p)),
        (None, true) => Some(driver::VideoInput::TestPattern),
        (None, false) => None,
    };
    let mut stun = Vec::new();
    for s in &a.stun {
        stun.extend(ServerUri::parse(s, "stun")?.resolve_all()?);
    }
    let turn = match &a.turn {
        Some(t) => {
            let u = ServerUri::parse(t, "turn")?;
            let (username, password) =
                crate::config::parse_user(a.turn_user.as_deref().unwrap_or(""))?;
            Some(TurnServer {
                server: u.resolve()?,
                username,
                password,
            })
        }
        None => None,
    };
    let data = a.data || !(a.audio || a.video);
    driver::run(Options {
        role,
        stun,
        turn,
        audio: a.audio,
        video: a.video,
        data,
        echo: a.echo,
        label: driver::DEFAULT_LABEL.into(),
        connect_timeout: Duration::from_secs(a.connect_timeout),
        dtls: natter_webrtc::DtlsImpl::parse(&a.dtls).unwrap_or_default(),
        bind: a.bind,
        play: a.play,
        record: a.record,
        mdns: !a.no_mdns,
        stats_interval: a
            .stats_interval
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64),
        send_video,
        record_video: a.record_video,
        video_codec: if a.video_codec == "h264" {
            natter_webrtc::video::Codec::H264
        } else {
            natter_webrtc::video::Codec::Vp8
        },
        bench: a
            .bench_send
            .filter(|mb| mb.is_finite() && *mb > 0.0)
            .map(|mb| driver::BenchSend {
                bytes: (mb * 1_048_576.0) as u64,
                size: a.bench_size.max(1),
                window: a.bench_window.max(1),
            }),
        quiet: a.quiet,
    })?;
    Ok(())
}
