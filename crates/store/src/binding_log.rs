//! The registrar's binding log: how a single `natter serve` makes every acknowledged SIP
//! binding survive a crash without a B-tree write per REGISTER.
//!
//! A REGISTER's change is appended to a log segment as one record (about 150 bytes), and the
//! driver writes the records of a whole batch of messages with one `write` before it sends
//! their `200 OK`s (group commit). Once `write` has returned, the bytes are in the kernel's
//! page cache, so a `kill -9` of the process loses none of them, the guarantee SQLite's
//! `synchronous=NORMAL` in WAL mode gave the rows this replaces; the server also syncs the
//! segment to disk every second, which bounds what a power cut can take.
//!
//! The log would grow without end, so from time to time the server writes a snapshot of its
//! whole in-memory table and drops the segments it covers (Redis's AOF rewrite, done from
//! memory rather than by replaying the log). Writing a row per change into SQLite cost about
//! 2 µs of B-tree work per REGISTER on a 100 000-binding table, plus WAL pages and
//! checkpoints; with the log, the durable registrar costs what the memory-only one does, within
//! the machine's run-to-run spread (`bench/README.md`, "the binding log"). A snapshot walks
//! the table once per doubling of the log (70 ms for 100 000 bindings).
//!
//! Files, next to the store's SQLite file `P`:
//! * `P-bindings.lock`: held (`flock`) by the one process that writes the log;
//! * `P-bindings.snap`: every live binding when segment `first` was started;
//! * `P-bindings.NNNNNNNNNNNN.log`: segments, replayed in number order from `first` on.
//!
//! A record is `len: u32 LE`, `crc32(payload): u32 LE`, then `len` payload bytes: a kind byte
//! (put, remove one, remove all of an AoR) and its fields, strings as `u32 LE` length and
//! UTF-8. Reading stops at the first record that is cut short or fails its checksum: that is
//! where a crash interrupted the last write. Replaying a record is an assignment (the whole
//! binding, or its removal), so replaying a segment over a snapshot that already holds some
//! of its changes gives the same table as replaying it over the state before them.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::{BindingChange, BindingRecord, StoreError};

const SEGMENT_MAGIC: &[u8; 8] = b"NTRBLOG1";
const SNAPSHOT_MAGIC: &[u8; 8] = b"NTRBSNP1";
const KIND_PUT: u8 = 1;
const KIND_REMOVE: u8 = 2;
const KIND_REMOVE_ALL: u8 = 3;
/// A record longer than this is refused on reading (a binding's fields come from one SIP
/// message, which the server bounds far below this).
const MAX_RECORD: usize = 1 << 20;

/// The fields of a binding as the registrar holds them, borrowed, so the SIP thread encodes
/// a record without building a [`BindingRecord`] first.
#[derive(Debug, Clone, Copy)]
pub struct PutRef<'a> {
    /// Address-of-record.
    pub aor: &'a str,
    /// Contact URI.
    pub contact: &'a str,
    /// Unix time (seconds) at which the binding expires.
    pub expires_at: u64,
    /// The q-value (0.0 ..= 1.0).
    pub q: f32,
    /// Call-ID of the REGISTER.
    pub call_id: &'a str,
    /// CSeq number of the REGISTER.
    pub cseq: u32,
    /// Path header values, in order (stored joined by newlines, as [`BindingRecord::path`]).
    pub path: &'a [String],
    /// The flow, as [`BindingRecord::source`].
    pub source: &'a str,
}

fn begin(out: &mut Vec<u8>, kind: u8) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0; 8]);
    out.push(kind);
    at
}

