//! CPU accounting around the measured window of a run: the server's `utime + stime` (when its
//! pid is given) and the generator's own, so the table can say how much CPU each side took.

use std::time::{Duration, Instant};

use crate::procstat::{cpu_ticks, own_cpu_ticks, CpuTicks};
use crate::report::Report;

/// Samples taken when the measured window opened.
#[derive(Clone, Debug)]
pub struct Measurement {
    server_pid: Option<u32>,
    server: Option<CpuTicks>,
    own: Option<CpuTicks>,
    started: Instant,
}

/// CPU used during the window.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// Server CPU seconds, when a pid was given and readable at both ends.
    pub server_cpu_s: Option<f64>,
    /// Generator CPU seconds (all its threads).
    pub own_cpu_s: Option<f64>,
    /// Wall-clock length of the window.
    pub wall: Duration,
}

impl Measurement {
    /// Opens the window now.
    pub fn start(server_pid: Option<u32>) -> Self {
        Self {
            server_pid,
            server: server_pid.and_then(|pid| cpu_ticks(pid).ok()),
            own: own_cpu_ticks().ok(),
            started: Instant::now(),
        }
    }

    /// Closes the window now.
    pub fn finish(&self) -> Sample {
        let server_now = self.server_pid.and_then(|pid| cpu_ticks(pid).ok());
        Sample {
            server_cpu_s: self
                .server
                .zip(server_now)
                .map(|(before, after)| after.seconds_since(&before)),
            own_cpu_s: self
                .own
                .zip(own_cpu_ticks().ok())
                .map(|(before, after)| after.seconds_since(&before)),
            wall: self.started.elapsed(),
        }
    }
}

impl Sample {
    /// Adds `server_cpu_s`, `server_cpu_pct` (of one core), `server_cpu_s_per_m` (CPU seconds
    /// per million units of work, e.g. packets relayed) and the generator's own share.
    pub fn add_to(&self, report: &mut Report, work_units: u64) {
        let wall = self.wall.as_secs_f64().max(1e-9);
        match self.server_cpu_s {
            Some(cpu) => {
                report.float("server_cpu_s", cpu, 3);
                report.float("server_cpu_pct", 100.0 * cpu / wall, 1);
                if work_units > 0 {
                    report.float("server_cpu_s_per_m", cpu * 1e6 / work_units as f64, 3);
                } else {
                    report.word("server_cpu_s_per_m", "nan");
                }
            }
            None => {
                report.word("server_cpu_s", "nan");
            }
        }
        if let Some(own) = self.own_cpu_s {
            report.float("loadgen_cpu_pct", 100.0 * own / wall, 1);
        }
        report.float("window_s", wall, 3);
    }
}
