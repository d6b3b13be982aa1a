//! Server process measurement from `/proc`: CPU time (`utime + stime` of `/proc/PID/stat`,
//! summed over all threads by the kernel) and resident memory (`VmRSS` of `/proc/PID/status`).
//!
//! Parsing is split from reading so the parsers can be tested on exact text and fuzzed.

use std::path::PathBuf;

/// Why a `/proc` sample could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// The file could not be read (process gone, no permission).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file that failed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `/proc/PID/stat` did not have the expected shape.
    #[error("malformed /proc stat line")]
    MalformedStat,
    /// `/proc/PID/status` had no parsable `VmRSS:` line.
    #[error("no VmRSS line in /proc status")]
    NoRss,
}

/// CPU time a process has used, in clock ticks (`utime`, `stime`).
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct CpuTicks {
    /// Time in user mode.
    pub user: u64,
    /// Time in kernel mode.
    pub system: u64,
}

impl CpuTicks {
    /// User plus system ticks.
    pub fn total(&self) -> u64 {
        self.user.saturating_add(self.system)
    }

    /// Seconds of CPU between `earlier` and `self`.
    pub fn seconds_since(&self, earlier: &Self) -> f64 {
        self.total().saturating_sub(earlier.total()) as f64 / clock_ticks_per_second() as f64
    }
}

/// Parses the single line of `/proc/PID/stat`. The command name (field 2) is in parentheses
/// and may itself contain spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Result<CpuTicks, ProcError> {
    let close = text.rfind(')').ok_or(ProcError::MalformedStat)?;
    let rest = text.get(close + 1..).ok_or(ProcError::MalformedStat)?;
    // After ")": field 3 (state) is index 0, so utime (field 14) is index 11, stime index 12.
    let mut fields = rest.split_ascii_whitespace();
    let user = fields
        .nth(11)
        .and_then(|f| f.parse().ok())
        .ok_or(ProcError::MalformedStat)?;
    let system = fields
        .next()
        .and_then(|f| f.parse().ok())
        .ok_or(ProcError::MalformedStat)?;
    Ok(CpuTicks { user, system })
}

/// Parses `VmRSS:` of `/proc/PID/status`, in KiB.
pub fn parse_rss_kib(text: &str) -> Result<u64, ProcError> {
    text.lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_ascii_whitespace().next())
        .and_then(|value| value.parse().ok())
        .ok_or(ProcError::NoRss)
}

/// Reads CPU ticks of process `pid` now.
pub fn cpu_ticks(pid: u32) -> Result<CpuTicks, ProcError> {
    parse_stat(&read(format!("/proc/{pid}/stat"))?)
}

/// Reads the resident set size of process `pid` now, in KiB.
pub fn rss_kib(pid: u32) -> Result<u64, ProcError> {
    parse_rss_kib(&read(format!("/proc/{pid}/status"))?)
}

/// CPU ticks this process (the load generator) has used so far, all threads.
pub fn own_cpu_ticks() -> Result<CpuTicks, ProcError> {
    parse_stat(&read("/proc/self/stat".to_string())?)
}

/// `sysconf(_SC_CLK_TCK)`, the unit of `/proc/PID/stat` times (100 on Linux in practice).
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}

fn read(path: String) -> Result<String, ProcError> {
    let path = PathBuf::from(path);
    std::fs::read_to_string(&path).map_err(|source| ProcError::Read { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (turn server) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                        1234 567 0 0 20 0 9 0 100 1000000 2000 18446744073709551615";

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        assert_eq!(
            parse_stat(STAT).unwrap(),
            CpuTicks {
                user: 1234,
                system: 567
            }
        );
        let tricky = "7 (a) b) R 1 2 3 4 5 6 7 8 9 10 22 33 0";
        assert_eq!(
            parse_stat(tricky).unwrap(),
            CpuTicks {
                user: 22,
                system: 33
            }
        );
    }

    #[test]
    fn malformed_stat_is_an_error() {
        assert!(matches!(parse_stat(""), Err(ProcError::MalformedStat)));
        assert!(matches!(
            parse_stat("1 (x) S 1 2"),
            Err(ProcError::MalformedStat)
        ));
        assert!(matches!(
            parse_stat("1 (x) S 1 2 3 4 5 6 7 8 9 10 x 5"),
            Err(ProcError::MalformedStat)
        ));
    }

    #[test]
    fn rss_is_read_in_kib() {
        let status = "Name:\tturnserver\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t3\n";
        assert_eq!(parse_rss_kib(status).unwrap(), 5120);
        assert!(matches!(parse_rss_kib("Name: x\n"), Err(ProcError::NoRss)));
        assert!(matches!(
            parse_rss_kib("VmRSS: lots"),
            Err(ProcError::NoRss)
        ));
    }

    #[test]
    fn own_process_is_readable() {
        let pid = std::process::id();
        assert!(rss_kib(pid).unwrap() > 0);
        let ticks = cpu_ticks(pid).unwrap();
        assert!(ticks.total() >= ticks.user);
    }

    #[test]
    fn seconds_between_samples_never_go_negative() {
        let before = CpuTicks {
            user: 10,
            system: 10,
        };
        let after = CpuTicks { user: 5, system: 5 };
        assert_eq!(after.seconds_since(&before), 0.0);
    }
}