fn finish(out: &mut [u8], at: usize) {
    let payload = &out[at + 8..];
    let len = payload.len() as u32;
    let crc = crc32fast::hash(payload);
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    out[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Appends a "put this binding" record to `out`.
pub fn encode_put(out: &mut Vec<u8>, b: &PutRef<'_>) {
    let at = begin(out, KIND_PUT);
    put_str(out, b.aor);
    put_str(out, b.contact);
    out.extend_from_slice(&b.expires_at.to_le_bytes());
    out.extend_from_slice(&b.q.to_bits().to_le_bytes());
    put_str(out, b.call_id);
    out.extend_from_slice(&b.cseq.to_le_bytes());
    let path_len: usize =
        b.path.iter().map(String::len).sum::<usize>() + b.path.len().saturating_sub(1);
    out.extend_from_slice(&(path_len as u32).to_le_bytes());
    for (i, p) in b.path.iter().enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        out.extend_from_slice(p.as_bytes());
    }
    put_str(out, b.source);
    finish(out, at);
}

/// Appends a "remove this binding" record to `out`.
pub fn encode_remove(out: &mut Vec<u8>, aor: &str, contact: &str) {
    let at = begin(out, KIND_REMOVE);
    put_str(out, aor);
    put_str(out, contact);
    finish(out, at);
}

/// Appends a "remove every binding of this AoR" record to `out`.
pub fn encode_remove_all(out: &mut Vec<u8>, aor: &str) {
    let at = begin(out, KIND_REMOVE_ALL);
    put_str(out, aor);
    finish(out, at);
}

/// Appends a put record for a whole [`BindingRecord`] (snapshots of loaded state, tests).
pub fn encode_record(out: &mut Vec<u8>, r: &BindingRecord) {
    let path: Vec<String> = if r.path.is_empty() {
        Vec::new()
    } else {
        vec![r.path.clone()]
    };
    encode_put(
        out,
        &PutRef {
            aor: &r.aor,
            contact: &r.contact,
            expires_at: r.expires_at,
            q: r.q,
            call_id: &r.call_id,
            cseq: r.cseq,
            path: &path,
            source: &r.source,
        },
    );
}

/// Appends the record of any change (a put of a whole record, or a removal).
pub fn encode_change(out: &mut Vec<u8>, c: &BindingChange) {
    match c {
        BindingChange::Put(r) => encode_record(out, r),
        BindingChange::Remove { aor, contact } => encode_remove(out, aor, contact),
        BindingChange::RemoveAll { aor } => encode_remove_all(out, aor),
    }
}

/// Reads fields off the front of a payload; every method fails rather than panics.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.bytes(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.bytes(8)?.try_into().ok()?))
    }

    fn string(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        let b = self.bytes(n)?;
        std::str::from_utf8(b).ok().map(str::to_owned)
    }
}

fn decode_payload(p: &[u8]) -> Option<BindingChange> {
    let (&kind, rest) = p.split_first()?;
    let mut f = Fields(rest);
    let change = match kind {
        KIND_PUT => {
            let aor = f.string()?;
            let contact = f.string()?;
            let expires_at = f.u64()?;
            let q = f32::from_bits(f.u32()?);
            if !q.is_finite() {
                return None;
            }
            let call_id = f.string()?;
            let cseq = f.u32()?;
            let path = f.string()?;
            let source = f.string()?;
            BindingChange::Put(BindingRecord {
                aor,
                contact,
                expires_at,
                q,
                call_id,
                cseq,
                path,
                source,
                owner: String::new(),
            })
        }
        KIND_REMOVE => BindingChange::Remove {
            aor: f.string()?,
            contact: f.string()?,
        },
        KIND_REMOVE_ALL => BindingChange::RemoveAll { aor: f.string()? },
        _ => return None,
    };
    f.0.is_empty().then_some(change)
}

/// The records in `bytes`, in order, up to the first one that is cut short or damaged.
/// [`Records::valid_len`] then says how many bytes held whole records.
pub struct Records<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Records<'a> {
    /// Reads records from `bytes` (a segment's or snapshot's contents after its header).
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    /// Bytes of whole, valid records read so far.
    pub fn valid_len(&self) -> usize {
        self.at
    }
}

