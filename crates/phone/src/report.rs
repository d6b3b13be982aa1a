//! The phone's stdout contract, shared by every front end that places calls with
//! [`crate::media::MediaSession`] (`natter phone` over SIP, `natter xmpp` over Jingle):
//! one `established ...` line when media flows and one `stats ...` line at the end.

use std::net::SocketAddr;

use natter_ice::CandidateType;

use crate::media::{MediaSession, MediaStats};

/// `established codec=... srtp=... ice=... remote=... setup_ms=...[ ice_remote=...]`.
pub fn established_line(
    m: &MediaSession,
    ice: &str,
    remote: SocketAddr,
    setup_ms: u128,
    ice_remote: Option<CandidateType>,
) -> String {
    let ice_remote = match ice_remote {
        Some(k) => format!(" ice_remote={k}"),
        None => String::new(),
    };
    format!(
        "established codec={} srtp={} ice={} remote={} setup_ms={}{ice_remote}",
        m.codec_label(),
        m.suite().unwrap_or("off"),
        ice,
        remote,
        setup_ms
    )
}

/// `stats tx_packets=N rx_packets=N rx_lost=N jitter_ms=F rtt_ms=F`.
pub fn stats_line(stats: &MediaStats) -> String {
    format!(
        "stats tx_packets={} rx_packets={} rx_lost={} jitter_ms={:.1} rtt_ms={:.1}",
        stats.tx_packets,
        stats.rx_packets,
        stats.rx_lost,
        stats.jitter_ms,
        stats.rtt_ms.unwrap_or(0.0)
    )
}

/// The wallclock as a 64-bit NTP timestamp (RTCP sender reports carry it).
pub fn ntp_now() -> u64 {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = unix.as_secs() + 2_208_988_800;
    (secs << 32) | ((u64::from(unix.subsec_nanos()) << 32) / 1_000_000_000)
}
