//! `sip-register`: SIP REGISTER load at a paced rate over UDP, with or without digest
//! authentication, for `bench/sip`.
//!
//! Why a second generator next to SIPp: on a 2-core machine SIPp gets one core and tops out
//! below what a registrar on the other core can answer, so the "highest rate passed" row
//! measured SIPp, not the server. This one sends with `sendmmsg` from a fixed-length template
//! and recognises answers by fixed markers, so one core offers several times SIPp's rate.
//! Both servers get the same generator, and SIPp stays in the bench as the independent one.
//!
//! Every request is a new registration: its own Call-ID, From tag and branch, all carrying the
//! run cookie and the request's sequence number in fixed-width hex, so an answer is matched by
//! reading its Via branch (which a server copies verbatim, RFC 3261 §8.2.6.2) with no table.
//! Without authentication request `n` registers AOR `lg<n mod users>`; with it, every request
//! registers the one authenticated user (as SIPp's `-au` does): the 401 is answered at once
//! from the receiving thread with an RFC 2617/8760 MD5 response, and the run counts the 200
//! to that second request.
//!
//! It is open-loop and never retransmits: a lost request or answer is a failure, and the
//! latency of each answer (from the moment its request was due, so sender lag counts against
//! the run) is kept in a millisecond histogram. An answer later than [`LATE_MS`] is one SIPp
//! would have retransmitted for.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

use crate::batch::{bind_udp, SendBatch};
use crate::flow::{paced_send, PaceConfig, Receiver, Sink};
use crate::measure::Measurement;
use crate::report::Report;
use crate::LoadgenError;

/// Most requests one run may offer (the answer bitset and the histogram stay small).
pub const MAX_REQUESTS: u64 = 50_000_000;
/// An answer later than this (SIP's T1) is one a SIP client would have retransmitted for.
pub const LATE_MS: u64 = 500;
/// Histogram buckets: one per millisecond up to this, the last one collecting the rest.
const HIST_MS: usize = 10_000;

/// The host of every Contact: fixed, so that a run refreshes the bindings of the runs before
/// it instead of adding one per AOR for each new client port (which grew Kamailio's usrloc by
/// 100 000 contacts per run until its shared memory ran out). A documentation address
/// (RFC 5737): nothing is ever sent to it.
pub const CONTACT_HOST: &str = "192.0.2.1:5060";

/// Marker in front of the run cookie and sequence number in every Via branch.
const BRANCH: &str = "z9hG4bKlg";
/// The branch's last character: `1` for a first request, `2` for its authenticated retry.
const FIRST: u8 = b'1';
const RETRY: u8 = b'2';

/// Settings of a REGISTER run.
#[derive(Clone, Debug)]
pub struct RegisterConfig {
    /// Registrar address.
    pub server: SocketAddr,
    /// Pacing of the first requests.
    pub pace: PaceConfig,
    /// Client sockets the load is spread over.
    pub sockets: usize,
    /// Distinct AORs cycled through without authentication.
    pub users: u64,
    /// Digest credentials (`user`, `password`): every request registers `user` and answers
    /// the 401.
    pub auth: Option<(String, String)>,
    /// How long to wait for late answers after the last request.
    pub drain: Duration,
    /// Server process to measure, if any.
    pub server_pid: Option<u32>,
}

/// A request template and where its variable fields sit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// The request bytes.
    pub bytes: Vec<u8>,
    /// Offsets of the 20 hex digits (cookie, then sequence number) in branch, tag and Call-ID.
    seq_at: Vec<usize>,
    /// Offsets of the 8 decimal digits of the user number (empty with authentication).
    user_at: Vec<usize>,
}

