//! `natter`: the one binary. `natter serve` runs the servers; the other subcommands are small
//! clients for operators and scripts.

mod auth;
mod cluster;
mod config;
mod demo;
mod ice_cmd;
mod phone_cmd;
mod serve;
mod sip_cluster;
mod sip_cmd;
mod sip_serve;
mod stun_cmd;
mod turn_cmd;
mod user;
mod webrtc_cmd;
mod xmpp_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "natter",
    version,
    about = "Natter: STUN/TURN, SIP and ICE in one binary"
)]
struct Cli {
    /// Log filter (tracing syntax), e.g. `info`, `natter_turn_io=debug`.
    #[arg(long, global = true, env = "NATTER_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the servers (STUN/TURN on 3478/5349) with embedded defaults.
    Serve(Box<config::ServeArgs>),
    /// Manage users in the embedded store.
    User {
        /// Directory of the store (same as `serve --data-dir`).
        #[arg(long, env = "NATTER_DATA_DIR", global = true)]
        data_dir: Option<PathBuf>,
        /// Shared store instead (`redis://HOST:PORT`, as `serve --store`).
        #[arg(long, env = "NATTER_STORE", global = true)]
        store: Option<String>,
        #[command(subcommand)]
        cmd: user::UserCmd,
    },
    /// Cluster tools: instances, their load and the shared store's health.
    Cluster {
        /// The cluster's store (`redis://HOST:PORT`, as `serve --store`); given
        /// before or after the subcommand.
        #[arg(long, env = "NATTER_STORE", global = true)]
        store: Option<String>,
        #[command(subcommand)]
        cmd: cluster::ClusterCmd,
    },
    /// STUN client tools.
    Stun {
        #[command(subcommand)]
        cmd: StunCmd,
    },
    /// TURN client tools.
    Turn {
        #[command(subcommand)]
        cmd: TurnCmd,
    },
    /// ICE tools.
    Ice {
        #[command(subcommand)]
        cmd: IceCmd,
    },
    /// SIP client tools: one request, the exchange printed.
    Sip {
        #[command(subcommand)]
        cmd: SipCmd,
    },
    /// The softphone: register, call or answer, with audio from a file or a tone.
    Phone(Box<phone_cmd::PhoneArgs>),
    /// One command, no set-up: natter serve and two phones behind two NATs call each other.
    Demo(demo::DemoArgs),
    /// One WebRTC PeerConnection: JSON signaling on stdin/stdout, events as JSON lines.
    Webrtc(Box<webrtc_cmd::WebrtcArgs>),
    /// XMPP: Jingle voice calls and chat messages through an XMPP server.
    Xmpp {
        #[command(subcommand)]
        cmd: xmpp_cmd::XmppCmd,
    },
}

#[derive(Subcommand)]
enum SipCmd {
    /// Send OPTIONS to URI.
    Options(sip_cmd::OptionsArgs),
    /// REGISTER sip:USER@DOMAIN at the registrar URI (--user NAME:PASSWORD).
    Register(sip_cmd::RegisterArgs),
    /// Send a MESSAGE (RFC 3428) with TEXT to URI.
    Message(sip_cmd::MessageArgs),
}

#[derive(Subcommand)]
enum IceCmd {
    /// Connect one ICE session: print the local description, read the peer's from stdin,
    /// then relay lines both ways.
    Connect(ice_cmd::ConnectArgs),
}

#[derive(Subcommand)]
enum StunCmd {
    /// Print the mapped address and the NAT type (RFC 5780 tests, classic RFC 3489 names).
    Probe(stun_cmd::ProbeArgs),
}

#[derive(Subcommand)]
enum TurnCmd {
    /// Allocate, bind a channel to --peer, exchange packets, print what happened.
    Allocate(turn_cmd::AllocateArgs),
}

fn block_on<F: std::future::Future<Output = Result<(), Box<dyn std::error::Error>>>>(
    f: F,
) -> Result<(), Box<dyn std::error::Error>> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let r = match cli.cmd {
        Cmd::Serve(a) => serve::run(*a),
        Cmd::User {
            data_dir,
            store,
            cmd,
        } => user::run(cmd, serve::data_dir_or_default(data_dir), store),
        Cmd::Cluster { store, cmd } => match store {
            Some(store) => cluster::run(cmd, &store),
            None => Err("natter cluster needs --store redis://HOST:PORT (or NATTER_STORE)".into()),
        },
        Cmd::Stun {
            cmd: StunCmd::Probe(a),
        } => block_on(stun_cmd::probe(a)),
        Cmd::Turn {
            cmd: TurnCmd::Allocate(a),
        } => block_on(turn_cmd::allocate(a)),
        Cmd::Sip { cmd } => block_on(async move {
            match cmd {
                SipCmd::Options(a) => sip_cmd::options(a).await,
                SipCmd::Register(a) => sip_cmd::register(a).await,
                SipCmd::Message(a) => sip_cmd::message(a).await,
            }
        }),
        Cmd::Ice {
            cmd: IceCmd::Connect(a),
        } => ice_cmd::connect(a),
        Cmd::Phone(a) => phone_cmd::run(*a),
        Cmd::Demo(a) => demo::run(a),
        Cmd::Webrtc(a) => webrtc_cmd::run(*a),
        Cmd::Xmpp { cmd } => block_on(xmpp_cmd::run(cmd)),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("natter: {e}");
            ExitCode::FAILURE
        }
    }
}
