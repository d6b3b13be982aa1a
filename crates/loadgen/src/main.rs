//! `natter-loadgen`: command-line entry of the benchmark load generator (see the library docs).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use natter_loadgen::allocate::{self, AllocateConfig};
use natter_loadgen::binding::{self, BindingConfig};
use natter_loadgen::flow::PaceConfig;
use natter_loadgen::forwarder::{self, Target};
use natter_loadgen::relay::{self, RelayConfig, RelayMode};
use natter_loadgen::sip_register::{self, RegisterConfig};
use natter_loadgen::turn_client::Credentials;
use natter_loadgen::LoadgenError;

#[derive(Parser)]
#[command(
    name = "natter-loadgen",
    version,
    about = "STUN/TURN and SIP REGISTER load generator for bench/turn and bench/sip"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Pacing options shared by the rate-driven subcommands.
#[derive(clap::Args, Clone, Copy)]
struct Pace {
    /// Offered aggregate rate, messages per second.
    #[arg(long)]
    rate: u64,
    /// Seconds of load (fractions allowed).
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Datagrams per sendmmsg call on one socket.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Longest sleep of the sender between wake-ups, microseconds.
    #[arg(long, default_value_t = 500)]
    tick_us: u64,
    /// Milliseconds to wait for late answers after the last send.
    #[arg(long, default_value_t = 500)]
    drain_ms: u64,
    /// Server pid whose CPU time (utime+stime) is measured over the load window.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Send each socket's batch as one UDP GSO message. A server with UDP GRO receives it as
    /// one run (what a NIC's GRO makes of a client's burst); others see separate datagrams.
    #[arg(long)]
    gso: bool,
}

