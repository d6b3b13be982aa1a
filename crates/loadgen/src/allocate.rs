//! `allocate`: full long-term-credential Allocates (401, then retry with MESSAGE-INTEGRITY),
//! `concurrency` at a time, each on its own client socket (one allocation per 5-tuple).
//!
//! Without `--hold` every allocation is deleted (Refresh with LIFETIME 0) right after the
//! measured phase, so repeated runs do not exhaust the server's relay ports. With `--hold`
//! they are kept, refreshed before they expire, until SIGINT/SIGTERM, end of standard input or
//! the hold limit; the line `HOLDING <n>` tells a script when to sample the server's memory.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::batch::{bind_udp, raise_fd_limit};
use crate::measure::Measurement;
use crate::report::Report;
use crate::turn_client::{Credentials, TurnClient, DEFAULT_LIFETIME};
use crate::LoadgenError;

/// Most allocations one run makes.
pub const MAX_ALLOCATIONS: usize = 20_000;

/// Settings of an allocate run.
#[derive(Clone, Debug)]
pub struct AllocateConfig {
    /// TURN server.
    pub server: SocketAddr,
    /// Long-term credentials.
    pub credentials: Credentials,
    /// Allocations to make.
    pub count: usize,
    /// Allocations in flight at once (worker threads).
    pub concurrency: usize,
    /// Keep them until told to stop.
    pub hold: bool,
    /// Longest hold.
    pub hold_max: Duration,
    /// Server process to measure, if any.
    pub server_pid: Option<u32>,
}

static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP_REQUESTED.store(true, Ordering::SeqCst);
}

/// Runs the allocations (and the hold) and returns the report.
pub fn run(config: &AllocateConfig) -> Result<Report, LoadgenError> {
    if config.count == 0 || config.count > MAX_ALLOCATIONS {
        return Err(LoadgenError::Settings("count must be 1..=20000"));
    }
    raise_fd_limit();
    let workers = config.concurrency.clamp(1, config.count);
    let measurement = Measurement::start(config.server_pid);
    let started = Instant::now();
    let results: Vec<(Vec<TurnClient>, u64, Option<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                scope.spawn(move || {
                    let mut clients = Vec::new();
                    let mut failures = 0u64;
                    let mut first_error = None;
                    let mut index = worker;
                    while index < config.count {
                        match allocate_one(config) {
                            Ok(client) => clients.push(client),
                            Err(err) => {
                                failures += 1;
                                first_error.get_or_insert_with(|| err.to_string());
                            }
                        }
                        index += workers;
                    }
                    (clients, failures, first_error)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or((Vec::new(), 0, Some("worker panicked".into())))
            })
            .collect()
    });
    let elapsed = started.elapsed();
    let sample = measurement.finish();

    let mut clients: Vec<TurnClient> = Vec::with_capacity(config.count);
    let mut failures = 0;
    let mut first_error = None;
    for (mut worker_clients, worker_failures, worker_error) in results {
        clients.append(&mut worker_clients);
        failures += worker_failures;
        if first_error.is_none() {
            first_error = worker_error;
        }
    }
    let allocated = clients.len() as u64;

    let mut report = Report::new("allocate");
    report
        .int("count", config.count as u64)
        .int("concurrency", workers as u64)
        .int("allocated", allocated)
        .int("failures", failures)
        .float("alloc_per_s", crate::per_second(allocated, elapsed), 0);
    sample.add_to(&mut report, allocated);
    if let Some(error) = &first_error {
        report.word("first_error", error);
    }

    if config.hold {
        hold(config, &mut clients, &report);
    }
    let delete_failures = delete_all(clients, workers);
    report.int("delete_failures", delete_failures);
    Ok(report)
}

fn allocate_one(config: &AllocateConfig) -> Result<TurnClient, LoadgenError> {
    let socket = bind_udp(crate::any_local_for(config.server), 64 << 10)?;
    socket.connect(config.server)?;
    let mut client = TurnClient::new(Arc::new(socket), config.credentials.clone());
    client.allocate(DEFAULT_LIFETIME)?;
    Ok(client)
}

/// Keeps the allocations alive until a stop signal, end of stdin or `hold_max`.
fn hold(config: &AllocateConfig, clients: &mut [TurnClient], report: &Report) {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_stop_signal as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_stop_signal as *const () as libc::sighandler_t,
        );
    }
    let stdin_closed = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stdin_closed);
    // Detached on purpose: the process exits after the hold, and a read cannot be cancelled.
    std::thread::spawn(move || {
        let mut sink = [0u8; 256];
        let mut stdin = std::io::stdin();
        while let Ok(n) = stdin.read(&mut sink) {
            if n == 0 {
                break;
            }
        }
        flag.store(true, Ordering::SeqCst);
    });
    println!("{}", report.line());
    println!("HOLDING {}", clients.len());
    let _ = std::io::stdout().flush();

    let refresh_every = Duration::from_secs(u64::from(DEFAULT_LIFETIME) / 2);
    let deadline = Instant::now() + config.hold_max;
    let mut next_refresh = Instant::now() + refresh_every;
    while !STOP_REQUESTED.load(Ordering::SeqCst)
        && !stdin_closed.load(Ordering::SeqCst)
        && Instant::now() < deadline
    {
        if Instant::now() >= next_refresh {
            for client in clients.iter_mut() {
                let _ = client.refresh(DEFAULT_LIFETIME);
            }
            next_refresh = Instant::now() + refresh_every;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Deletes every allocation (Refresh lifetime 0), `workers` at a time; returns the failures.
fn delete_all(clients: Vec<TurnClient>, workers: usize) -> u64 {
    if clients.is_empty() {
        return 0;
    }
    let chunk = clients.len().div_ceil(workers.max(1));
    let mut clients = clients;
    std::thread::scope(|scope| {
        let handles: Vec<_> = clients
            .chunks_mut(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter_mut()
                        .map(|c| u64::from(c.refresh(0).is_err()))
                        .sum::<u64>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    })
}