/// The request template for one client socket at `local`.
pub fn template(server: SocketAddr, local: SocketAddr, auth_user: Option<&str>) -> Template {
    let placeholder_seq = "S".repeat(20);
    let user = match auth_user {
        Some(u) => u.to_owned(),
        None => "lgUUUUUUUU".to_owned(),
    };
    let mut text = String::new();
    let _ = write!(
        text,
        "REGISTER sip:{server} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch={BRANCH}{placeholder_seq}1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@{server}>;tag={placeholder_seq}\r\n\
         To: <sip:{user}@{server}>\r\n\
         Call-ID: {placeholder_seq}@natter-loadgen\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:{user}@{CONTACT_HOST}>\r\n\
         Expires: 300\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let bytes = text.into_bytes();
    let seq_at = find_all(&bytes, placeholder_seq.as_bytes());
    let user_at = if auth_user.is_some() {
        Vec::new()
    } else {
        find_all(&bytes, b"UUUUUUUU")
    };
    Template {
        bytes,
        seq_at,
        user_at,
    }
}

fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    let mut at = Vec::new();
    let mut from = 0;
    while let Some(i) = find(&hay[from..], needle) {
        at.push(from + i);
        from += i + needle.len();
    }
    at
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn put_hex(out: &mut [u8], value: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = out.len();
    for (i, b) in out.iter_mut().enumerate() {
        let shift = 4 * (n - 1 - i);
        *b = if shift < 64 {
            HEX[((value >> shift) & 0xf) as usize]
        } else {
            b'0'
        };
    }
}

fn put_dec(out: &mut [u8], mut value: u64) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

impl Template {
    /// Writes request `seq` of run `cookie` (user `seq % users`) into `buf`, a copy of the
    /// template's bytes.
    pub fn fill(&self, buf: &mut [u8], cookie: [u8; 4], seq: u64, users: u64) {
        let cookie = u64::from(u32::from_be_bytes(cookie));
        for &at in &self.seq_at {
            if let Some(field) = buf.get_mut(at..at + 20) {
                put_hex(&mut field[..8], cookie);
                put_hex(&mut field[8..], seq);
            }
        }
        let user = seq % users.max(1);
        for &at in &self.user_at {
            if let Some(field) = buf.get_mut(at..at + 8) {
                put_dec(field, user);
            }
        }
    }
}

/// What an answer is, once matched to this run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Sequence number of the request it answers.
    pub seq: u64,
    /// Status code.
    pub status: u16,
    /// Whether it answers the authenticated retry rather than the first request.
    pub retry: bool,
}

/// Matches a datagram to one of this run's requests by its Via branch.
pub fn classify(packet: &[u8], cookie: [u8; 4]) -> Option<Answer> {
    let status = packet.strip_prefix(b"SIP/2.0 ")?.get(..3)?;
    if !status.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let status = status
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    let at = find(packet, BRANCH.as_bytes())? + BRANCH.len();
    let id = packet.get(at..at + 21)?;
    let mut want = [0u8; 8];
    put_hex(&mut want, u64::from(u32::from_be_bytes(cookie)));
    if id[..8] != want {
        return None;
    }
    let seq = std::str::from_utf8(&id[8..20])
        .ok()
        .and_then(|h| u64::from_str_radix(h, 16).ok())?;
    let retry = match id[20] {
        FIRST => false,
        RETRY => true,
        _ => return None,
    };
    Some(Answer { seq, status, retry })
}

/// The value of `name="..."` (or an unquoted token) in a challenge header line; `lower` is
/// the line in lower case (same length), `name` is lower case.
fn param<'a>(line: &'a str, lower: &str, name: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(i) = lower[from..].find(name) {
        let start = from + i;
        from = start + name.len();
        let before_ok = start == 0
            || matches!(
                lower.as_bytes()[start - 1],
                b' ' | b',' | b'\t' | b'\r' | b'\n'
            );
        let rest = lower[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let value_at = line.len() - rest.len() + 1;
        let value = line[value_at..].trim_start();
        return Some(match value.strip_prefix('"') {
            Some(q) => &q[..q.find('"')?],
            None => {
                let end = value
                    .find(|c: char| c == ',' || c.is_whitespace())
                    .unwrap_or(value.len());
                &value[..end]
            }
        });
    }
    None
}