impl Pace {
    fn config(&self) -> Result<PaceConfig, LoadgenError> {
        if !(self.duration > 0.0 && self.duration <= 600.0) {
            return Err(LoadgenError::Settings(
                "duration must be in (0, 600] seconds",
            ));
        }
        Ok(PaceConfig {
            rate_per_s: self.rate,
            duration: Duration::from_secs_f64(self.duration),
            batch: self.batch,
            tick: Duration::from_micros(self.tick_us.max(1)),
            gso: self.gso,
        })
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Channel,
    Send,
    Raw,
}

#[derive(Subcommand)]
enum Command {
    /// STUN Binding requests at a fixed rate; answers matched by transaction id.
    Binding {
        /// Server address.
        #[arg(long)]
        server: SocketAddr,
        #[command(flatten)]
        pace: Pace,
        /// Client sockets the load is spread over.
        #[arg(long, default_value_t = 4)]
        sockets: usize,
        /// Count echoed requests as answers (for the forwarder in echo mode).
        #[arg(long)]
        accept_echo: bool,
    },
    /// SIP REGISTERs over UDP at a fixed rate, each a new registration; answers matched by
    /// their Via branch. With --auth, every request is challenged and answered (digest MD5).
    SipRegister {
        /// Registrar address.
        #[arg(long)]
        server: SocketAddr,
        #[command(flatten)]
        pace: Pace,
        /// Client sockets the load is spread over.
        #[arg(long, default_value_t = 1)]
        sockets: usize,
        /// Distinct AORs (lg00000000...) cycled through without --auth.
        #[arg(long, default_value_t = 100_000)]
        users: u64,
        /// USER:PASSWORD: register USER with digest authentication.
        #[arg(long)]
        auth: Option<String>,
    },
    /// Long-term-credential Allocates; reports allocations/s; --hold keeps them for RSS.
    Allocate {
        /// Server address.
        #[arg(long)]
        server: SocketAddr,
        /// USER:PASSWORD.
        #[arg(long)]
        user: String,
        /// Allocations to make.
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// Allocations in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Keep the allocations (refreshed) until SIGINT/SIGTERM or stdin EOF, then delete.
        #[arg(long)]
        hold: bool,
        /// Longest hold, seconds.
        #[arg(long, default_value_t = 300)]
        hold_max: u64,
        /// Server pid whose CPU time is measured over the allocation phase.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// Relayed one-way traffic client -> server -> peer (peer is this process).
    Relay {
        /// TURN server, or the forwarder in raw mode.
        #[arg(long)]
        server: SocketAddr,
        /// USER:PASSWORD (channel and send modes).
        #[arg(long)]
        user: Option<String>,
        /// Sessions (one allocation and socket each).
        #[arg(long, default_value_t = 60)]
        sessions: usize,
        #[command(flatten)]
        pace: Pace,
        /// Payload bytes per packet.
        #[arg(long, default_value_t = 100)]
        payload: usize,
        /// channel (ChannelData), send (Send indications) or raw (bare UDP via the forwarder).
        #[arg(long, value_enum, default_value = "channel")]
        mode: Mode,
        /// Address the peer sink binds to (raw mode: must be the forwarder's --to).
        #[arg(long, default_value = "127.0.0.1:0")]
        peer: SocketAddr,
    },
    /// Bare UDP forwarder with the same batching: the physical ceiling.
    Forwarder {
        /// Address to receive on.
        #[arg(long)]
        listen: SocketAddr,
        /// Address to forward to; without it, echo each datagram to its source.
        #[arg(long)]
        to: Option<SocketAddr>,
        /// Datagrams per recvmmsg/sendmmsg (64: what the generator's receivers take per call).
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Microseconds to wait after a wake-up so a batch builds up (0: none).
        #[arg(long, default_value_t = 0)]
        coalesce_us: u64,
        /// Send one message per datagram instead of UDP GSO runs (the pre-GSO forwarder).
        #[arg(long)]
        no_gso: bool,
        /// Exit after this many seconds at the latest.
        #[arg(long, default_value_t = 900)]
        max_seconds: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("natter-loadgen: {err}");
            ExitCode::FAILURE
        }
    }
}

fn credentials(user: &str) -> Result<Credentials, LoadgenError> {
    Ok(user.parse::<Credentials>()?)
}

fn run(command: Command) -> Result<(), LoadgenError> {
    match command {
        Command::Binding {
            server,
            pace,
            sockets,
            accept_echo,
        } => {
            let report = binding::run(&BindingConfig {
                server,
                pace: pace.config()?,
                sockets,
                accept_echo,
                drain: Duration::from_millis(pace.drain_ms),
                server_pid: pace.server_pid,
            })?;
            println!("{}", report.line());
        }
        Command::SipRegister {
            server,
            pace,
            sockets,
            users,
            auth,
        } => {
            let auth = match auth {
                Some(a) => {
                    let (u, p) = a
                        .split_once(':')
                        .ok_or(LoadgenError::Settings("--auth wants USER:PASSWORD"))?;
                    Some((u.to_owned(), p.to_owned()))
                }
                None => None,
            };
            let report = sip_register::run(&RegisterConfig {
                server,
                pace: pace.config()?,
                sockets,
                users,
                auth,
                drain: Duration::from_millis(pace.drain_ms),
                server_pid: pace.server_pid,
            })?;
            println!("{}", report.line());
        }
        Command::Allocate {
            server,
            user,
            count,
            concurrency,
            hold,
            hold_max,
            server_pid,
        } => {
            let report = allocate::run(&AllocateConfig {
                server,
                credentials: credentials(&user)?,
                count,
                concurrency,
                hold,
                hold_max: Duration::from_secs(hold_max),
                server_pid,
            })?;
            println!("{}", report.line());
        }
        Command::Relay {
            server,
            user,
            sessions,
            pace,
            payload,
            mode,
            peer,
        } => {
            let mode = match mode {
                Mode::Channel => RelayMode::Channel,
                Mode::Send => RelayMode::Send,
                Mode::Raw => RelayMode::Raw,
            };
            let report = relay::run(&RelayConfig {
                server,
                credentials: user.as_deref().map(credentials).transpose()?,
                sessions,
                pace: pace.config()?,
                payload,
                mode,
                peer_bind: peer,
                drain: Duration::from_millis(pace.drain_ms),
                server_pid: pace.server_pid,
            })?;
            println!("{}", report.line());
        }
        Command::Forwarder {
            listen,
            to,
            batch,
            coalesce_us,
            no_gso,
            max_seconds,
        } => {
            let target = to.map_or(Target::Echo, Target::Forward);
            let stats = forwarder::run(
                listen,
                target,
                forwarder::Batching {
                    batch,
                    coalesce: Duration::from_micros(coalesce_us),
                    gso: !no_gso,
                },
                Duration::from_secs(max_seconds),
                |bound| {
                    println!("LISTENING {bound}");
                    use std::io::Write as _;
                    let _ = std::io::stdout().flush();
                },
                || false,
            )?;
            println!(
                "RESULT kind=forwarder received={} forwarded={}",
                stats.received, stats.forwarded
            );
        }
    }
    Ok(())
}