impl Iterator for Records<'_> {
    type Item = BindingChange;

    fn next(&mut self) -> Option<BindingChange> {
        let head = self.bytes.get(self.at..self.at + 8)?;
        let len = u32::from_le_bytes(head[..4].try_into().ok()?) as usize;
        let crc = u32::from_le_bytes(head[4..].try_into().ok()?);
        if len > MAX_RECORD {
            return None;
        }
        let payload = self.bytes.get(self.at + 8..self.at + 8 + len)?;
        if crc32fast::hash(payload) != crc {
            return None;
        }
        let change = decode_payload(payload)?;
        self.at += 8 + len;
        Some(change)
    }
}

/// A table of bindings being rebuilt from a snapshot and segments.
#[derive(Default)]
struct Table(BTreeMap<(String, String), BindingRecord>);

impl Table {
    fn apply(&mut self, c: BindingChange) {
        match c {
            BindingChange::Put(b) => {
                self.0.insert((b.aor.clone(), b.contact.clone()), b);
            }
            BindingChange::Remove { aor, contact } => {
                self.0.remove(&(aor, contact));
            }
            BindingChange::RemoveAll { aor } => {
                let keys: Vec<(String, String)> = self
                    .0
                    .range((aor.clone(), String::new())..)
                    .take_while(|(k, _)| k.0 == aor)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in keys {
                    self.0.remove(&k);
                }
            }
        }
    }

    fn live(self, now_unix: u64) -> Vec<BindingRecord> {
        self.0
            .into_values()
            .filter(|b| b.expires_at > now_unix)
            .collect()
    }
}

fn lock_path(db: &Path) -> PathBuf {
    with_suffix(db, "-bindings.lock")
}

fn snapshot_path(db: &Path) -> PathBuf {
    with_suffix(db, "-bindings.snap")
}

fn segment_path(db: &Path, n: u64) -> PathBuf {
    with_suffix(db, &format!("-bindings.{n:012}.log"))
}

fn with_suffix(db: &Path, suffix: &str) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The numbers of the segments next to `db`, ascending.
fn segments(db: &Path) -> io::Result<Vec<u64>> {
    let dir = match db.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(name) = db.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{name}-bindings.");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        let Some(n) = file
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".log"))
            .filter(|n| n.len() == 12)
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        out.push(n);
    }
    out.sort_unstable();
    Ok(out)
}