/// Lower-case hex of the MD5 of `text`.
fn md5_hex(text: &str) -> String {
    let digest = Md5::digest(text.as_bytes());
    let mut out = String::with_capacity(32);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Answers the 401s of one run (RFC 2617/8760 MD5, `qop=auth` when offered). H(A2) depends
/// only on the server, and H(A1) only on the realm, so each is computed once, not per 401:
/// the generator shares the machine with the server it measures.
#[derive(Debug, Clone)]
pub struct Responder {
    user: String,
    password: String,
    uri: String,
    ha2: String,
    /// (realm, H(A1)) of the last challenge.
    ha1: Option<(String, String)>,
}

impl Responder {
    /// A responder for `user`/`password` registering at `server`.
    pub fn new(user: &str, password: &str, server: SocketAddr) -> Self {
        let uri = format!("sip:{server}");
        Self {
            ha2: md5_hex(&format!("REGISTER:{uri}")),
            user: user.to_owned(),
            password: password.to_owned(),
            uri,
            ha1: None,
        }
    }

    /// The authenticated retry of request `first`: its bytes with CSeq 2, the retry branch,
    /// and an Authorization header answering `challenge` (a 401's bytes).
    pub fn retry(&mut self, first: &[u8], challenge: &[u8]) -> Option<Vec<u8>> {
        let text = std::str::from_utf8(challenge).ok()?;
        let line = text.lines().find(|l| {
            l.as_bytes()
                .get(..17)
                .is_some_and(|p| p.eq_ignore_ascii_case(b"www-authenticate:"))
        })?;
        let lower = line.to_ascii_lowercase();
        let realm = param(line, &lower, "realm")?;
        let nonce = param(line, &lower, "nonce")?;
        let opaque = param(line, &lower, "opaque");
        let qop_auth =
            param(line, &lower, "qop").is_some_and(|q| q.split(',').any(|v| v.trim() == "auth"));
        if self.ha1.as_ref().is_none_or(|(r, _)| r != realm) {
            let ha1 = md5_hex(&format!("{}:{realm}:{}", self.user, self.password));
            self.ha1 = Some((realm.to_owned(), ha1));
        }
        let ha1 = self.ha1.as_ref().map(|(_, h)| h.as_str())?;
        let (uri, ha2, user) = (&self.uri, &self.ha2, &self.user);
        let cnonce = "6c67636e";
        let response = if qop_auth {
            md5_hex(&format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}"))
        } else {
            md5_hex(&format!("{ha1}:{nonce}:{ha2}"))
        };

        // The first request's header block, less its blank line, with two bytes changed.
        let body_at = memchr::memmem::find(first, b"\r\n\r\n")?;
        let mut out = Vec::with_capacity(first.len() + 300);
        out.extend_from_slice(&first[..body_at + 2]);
        let cseq = memchr::memmem::find(&out, b"\r\nCSeq: 1 REGISTER\r\n")?;
        out[cseq + 8] = b'2';
        let branch = memchr::memmem::find(&out, BRANCH.as_bytes())? + BRANCH.len() + 20;
        *out.get_mut(branch)? = RETRY;
        let _ = write!(
            Bytes(&mut out),
            "Authorization: Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", \
             uri=\"{uri}\", response=\"{response}\", algorithm=MD5"
        );
        if qop_auth {
            let _ = write!(
                Bytes(&mut out),
                ", qop=auth, nc=00000001, cnonce=\"{cnonce}\""
            );
        }
        if let Some(o) = opaque {
            let _ = write!(Bytes(&mut out), ", opaque=\"{o}\"");
        }
        out.extend_from_slice(b"\r\n\r\n");
        Some(out)
    }
}

/// `fmt::Write` into a byte buffer.
struct Bytes<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// The authenticated retry of request `first` (see [`Responder::retry`]), computing every
/// hash afresh.
pub fn retry_request(
    first: &[u8],
    challenge: &[u8],
    user: &str,
    password: &str,
    server: SocketAddr,
) -> Option<Vec<u8>> {
    Responder::new(user, password, server).retry(first, challenge)
}

/// The receiving side: tallies each answer and answers each 401 with the authenticated
/// retry. The retries a `recvmmsg` batch asks for leave together in one `sendmmsg` rather
/// than one `send` each: fewer system calls from a generator that shares the machine with
/// the server it measures.
struct Answers {
    tally: Arc<Mutex<Tally>>,
    fds: Vec<RawFd>,
    templates: Vec<Template>,
    responder: Option<Responder>,
    users: u64,
    cookie: [u8; 4],
    total: u64,
    start: Instant,
    ns_per_request: f64,
    /// Retries waiting for the end of their socket's batch.
    retries: Vec<Vec<Vec<u8>>>,
    /// Send the retries of a batch as UDP GSO runs (`--gso`), as the first requests go.
    gso: bool,
}

impl Receiver for Answers {
    fn datagram(&mut self, index: usize, packet: &[u8]) -> bool {
        let Some(answer) = classify(packet, self.cookie) else {
            return false;
        };
        let Ok(mut t) = self.tally.lock() else {
            return false;
        };
        if answer.seq >= self.total {
            return false;
        }
        match (answer.status, answer.retry, self.responder.as_mut()) {
            (100..=199, _, _) => false,
            (401 | 407, false, Some(responder)) => {
                if !mark(&mut t.challenged, answer.seq) {
                    return false;
                }
                t.challenges += 1;
                let (Some(template), Some(queue)) =
                    (self.templates.get(index), self.retries.get_mut(index))
                else {
                    return false;
                };
                let mut first = template.bytes.clone();
                template.fill(&mut first, self.cookie, answer.seq, self.users);
                match responder.retry(&first, packet) {
                    Some(retry) => queue.push(retry),
                    None => t.retry_failed += 1,
                }
                false
            }
            (200..=299, retry, auth) if retry == auth.is_some() => {
                if !mark(&mut t.done, answer.seq) {
                    return false;
                }
                let due = self.start
                    + Duration::from_nanos((answer.seq as f64 * self.ns_per_request) as u64);
                let ms = Instant::now().saturating_duration_since(due).as_millis() as usize;
                t.hist[ms.min(HIST_MS)] += 1;
                t.ok += 1;
                true
            }
            _ => {
                t.errors += 1;
                false
            }
        }
    }

    fn batch_end(&mut self, index: usize) {
        let (Some(queue), Some(&fd)) = (self.retries.get_mut(index), self.fds.get(index)) else {
            return;
        };
        if queue.is_empty() {
            return;
        }
        let packets: Vec<&[u8]> = queue.iter().map(Vec::as_slice).collect();
        let mut batch = if self.gso {
            SendBatch::with_gso()
        } else {
            SendBatch::new()
        };
        let sent = batch.send(fd, &packets).unwrap_or(0);
        let unsent = (packets.len() - sent.min(packets.len())) as u64;
        queue.clear();
        if unsent > 0 {
            if let Ok(mut t) = self.tally.lock() {
                t.retry_failed += unsent;
            }
        }
    }
}

/// What the receiving side saw.
#[derive(Debug)]
struct Tally {
    done: Vec<u64>,
    challenged: Vec<u64>,
    hist: Vec<u32>,
    errors: u64,
    retry_failed: u64,
    ok: u64,
    challenges: u64,
}

fn mark(bits: &mut [u64], seq: u64) -> bool {
    let Some(word) = bits.get_mut((seq / 64) as usize) else {
        return false;
    };
    let bit = 1u64 << (seq % 64);
    let fresh = *word & bit == 0;
    *word |= bit;
    fresh
}

impl Tally {
    fn percentile(&self, p: f64) -> u64 {
        let total: u64 = self.hist.iter().map(|&n| u64::from(n)).sum();
        if total == 0 {
            return 0;
        }
        let want = ((total as f64) * p).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (ms, &n) in self.hist.iter().enumerate() {
            seen += u64::from(n);
            if seen >= want {
                return ms as u64;
            }
        }
        HIST_MS as u64
    }

    fn late(&self) -> u64 {
        self.hist
            .iter()
            .skip(LATE_MS as usize + 1)
            .map(|&n| u64::from(n))
            .sum()
    }

    fn max(&self) -> u64 {
        self.hist.iter().rposition(|&n| n > 0).unwrap_or(0) as u64
    }
}

/// Runs the load and returns its report.
pub fn run(config: &RegisterConfig) -> Result<Report, LoadgenError> {
    let total =
        (u128::from(config.pace.rate_per_s) * config.pace.duration.as_micros() / 1_000_000) as u64;
    if total > MAX_REQUESTS {
        return Err(LoadgenError::TooMuchLoad(total));
    }
    if config.pace.rate_per_s == 0 {
        return Err(LoadgenError::Settings("rate must be positive"));
    }
    let cookie = crate::run_cookie();
    let local = crate::any_local_for(config.server);
    let mut sockets = Vec::new();
    for _ in 0..config.sockets.max(1) {
        let socket = bind_udp(local, 8 << 20)?;
        socket.connect(config.server)?;
        sockets.push(Arc::new(socket));
    }
    let auth_user = config.auth.as_ref().map(|(u, _)| u.as_str());
    let templates: Vec<Template> = sockets
        .iter()
        .map(|s| {
            s.local_addr()
                .map(|l| template(config.server, l, auth_user))
        })
        .collect::<Result<_, _>>()?;
    let fds: Vec<RawFd> = sockets.iter().map(|s| s.as_raw_fd()).collect();

    let tally = Arc::new(Mutex::new(Tally {
        done: vec![0; (total / 64 + 1) as usize],
        challenged: vec![0; (total / 64 + 1) as usize],
        hist: vec![0; HIST_MS + 1],
        errors: 0,
        retry_failed: 0,
        ok: 0,
        challenges: 0,
    }));
    let start = Instant::now();
    let ns_per_request = 1e9 / config.pace.rate_per_s as f64;
    let sink = Sink::spawn_receiver(
        sockets.clone(),
        Answers {
            tally: Arc::clone(&tally),
            fds: fds.clone(),
            templates: templates.clone(),
            responder: config
                .auth
                .as_ref()
                .map(|(u, p)| Responder::new(u, p, config.server)),
            users: config.users,
            cookie,
            total,
            start,
            ns_per_request,
            retries: vec![Vec::new(); fds.len()],
            gso: config.pace.gso,
        },
    );
    let mut buffers: Vec<Vec<u8>> = templates.iter().map(|t| t.bytes.clone()).collect();
    let measurement = Measurement::start(config.server_pid);
    let users = config.users;
    let stats = paced_send(&fds, &mut buffers, config.pace, |i, seq, buf| {
        templates[i].fill(buf, cookie, seq, users);
    });
    sink.drain(total, config.drain);
    let sample = measurement.finish();
    let (_, stray) = sink.stop();
    let t = tally
        .lock()
        .map_err(|_| LoadgenError::Settings("tally poisoned"))?;
    let mut report = Report::new("sip-register");
    report
        .int("offered_rate", config.pace.rate_per_s)
        .word(
            "auth",
            if config.auth.is_some() {
                "digest"
            } else {
                "none"
            },
        )
        .int("sent", stats.sent)
        .int("send_errors", stats.send_errors)
        .int("ok", t.ok)
        .int("lost", total.saturating_sub(t.ok))
        .float("loss_pct", crate::loss_pct(total, t.ok), 4)
        .int("error_answers", t.errors)
        .int("challenges", t.challenges)
        .int("retry_failed", t.retry_failed)
        .int("late", t.late())
        .int("p50_ms", t.percentile(0.5))
        .int("p99_ms", t.percentile(0.99))
        .int("max_ms", t.max())
        .float("achieved_rate", crate::per_second(t.ok, stats.elapsed), 0)
        // The sink counts the 401s it answered as unmatched.
        .int("stray", stray.saturating_sub(t.challenges))
        .int("sender_lag_ms", crate::lag_ms(&stats, config.pace.duration));
    sample.add_to(&mut report, t.ok);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOKIE: [u8; 4] = [0xde, 0xad, 0xbe, 0xef];

    fn addrs() -> (SocketAddr, SocketAddr) {
        (
            "127.0.0.1:5060".parse().unwrap(),
            "127.0.0.2:40000".parse().unwrap(),
        )
    }

    #[test]
    fn filled_request_is_a_complete_register() {
        let (server, local) = addrs();
        let t = template(server, local, None);
        let mut buf = t.bytes.clone();
        t.fill(&mut buf, COOKIE, 0x1234, 1000);
        let text = String::from_utf8(buf).unwrap();
        let id = "deadbeef000000001234";
        assert!(text.starts_with("REGISTER sip:127.0.0.1:5060 SIP/2.0\r\n"));
        assert!(text.contains(&format!("branch=z9hG4bKlg{id}1;rport\r\n")));
        assert!(text.contains(&format!("Call-ID: {id}@natter-loadgen\r\n")));
        assert!(text.contains(&format!(";tag={id}\r\n")));
        // 0x1234 = 4660 users in: AOR lg00000660 of 1000.
        assert!(text.contains("To: <sip:lg00000660@127.0.0.1:5060>\r\n"));
        assert!(text.contains("Contact: <sip:lg00000660@192.0.2.1:5060>\r\n"));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
        assert!(
            !text.contains("SSSS") && !text.contains("UUUU"),
            "placeholders left"
        );
    }

    #[test]
    fn answers_are_matched_by_branch() {
        let (server, local) = addrs();
        let t = template(server, local, None);
        let mut buf = t.bytes.clone();
        t.fill(&mut buf, COOKIE, 77, 10);
        let req = String::from_utf8(buf).unwrap();
        let via = req.lines().find(|l| l.starts_with("Via:")).unwrap();
        let ok = format!("SIP/2.0 200 OK\r\n{via};received=127.0.0.2\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            classify(ok.as_bytes(), COOKIE),
            Some(Answer {
                seq: 77,
                status: 200,
                retry: false
            })
        );
        assert_eq!(classify(ok.as_bytes(), [0; 4]), None, "another run");
        assert_eq!(classify(b"SIP/2.0 2x0 OK\r\n", COOKIE), None);
        assert_eq!(classify(&ok.as_bytes()[..40], COOKIE), None);
        assert_eq!(classify(req.as_bytes(), COOKIE), None, "a request");
    }

    #[test]
    fn retry_answers_the_challenge_per_rfc_2617() {
        let (server, local) = addrs();
        let t = template(server, local, Some("u"));
        let mut first = t.bytes.clone();
        t.fill(&mut first, COOKIE, 5, 1);
        let challenge = b"SIP/2.0 401 Unauthorized\r\n\
            WWW-Authenticate: Digest realm=\"natter\", nonce=\"abc\", qop=\"auth\", opaque=\"xyz\", algorithm=MD5\r\n\r\n";
        let retry = String::from_utf8(retry_request(&first, challenge, "u", "pw", server).unwrap())
            .unwrap();
        assert!(retry.contains("CSeq: 2 REGISTER\r\n"));
        assert!(retry.contains("branch=z9hG4bKlgdeadbeef0000000000052;rport\r\n"));
        // HA1 = MD5("u:natter:pw"), HA2 = MD5("REGISTER:sip:127.0.0.1:5060").
        let ha1 = format!("{:x}", Md5::digest(b"u:natter:pw"));
        let ha2 = format!("{:x}", Md5::digest(b"REGISTER:sip:127.0.0.1:5060"));
        let expect = format!(
            "{:x}",
            Md5::digest(format!("{ha1}:abc:00000001:6c67636e:auth:{ha2}").as_bytes())
        );
        assert!(retry.contains(&format!("response=\"{expect}\"")));
        assert!(retry.contains("qop=auth, nc=00000001, cnonce=\"6c67636e\", opaque=\"xyz\"\r\n"));
        assert!(retry.ends_with("\r\n\r\n"));
        let answer = format!(
            "SIP/2.0 200 OK\r\n{}\r\n\r\n",
            retry.lines().find(|l| l.starts_with("Via:")).unwrap()
        );
        assert_eq!(
            classify(answer.as_bytes(), COOKIE).map(|a| (a.seq, a.retry)),
            Some((5, true))
        );
    }

    #[test]
    fn a_responder_recomputes_ha1_when_the_realm_changes() {
        let (server, local) = addrs();
        let t = template(server, local, Some("u"));
        let mut first = t.bytes.clone();
        t.fill(&mut first, COOKIE, 7, 1);
        let challenge = |realm: &str| {
            format!("SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"{realm}\", nonce=\"n\"\r\n\r\n")
        };
        let mut responder = Responder::new("u", "pw", server);
        for realm in ["a", "b", "a"] {
            let c = challenge(realm);
            assert_eq!(
                responder.retry(&first, c.as_bytes()),
                retry_request(&first, c.as_bytes(), "u", "pw", server),
                "realm {realm}"
            );
        }
    }

    #[test]
    fn challenge_without_qop_uses_the_rfc_2069_form() {
        let (server, local) = addrs();
        let t = template(server, local, Some("u"));
        let challenge =
            b"SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: Digest realm=r, nonce=\"n\"\r\n\r\n";
        let retry =
            String::from_utf8(retry_request(&t.bytes, challenge, "u", "pw", server).unwrap())
                .unwrap();
        assert!(!retry.contains("qop="));
        assert!(retry.contains("realm=\"r\""));
        assert_eq!(
            retry_request(&t.bytes, b"SIP/2.0 401 x\r\n\r\n", "u", "pw", server),
            None
        );
    }

    #[test]
    fn tally_percentiles_and_late_answers() {
        let mut t = Tally {
            done: vec![0; 1],
            challenged: vec![0; 1],
            hist: vec![0; HIST_MS + 1],
            errors: 0,
            retry_failed: 0,
            ok: 0,
            challenges: 0,
        };
        t.hist[1] = 98;
        t.hist[20] = 1;
        t.hist[600] = 1;
        assert_eq!(t.percentile(0.5), 1);
        assert_eq!(t.percentile(0.99), 20);
        assert_eq!(t.max(), 600);
        assert_eq!(t.late(), 1);
        assert!(mark(&mut t.done, 3));
        assert!(!mark(&mut t.done, 3));
        assert!(!mark(&mut t.done, 64), "beyond the run");
    }
}
