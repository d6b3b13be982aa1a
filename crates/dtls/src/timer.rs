//! Taking the retransmission clock away from OpenSSL.
//!
//! OpenSSL's DTLS timer reads the wall clock (`gettimeofday`), which a sans-IO endpoint driven
//! by caller-supplied `Instant`s must not depend on, and there is no API to feed it time. So
//! the schedule is ours (virtual time, see `endpoint.rs`) and OpenSSL's timer is reduced to a
//! latch that is open almost all the time:
//!
//! * a `DTLS_set_timer_cb` callback makes every OpenSSL timer last [`LATCH_US`]; OpenSSL
//!   treats a timer with less than 15 ms left as expired, so the latch opens 25 ms (wall
//!   clock) after each (re)start. `DTLSv1_handle_timeout`, which we call when *our* schedule
//!   says so (after at least 1 s), then retransmits. Should the latch still be closed (only
//!   possible when virtual time runs ahead of the wall clock, as in tests), the endpoint
//!   simply asks again a little later, and schedules the retransmission after it from when
//!   this one was due, so the wait never shifts the schedule.
//! * OpenSSL also retransmits on its own whenever it starts a read with the latch open, and
//!   when a read finds no data with the latch open: at the start and at the end of an engine
//!   call. Those writes come before the pipe's datagram was read or after it reported "no
//!   data", and `DatagramPipe` discards them (`mute_unprompted`). Each such retransmission
//!   restarts the 40 ms timer, which keeps the latch shut for the rest of the call and keeps
//!   OpenSSL from looping on it. (A call that stalls for over 25 ms lets one duplicate of the
//!   previous flight out; harmless.)
//!
//! Cost: each muted retransmission still counts against OpenSSL's limit of 12 timeouts while
//! waiting for one peer flight (`DTLS1_TMO_ALERT_COUNT`). In a normal handshake that is one
//! or two per flight plus our own retransmissions; `record.rs` keeps noise from spending it.

use std::os::raw::{c_long, c_uint, c_void};

use foreign_types::ForeignTypeRef;
use openssl::ssl::SslRef;
use openssl_sys::SSL;

/// `DTLS_CTRL_GET_TIMEOUT` from `<openssl/ssl.h>` (the `DTLSv1_get_timeout` macro).
const DTLS_CTRL_GET_TIMEOUT: i32 = 73;
/// `DTLS_CTRL_HANDLE_TIMEOUT` from `<openssl/ssl.h>` (the `DTLSv1_handle_timeout` macro).
const DTLS_CTRL_HANDLE_TIMEOUT: i32 = 74;

type DtlsTimerCb = unsafe extern "C" fn(s: *mut SSL, timer_us: c_uint) -> c_uint;

extern "C" {
    // Since OpenSSL 1.1.1; not bound by openssl-sys.
    fn DTLS_set_timer_cb(s: *mut SSL, cb: Option<DtlsTimerCb>);
}

/// Length of every OpenSSL DTLS timer, in microseconds (see the module docs).
const LATCH_US: c_uint = 40_000;

/// Timer callback: every OpenSSL timer lasts [`LATCH_US`], whatever the backoff would be.
unsafe extern "C" fn latch(_s: *mut SSL, _timer_us: c_uint) -> c_uint {
    LATCH_US
}

/// Installs [`latch`] on `ssl`.
pub(crate) fn install(ssl: &mut SslRef) {
    // SAFETY: `ssl` is a live SSL object; the callback is a plain function with the
    // signature OpenSSL expects and touches no state.
    unsafe { DTLS_set_timer_cb(ssl.as_ptr(), Some(latch)) }
}

/// True while OpenSSL holds a flight that it would retransmit (its timer is armed).
pub(crate) fn is_armed(ssl: &SslRef) -> bool {
    let mut left = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    // SAFETY: DTLS_CTRL_GET_TIMEOUT writes one `struct timeval` through the pointer.
    let ret = unsafe {
        openssl_sys::SSL_ctrl(
            ssl.as_ptr(),
            DTLS_CTRL_GET_TIMEOUT,
            0 as c_long,
            (&mut left as *mut libc::timeval).cast::<c_void>(),
        )
    };
    ret == 1
}

/// Outcome of asking OpenSSL to retransmit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retransmit {
    /// The flight was sent again.
    Sent,
    /// OpenSSL's latch is still closed (wall clock behind virtual time); ask again soon.
    NotYet,
    /// OpenSSL gave up (too many timeouts) or is in a fatal state.
    GaveUp,
}

/// Asks OpenSSL to retransmit its current flight.
pub(crate) fn retransmit(ssl: &SslRef) -> Retransmit {
    // SAFETY: DTLS_CTRL_HANDLE_TIMEOUT takes no argument.
    let ret = unsafe {
        openssl_sys::SSL_ctrl(
            ssl.as_ptr(),
            DTLS_CTRL_HANDLE_TIMEOUT,
            0 as c_long,
            std::ptr::null_mut(),
        )
    };
    match ret {
        r if r < 0 => Retransmit::GaveUp,
        0 => Retransmit::NotYet,
        _ => Retransmit::Sent,
    }
}