fn read_file(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match File::open(path) {
        Ok(mut f) => {
            let mut v = Vec::new();
            f.read_to_end(&mut v)?;
            Ok(Some(v))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The SQLite rows of a store that has no log yet.
pub type BaseRows<'a> = &'a mut dyn FnMut() -> Result<Vec<BindingRecord>, StoreError>;

/// Reads the snapshot (or, with none, the SQLite rows `base` gives) and replays the
/// segments after it. `None` when neither a snapshot nor a segment exists: the store has
/// never been served with a log, so its SQLite rows are the whole truth.
fn load(db: &Path, base: BaseRows<'_>) -> Result<Option<Table>, StoreError> {
    // A running server may write a new snapshot and drop the segments it covers while this
    // reads: a segment that vanished means start over (its changes are in the new snapshot).
    'again: for _ in 0..8 {
        // The snapshot first: a segment listed before it could predate a newer snapshot
        // whose first segment the listing would miss.
        let snap = read_file(&snapshot_path(db)).map_err(io_error)?;
        let segs = segments(db).map_err(io_error)?;
        if snap.is_none() && segs.is_empty() {
            return Ok(None);
        }
        let mut table = Table::default();
        let first = match &snap {
            Some(bytes) => {
                let (first, body) = snapshot_body(bytes)?;
                for c in Records::new(body) {
                    table.apply(c);
                }
                first
            }
            None => {
                for r in base()? {
                    table.apply(BindingChange::Put(r));
                }
                0
            }
        };
        for &n in segs.iter().filter(|&&n| n >= first) {
            let Some(bytes) = read_file(&segment_path(db, n)).map_err(io_error)? else {
                continue 'again;
            };
            let body = bytes.strip_prefix(SEGMENT_MAGIC.as_slice()).unwrap_or(&[]);
            for c in Records::new(body) {
                table.apply(c);
            }
        }
        return Ok(Some(table));
    }
    Err(StoreError::Corrupt(
        "binding log kept changing while being read".into(),
    ))
}

fn snapshot_body(bytes: &[u8]) -> Result<(u64, &[u8]), StoreError> {
    let rest = bytes
        .strip_prefix(SNAPSHOT_MAGIC.as_slice())
        .ok_or_else(|| StoreError::Corrupt("binding snapshot has no header".into()))?;
    let first = rest
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| StoreError::Corrupt("binding snapshot is cut short".into()))?;
    Ok((first, &rest[8..]))
}

fn io_error(e: io::Error) -> StoreError {
    StoreError::Unavailable(format!("binding log: {e}"))
}

/// Every live binding of the store at `db` as a restart would load it: the snapshot and the
/// segments after it, or `base` (the live SQLite rows) when the store has no log yet.
pub fn live_bindings(
    db: &Path,
    now_unix: u64,
    base: BaseRows<'_>,
) -> Result<Vec<BindingRecord>, StoreError> {
    match load(db, base)? {
        Some(t) => Ok(t.live(now_unix)),
        None => base(),
    }
}

/// True when the store at `db` has a binding log (so its SQLite rows are not read).
pub fn exists(db: &Path) -> bool {
    snapshot_path(db).exists() || segments(db).map(|s| !s.is_empty()).unwrap_or(false)
}

/// The writing side of the log, owned by the one server process that serves the store.
pub struct BindingLog {
    db: PathBuf,
    _lock: File,
    active: File,
    active_no: u64,
    /// Bytes of whole records (and the header) in the active segment.
    active_len: u64,
    /// Segment bytes written since the last snapshot.
    log_bytes: u64,
    snapshot_bytes: u64,
}

/// A snapshot being written; [`BindingLog::begin_snapshot`] starts one.
pub struct SnapshotWriter {
    /// The segment that was active when the snapshot began: synced when the snapshot is
    /// finished (outside the log's lock, so appends never wait for the disk).
    previous: Option<File>,
    tmp: PathBuf,
    file: io::BufWriter<File>,
    bytes: u64,
    first: u64,
}

impl SnapshotWriter {
    /// Appends encoded put records.
    pub fn write(&mut self, records: &[u8]) -> io::Result<()> {
        self.bytes += records.len() as u64;
        self.file.write_all(records)
    }

    /// The first segment the snapshot does not cover.
    pub fn first_segment(&self) -> u64 {
        self.first
    }
}

/// Soonest the log is rewritten as a snapshot: below this it is cheaper to keep replaying.
const MIN_LOG_FOR_SNAPSHOT: u64 = 16 << 20;

impl BindingLog {
    /// Takes the log of the store at `db` for this process and returns it with every live
    /// binding (`base` gives the SQLite rows, read only when the store has no log yet). The
    /// loaded state is written as a fresh snapshot, so the log starts over at every start.
    /// Fails when another process holds the log: two servers on one store would interleave
    /// their records.
    pub fn open(
        db: &Path,
        now_unix: u64,
        base: BaseRows<'_>,
    ) -> Result<(Self, Vec<BindingRecord>), StoreError> {
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path(db))
            .map_err(io_error)?;
        // SAFETY: flock only reads the descriptor, which `lock` keeps open.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(StoreError::Unavailable(format!(
                "another process is serving the SIP bindings of {} ({})",
                db.display(),
                io::Error::last_os_error()
            )));
        }
        let records = match load(db, base)? {
            Some(t) => t.live(now_unix),
            None => base()?,
        };
        let next = segments(db).map_err(io_error)?.last().map_or(1, |m| m + 1);
        let active = create_segment(db, next)?;
        let mut me = Self {
            db: db.to_path_buf(),
            _lock: lock,
            active,
            active_no: next,
            active_len: SEGMENT_MAGIC.len() as u64,
            log_bytes: 0,
            snapshot_bytes: 0,
        };
        let mut w = me.snapshot_to(next)?;
        let mut buf = Vec::with_capacity(64 << 10);
        for r in &records {
            encode_record(&mut buf, r);
            if buf.len() >= 60 << 10 {
                w.write(&buf).map_err(io_error)?;
                buf.clear();
            }
        }
        w.write(&buf).map_err(io_error)?;
        me.finish_snapshot(w).map_err(io_error)?;
        Ok((me, records))
    }

    /// Appends encoded records to the active segment (one `write`). A write that fails part
    /// way (a full disk) is cut back off, so the records after it are not hidden behind a
    /// damaged one when the segment is read.
    pub fn append(&mut self, records: &[u8]) -> io::Result<()> {
        if let Err(e) = self.active.write_all(records) {
            // The segment is opened for appending: every write lands at its end, wherever
            // the cut leaves it.
            let _ = self.active.set_len(self.active_len);
            return Err(e);
        }
        self.active_len += records.len() as u64;
        self.log_bytes += records.len() as u64;
        Ok(())
    }

    /// A second descriptor of the active segment, to sync it without holding the log.
    pub fn active_handle(&self) -> io::Result<File> {
        self.active.try_clone()
    }

    /// Whether the segments since the last snapshot have grown enough to rewrite them:
    /// twice the snapshot's size, and at least 16 MiB.
    pub fn wants_snapshot(&self) -> bool {
        self.log_bytes > MIN_LOG_FOR_SNAPSHOT.max(2 * self.snapshot_bytes)
    }

    /// Starts a new segment and a snapshot that covers every segment before it. Every change
    /// made after this call goes to the new segment, so the caller may fill the snapshot from
    /// its live table while changes continue (replaying the new segment over it is exact).
    pub fn begin_snapshot(&mut self) -> Result<SnapshotWriter, StoreError> {
        let next = self.active_no + 1;
        let seg = create_segment(&self.db, next)?;
        let old = std::mem::replace(&mut self.active, seg);
        self.active_no = next;
        self.active_len = SEGMENT_MAGIC.len() as u64;
        self.log_bytes = 0;
        let mut w = self.snapshot_to(next)?;
        w.previous = Some(old);
        Ok(w)
    }

    fn snapshot_to(&self, first: u64) -> Result<SnapshotWriter, StoreError> {
        let tmp = with_suffix(&self.db, "-bindings.snap.tmp");
        let file = File::create(&tmp).map_err(io_error)?;
        let mut file = io::BufWriter::with_capacity(256 << 10, file);
        file.write_all(SNAPSHOT_MAGIC).map_err(io_error)?;
        file.write_all(&first.to_le_bytes()).map_err(io_error)?;
        Ok(SnapshotWriter {
            previous: None,
            tmp,
            file,
            bytes: 0,
            first,
        })
    }

    /// Makes the snapshot durable and current, then deletes the segments it covers.
    pub fn finish_snapshot(&mut self, w: SnapshotWriter) -> io::Result<()> {
        let bytes = finish_snapshot_file(&self.db, w)?;
        self.snapshot_bytes = bytes;
        Ok(())
    }

    /// Records the size of a snapshot finished with [`finish_snapshot_file`].
    pub fn snapshot_done(&mut self, bytes: u64) {
        self.snapshot_bytes = bytes;
    }

    /// The store file this log belongs to.
    pub fn db(&self) -> &Path {
        &self.db
    }
}

