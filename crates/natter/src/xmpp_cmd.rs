//! `natter xmpp`: XMPP chat and Jingle voice calls (XEP-0166/0167/0176/0320, XEP-0353) from
//! the command line. Prints the phone's lines on stdout (`incoming`, `established`,
//! `ended`, `stats`); logs on stderr. The work is done by natter-xmpp's driver; this module
//! only maps flags.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use natter_media::CodecKind;
use natter_phone::audio::SourceSpec;
use natter_phone::sip_transport::TlsTrust;
use natter_xmpp::driver::{DriverConfig, Mode};
use natter_xmpp::{Jid, TlsPolicy};

/// `natter xmpp` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum XmppCmd {
    /// Call JID (a bare JID rings every device via XEP-0353; a full JID is called directly).
    Call {
        /// Whom to call.
        to: String,
        #[command(flatten)]
        account: AccountArgs,
        #[command(flatten)]
        media: MediaArgs,
        /// Seconds after which the established call hangs up.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
    },
    /// Go online and answer incoming calls.
    Answer {
        #[command(flatten)]
        account: AccountArgs,
        #[command(flatten)]
        media: MediaArgs,
        /// Exit after the first call ends.
        #[arg(long)]
        once: bool,
    },
    /// Send one chat message.
    Send {
        /// Recipient.
        to: String,
        /// Text.
        text: String,
        #[command(flatten)]
        account: AccountArgs,
    },
}

/// The account and how to reach its server.
#[derive(Debug, clap::Args)]
pub struct AccountArgs {
    /// Our JID, USER@DOMAIN[/RESOURCE].
    #[arg(long)]
    pub jid: String,
    /// Password.
    #[arg(long, env = "NATTER_XMPP_PASSWORD")]
    pub password: String,
    /// Server HOST[:PORT] (default: the JID's domain, port 5222; 5223 with --direct-tls).
    #[arg(long)]
    pub server: Option<String>,
    /// Never use TLS (a loopback test server).
    #[arg(long, conflicts_with_all = ["require_tls", "direct_tls"])]
    pub no_tls: bool,
    /// Refuse a server that does not offer STARTTLS.
    #[arg(long)]
    pub require_tls: bool,
    /// TLS from the first byte (XEP-0368).
    #[arg(long)]
    pub direct_tls: bool,
    /// PEM CA (or self-signed certificate) to trust (default: the system bundle).
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// Accept any server certificate (a self-signed test server).
    #[arg(long)]
    pub tls_insecure: bool,
    /// Allow SASL PLAIN on a stream without TLS.
    #[arg(long)]
    pub allow_plain: bool,
}

/// Media settings of calls.
#[derive(Debug, clap::Args)]
pub struct MediaArgs {
    /// WAV file to send (once per call, then silence).
    #[arg(long, conflicts_with = "tone")]
    pub play: Option<PathBuf>,
    /// Send a sine tone of this frequency (Hz).
    #[arg(long)]
    pub tone: Option<f32>,
    /// Write what we play out to this WAV file.
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Codec, repeatable, in preference order: opus, G722, PCMU, PCMA, L16.
    #[arg(long = "codec")]
    pub codecs: Vec<String>,
    /// Host address for media (default: every usable address).
    #[arg(long)]
    pub bind: Option<IpAddr>,
    /// Do not use the TURN server the XMPP server announces (XEP-0215).
    #[arg(long)]
    pub no_turn: bool,
    /// Offer only the TURN relayed candidate.
    #[arg(long, conflicts_with = "no_turn")]
    pub relay_only: bool,
    /// End a call when nothing arrives from the peer for this many seconds.
    #[arg(long, default_value_t = 20.0)]
    pub media_timeout: f64,
    /// Give up a call that is not established after this many seconds.
    #[arg(long, default_value_t = 30.0)]
    pub setup_timeout: f64,
}

fn config(a: &AccountArgs, mode: Mode) -> Result<DriverConfig, Box<dyn std::error::Error>> {
    let jid = Jid::parse(&a.jid)?;
    if jid.local.is_empty() {
        return Err("--jid must be USER@DOMAIN".into());
    }
    let mut c = DriverConfig::new(jid, &a.password, mode);
    c.server = a.server.clone();
    c.tls = if a.no_tls {
        TlsPolicy::Disabled
    } else if a.direct_tls {
        TlsPolicy::Direct
    } else if a.require_tls || a.tls_ca.is_some() || a.tls_insecure {
        TlsPolicy::Required
    } else {
        TlsPolicy::Opportunistic
    };
    let system = PathBuf::from("/etc/ssl/certs/ca-certificates.crt");
    c.trust = TlsTrust {
        ca: a
            .tls_ca
            .clone()
            .or_else(|| system.exists().then_some(system)),
        insecure: a.tls_insecure,
        server_name: String::new(),
    };
    c.allow_plain = a.allow_plain;
    Ok(c)
}

fn media(c: &mut DriverConfig, m: &MediaArgs) -> Result<(), Box<dyn std::error::Error>> {
    c.source = match (&m.play, m.tone) {
        (Some(p), _) => SourceSpec::File(p.clone()),
        (None, Some(hz)) => SourceSpec::Tone(hz),
        _ => SourceSpec::Silence,
    };
    c.record = m.record.clone();
    if !m.codecs.is_empty() {
        c.codecs = m
            .codecs
            .iter()
            .map(|s| CodecKind::from_name(s).ok_or_else(|| format!("unknown codec {s:?}")))
            .collect::<Result<_, _>>()?;
    }
    c.codecs.retain(|k| k.is_available());
    if c.codecs.is_empty() {
        return Err("no available codec".into());
    }
    c.bind = m.bind;
    c.use_turn = !m.no_turn;
    c.relay_only = m.relay_only;
    c.media_timeout = Duration::from_secs_f64(m.media_timeout.max(0.5));
    c.setup_timeout = Duration::from_secs_f64(m.setup_timeout.max(0.5));
    Ok(())
}

/// Runs `natter xmpp`; the exit status says whether every call went well.
pub async fn run(cmd: XmppCmd) -> Result<(), Box<dyn std::error::Error>> {
    let cfg = match cmd {
        XmppCmd::Call {
            to,
            account,
            media: m,
            duration,
        } => {
            let to = Jid::parse(&to)?;
            let mut c = config(
                &account,
                Mode::Call {
                    to,
                    duration: Duration::from_secs_f64(duration.max(0.0)),
                },
            )?;
            media(&mut c, &m)?;
            c
        }
        XmppCmd::Answer {
            account,
            media: m,
            once,
        } => {
            let mut c = config(&account, Mode::Answer { once })?;
            media(&mut c, &m)?;
            c
        }
        XmppCmd::Send { to, text, account } => {
            let to = Jid::parse(&to)?;
            config(&account, Mode::Send { to, text })?
        }
    };
    let ok = natter_xmpp::driver::run(cfg, std::io::stdout()).await?;
    if ok {
        Ok(())
    } else {
        Err("a call did not go well (see the ended line)".into())
    }
}