/// Syncs the snapshot, renames it over the previous one, syncs the directory, and deletes
/// the segments it covers. Returns the snapshot's size in record bytes.
pub fn finish_snapshot_file(db: &Path, w: SnapshotWriter) -> io::Result<u64> {
    let SnapshotWriter {
        previous,
        tmp,
        file,
        bytes,
        first,
    } = w;
    // Not needed for the snapshot itself (it holds the changes), but until the rename the
    // segment is what a restart reads.
    if let Some(p) = previous {
        p.sync_data()?;
    }
    let file = file.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_data()?;
    drop(file);
    std::fs::rename(&tmp, snapshot_path(db))?;
    sync_dir(db)?;
    for n in segments(db)?.into_iter().filter(|&n| n < first) {
        match std::fs::remove_file(segment_path(db, n)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(bytes)
}

fn sync_dir(db: &Path) -> io::Result<()> {
    let dir = match db.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

fn create_segment(db: &Path, n: u64) -> Result<File, StoreError> {
    // Numbers only grow (one past the highest on disk), so the file is always new.
    let mut f = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(segment_path(db, n))
        .map_err(io_error)?;
    f.write_all(SEGMENT_MAGIC).map_err(io_error)?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(aor: &str, contact: &str, expires_at: u64) -> BindingRecord {
        BindingRecord {
            aor: aor.into(),
            contact: contact.into(),
            expires_at,
            q: 0.5,
            call_id: "c1@h".into(),
            cseq: 7,
            path: "<sip:p1;lr>\n<sip:p2;lr>".into(),
            source: "UDP:192.0.2.1:5060".into(),
            owner: String::new(),
        }
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("natter-blog-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d.join("natter.sqlite3")
    }

    fn no_rows() -> Result<Vec<BindingRecord>, StoreError> {
        Ok(Vec::new())
    }

    #[test]
    fn records_round_trip_and_reading_stops_at_damage() {
        let changes = vec![
            BindingChange::Put(rec("sip:a@h", "sip:a@192.0.2.1", 100)),
            BindingChange::Remove {
                aor: "sip:a@h".into(),
                contact: "sip:x@h".into(),
            },
            BindingChange::RemoveAll {
                aor: "sip:b@h".into(),
            },
        ];
        let mut out = Vec::new();
        for c in &changes {
            encode_change(&mut out, c);
        }
        let mut r = Records::new(&out);
        let got: Vec<_> = r.by_ref().collect();
        assert_eq!(got, changes);
        assert_eq!(r.valid_len(), out.len());
        // Every cut ends the reading at the last whole record before it, without a panic.
        let mut ends = Vec::new();
        let mut one = Vec::new();
        for c in &changes {
            encode_change(&mut one, c);
            ends.push(one.len());
        }
        for cut in 0..out.len() {
            let mut r = Records::new(&out[..cut]);
            let n = r.by_ref().count();
            assert_eq!(n, ends.iter().filter(|&&e| e <= cut).count(), "cut {cut}");
            assert!(r.valid_len() <= cut);
        }
        let first = ends[0];
        // A flipped byte fails the checksum: nothing from that record on is read.
        let mut bad = out.clone();
        bad[first + 12] ^= 0x40;
        assert_eq!(Records::new(&bad).count(), 1);
    }

    #[test]
    fn a_reopened_log_holds_every_appended_change() {
        let db = dir("reopen");
        {
            let (mut log, loaded) = BindingLog::open(&db, 50, &mut no_rows).unwrap();
            assert!(loaded.is_empty());
            let mut buf = Vec::new();
            encode_record(&mut buf, &rec("sip:a@h", "sip:a1@h", 100));
            encode_record(&mut buf, &rec("sip:a@h", "sip:a2@h", 100));
            encode_record(&mut buf, &rec("sip:b@h", "sip:b1@h", 100));
            encode_record(&mut buf, &rec("sip:c@h", "sip:c1@h", 40)); // expired at 50
            encode_remove(&mut buf, "sip:a@h", "sip:a1@h");
            log.append(&buf).unwrap();
            // A second server on the same store is refused while this one holds the log.
            let err = BindingLog::open(&db, 50, &mut no_rows).err().unwrap();
            assert!(err.to_string().contains("another process"), "{err}");
            // What a restart would load, read while the log is held.
            let view = live_bindings(&db, 50, &mut no_rows).unwrap();
            let contacts: Vec<_> = view.iter().map(|r| r.contact.as_str()).collect();
            assert_eq!(contacts, ["sip:a2@h", "sip:b1@h"]);
            let mut buf = Vec::new();
            encode_remove_all(&mut buf, "sip:b@h");
            log.append(&buf).unwrap();
        } // dropped without a snapshot, as a crash would leave it
        let (_log, loaded) = BindingLog::open(&db, 50, &mut no_rows).unwrap();
        assert_eq!(loaded, vec![rec("sip:a@h", "sip:a2@h", 100)]);
        // The reopen wrote its state as a snapshot and dropped the older segments.
        assert_eq!(segments(&db).unwrap().len(), 1);
        let _ = std::fs::remove_dir_all(db.parent().unwrap());
    }

    #[test]
    fn a_snapshot_replaces_the_segments_before_it() {
        let db = dir("snap");
        let (mut log, _) = BindingLog::open(&db, 0, &mut no_rows).unwrap();
        let mut buf = Vec::new();
        encode_record(&mut buf, &rec("sip:a@h", "sip:a1@h", 100));
        encode_record(&mut buf, &rec("sip:b@h", "sip:b1@h", 100));
        log.append(&buf).unwrap();
        let mut w = log.begin_snapshot().unwrap();
        // A change made after the snapshot began: in the new segment, and (as the SIP
        // thread's table would show it) already in the snapshot. Replaying it again is exact.
        let mut late = Vec::new();
        encode_remove(&mut late, "sip:b@h", "sip:b1@h");
        encode_record(&mut late, &rec("sip:c@h", "sip:c1@h", 100));
        log.append(&late).unwrap();
        let mut snap = Vec::new();
        encode_record(&mut snap, &rec("sip:a@h", "sip:a1@h", 100));
        encode_record(&mut snap, &rec("sip:c@h", "sip:c1@h", 100));
        w.write(&snap).unwrap();
        let first = w.first_segment();
        let bytes = finish_snapshot_file(&db, w).unwrap();
        log.snapshot_done(bytes);
        assert_eq!(segments(&db).unwrap(), vec![first]);
        let view = live_bindings(&db, 0, &mut no_rows).unwrap();
        let contacts: Vec<_> = view.iter().map(|r| r.contact.as_str()).collect();
        assert_eq!(contacts, ["sip:a1@h", "sip:c1@h"]);
        let _ = std::fs::remove_dir_all(db.parent().unwrap());
    }

    #[test]
    fn the_first_open_takes_the_table_rows_and_then_ignores_them() {
        let db = dir("migrate");
        let mut table = || Ok(vec![rec("sip:old@h", "sip:old1@h", 100)]);
        assert!(!exists(&db));
        assert_eq!(live_bindings(&db, 0, &mut table).unwrap().len(), 1);
        let (log, loaded) = BindingLog::open(&db, 0, &mut table).unwrap();
        assert_eq!(loaded.len(), 1);
        drop(log);
        assert!(exists(&db));
        // Rows the table still holds (a crash before it was emptied) are not read again.
        let mut other = || Ok(vec![rec("sip:stale@h", "sip:s@h", 100)]);
        let view = live_bindings(&db, 0, &mut other).unwrap();
        assert_eq!(view, vec![rec("sip:old@h", "sip:old1@h", 100)]);
        let _ = std::fs::remove_dir_all(db.parent().unwrap());
    }
}
