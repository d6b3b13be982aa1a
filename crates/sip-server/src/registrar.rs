//! Registrar behaviour (RFC 3261 §10.3, Path per RFC 3327, outbound per
//! RFC 5626 §6). Authentication is done by the caller; this module turns an
//! authorised REGISTER into binding changes and the response.
//!
//! Every binding remembers the flow its REGISTER arrived on (transport and
//! source address as seen here), which is how requests reach a UA behind a
//! NAT. A Contact with `+sip.instance` and `reg-id` in a REGISTER that says
//! `Supported: outbound` is an outbound registration: the binding is keyed
//! by (instance, reg-id), always reached over its flow, and the 200 OK says
//! `Require: outbound` so the UA knows to send keep-alives.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use natter_sip::{Contact, HeaderName, Message, NameAddr, ParseError};

use crate::peer::Peer;
use crate::store::{Binding, BindingStore, Change, Unavailable};

/// `Retry-After` (seconds) on a 500 sent because the location service is unavailable: long
/// enough for a shared store to fail over or restart, short enough that phones re-register
/// well within their expiry.
pub const RETRY_AFTER_SECS: u32 = 5;

/// Registrar limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// Shortest accepted non-zero expiry; shorter gets 423 (§10.3 step 7).
    pub min_expires: u32,
    /// Longest granted expiry (longer requests are shortened).
    pub max_expires: u32,
    /// Expiry when neither the contact nor the request gives one.
    pub default_expires: u32,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires: 60,
            max_expires: 7200,
            default_expires: 3600,
        }
    }
}

fn error(req: &Message<'_>, code: u16, reason: Option<&str>, to_tag: &str) -> Message<'static> {
    Message::response_to(req, code, reason, Some(to_tag))
}

/// 500 with `Retry-After`: the store could not answer or could not take the change.
pub fn unavailable(req: &Message<'_>, to_tag: &str) -> Message<'static> {
    let mut r = error(req, 500, Some("Location Service Unavailable"), to_tag);
    r.remove(HeaderName::ContentLength);
    r.push(HeaderName::RetryAfter, RETRY_AFTER_SECS.to_string());
    r.push(HeaderName::ContentLength, "0");
    r
}

/// Process a REGISTER for `aor` and build the response. The response borrows the
/// request's Via, From, Call-ID and CSeq: it is written out at once. `contacts` are the
/// request's Contacts when validation already parsed them (`None`: parsed here).
#[allow(clippy::too_many_arguments)]
pub fn register<'r>(
    cfg: &RegistrarConfig,
    store: &dyn BindingStore,
    now: Instant,
    req: &'r Message<'_>,
    aor: &str,
    source: Peer,
    to_tag: &str,
    contacts: Option<Vec<Contact<'_>>>,
) -> Message<'r> {
    let (outbound, current) = match apply(cfg, store, now, req, aor, source, contacts) {
        Ok(v) => v,
        Err(Reject::Unavailable) => return unavailable(req, to_tag),
        Err(Reject::TooBrief) => {
            let mut r = error(req, 423, None, to_tag);
            r.remove(HeaderName::ContentLength);
            r.push(HeaderName::MinExpires, cfg.min_expires.to_string());
            r.push(HeaderName::ContentLength, "0");
            return r;
        }
        Err(Reject::Bad(e)) => return error(req, 400, Some(&e.reason_phrase()), to_tag),
        Err(Reject::ManyRegIds) => {
            return error(req, 400, Some("Multiple Contacts with reg-id"), to_tag)
        }
        Err(Reject::FirstHopLacksOutbound) => {
            return error(req, 439, Some("First Hop Lacks Outbound Support"), to_tag)
        }
        Err(Reject::OutOfOrder) => return error(req, 500, Some("Out of order REGISTER"), to_tag),
    };
    let mut resp = Message::response_borrowing(req, 200, None, Some(to_tag));
    resp.remove(HeaderName::ContentLength);
    for b in current.iter().filter(|b| b.expires_at > now) {
        let secs = b.expires_at.saturating_duration_since(now).as_secs();
        let mut v = String::with_capacity(b.contact.len() + 24);
        v.push('<');
        v.push_str(&b.contact);
        v.push_str(">;expires=");
        natter_sip::syntax::push_decimal(&mut v, u32::try_from(secs).unwrap_or(u32::MAX));
        if b.q != 1000 {
            let _ = write!(v, ";q=0.{:03}", b.q);
        }
        if let Some(i) = &b.instance {
            let _ = write!(v, ";+sip.instance={i}");
        }
        if let Some(r) = b.reg_id {
            let _ = write!(v, ";reg-id={r}");
        }
        resp.push(HeaderName::Contact, v);
    }
    // RFC 5626 §6: tell the UA its flow is now what reaches it (it starts
    // keep-alives on seeing this).
    if outbound {
        resp.push(HeaderName::Require, "outbound");
    }
    // RFC 3327 §5.3: echo Path when the UA supports it.
    let supports_path = req
        .list(HeaderName::Supported)
        .map(|l| l.iter().any(|s| s.eq_ignore_ascii_case("path")));
    if supports_path.unwrap_or(false) {
        for p in req.header_values(HeaderName::Path) {
            resp.push(HeaderName::Path, p);
        }
    }
    resp.push(HeaderName::ContentLength, "0");
    resp
}

enum Reject {
    /// The location service cannot read or write: 500 + Retry-After.
    Unavailable,
    TooBrief,
    OutOfOrder,
    Bad(ParseError),
    /// RFC 5626 §6: at most one Contact per REGISTER may carry a reg-id.
    ManyRegIds,
    /// RFC 5626 §6: outbound asked for, but the edge proxy in Path did not
    /// mark itself with `;ob`, so the flow would not reach the UA.
    FirstHopLacksOutbound,
}

/// One Contact of the REGISTER, validated.
struct ContactChange {
    contact: String,
    expires: u32,
    q: u16,
    instance: Option<String>,
    reg_id: Option<u32>,
    /// Contacts of existing bindings with the same instance (and reg-id):
    /// the UA re-registered from a new address; the old one is replaced.
    replaces: Vec<String>,
}

/// Whether an existing binding is the one a Contact refreshes: same URI,
/// or (RFC 5626 §6) same instance and reg-id.
fn same_binding(b: &Binding, contact: &str, instance: Option<&str>, reg_id: Option<u32>) -> bool {
    b.contact == contact
        || (instance.is_some() && b.instance.as_deref() == instance && b.reg_id == reg_id)
}

impl From<Unavailable> for Reject {
    fn from(_: Unavailable) -> Self {
        Reject::Unavailable
    }
}

impl From<ParseError> for Reject {
    fn from(e: ParseError) -> Self {
        Reject::Bad(e)
    }
}

/// Apply the REGISTER: whether an outbound registration was made, and the AoR's bindings
/// after it (for the 200's Contact list, without reading the store again).
fn apply(
    cfg: &RegistrarConfig,
    store: &dyn BindingStore,
    now: Instant,
    req: &Message<'_>,
    aor: &str,
    source: Peer,
    contacts: Option<Vec<Contact<'_>>>,
) -> Result<(bool, Vec<Binding>), Reject> {
    let contacts = match contacts {
        Some(c) => c,
        None => req.contacts()?,
    };
    let header_expires = req.expires()?;
    let call_id = req.call_id()?.to_owned();
    let cseq = req.cseq()?.seq;
    let existing = store.try_lookup(aor, now)?;
    if contacts.is_empty() {
        return Ok((false, existing)); // a query (§10.3 step 8 answers with current bindings)
    }
    if contacts.iter().any(|c| matches!(c, Contact::Star)) {
        // §10.3 step 6: "*" only alone and with Expires: 0.
        if contacts.len() != 1 || header_expires != Some(0) {
            return Err(Reject::Bad(ParseError::BadHeader("Contact")));
        }
        for b in &existing {
            if b.call_id == call_id && cseq <= b.cseq {
                return Err(Reject::OutOfOrder);
            }
        }
        store.apply(vec![Change::RemoveAll {
            aor: aor.to_owned(),
        }])?;
        return Ok((false, Vec::new()));
    }
    let path: Vec<String> = req
        .header_values(HeaderName::Path)
        .map(str::to_owned)
        .collect();
    let supports_outbound = req
        .list(HeaderName::Supported)
        .is_ok_and(|l| l.iter().any(|s| s.eq_ignore_ascii_case("outbound")));
    let mut changes: Vec<ContactChange> = Vec::with_capacity(contacts.len());
    for c in &contacts {
        let Contact::Addr(addr) = c else { continue };
        let expires = match addr.expires() {
            Some(r) => r?,
            None => header_expires.unwrap_or(cfg.default_expires),
        };
        if expires != 0 && expires < cfg.min_expires {
            return Err(Reject::TooBrief);
        }
        let expires = expires.min(cfg.max_expires);
        let q = addr.q_millis()?;
        let contact = addr.uri.to_text();
        let instance = addr
            .param("+sip.instance")
            .and_then(|p| p.value)
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        let reg_id = match addr.param("reg-id").and_then(|p| p.value) {
            Some(v) => Some(
                v.parse::<u32>()
                    .map_err(|_| ParseError::BadHeader("Contact"))?,
            ),
            None => None,
        };
        // §6: reg-id without an instance, or from a UA that did not say
        // `Supported: outbound`, is ignored (a plain registration).
        let reg_id = reg_id.filter(|_| instance.is_some() && supports_outbound);
        let mut replaces = Vec::new();
        for b in &existing {
            if !same_binding(b, &contact, instance.as_deref(), reg_id) {
                continue;
            }
            if b.call_id == call_id && cseq <= b.cseq {
                return Err(Reject::OutOfOrder);
            }
            if b.contact != contact {
                replaces.push(b.contact.clone());
            }
        }
        changes.push(ContactChange {
            contact,
            expires,
            q,
            instance,
            reg_id,
            replaces,
        });
    }
    let reg_ids = changes.iter().filter(|c| c.reg_id.is_some()).count();
    if reg_ids > 1 {
        return Err(Reject::ManyRegIds);
    }
    let outbound = reg_ids == 1;
    if outbound {
        let first_hop_ob = path.first().map(|p| {
            NameAddr::parse(p)
                .ok()
                .is_some_and(|na| na.uri.param("ob").is_some())
        });
        if first_hop_ob == Some(false) {
            return Err(Reject::FirstHopLacksOutbound);
        }
    }
    let mut ops = Vec::with_capacity(changes.len());
    for ch in changes {
        for old in &ch.replaces {
            ops.push(Change::Remove {
                aor: aor.to_owned(),
                contact: old.clone(),
            });
        }
        if ch.expires == 0 {
            ops.push(Change::Remove {
                aor: aor.to_owned(),
                contact: ch.contact,
            });
        } else {
            ops.push(Change::Upsert(Binding {
                aor: aor.to_owned(),
                contact: ch.contact,
                q: ch.q,
                expires_at: now + Duration::from_secs(u64::from(ch.expires)),
                call_id: call_id.clone(),
                cseq,
                path: path.clone(),
                source: Some((source.transport, source.addr)),
                instance: ch.instance,
                reg_id: ch.reg_id,
            }));
        }
    }
    let mut current = existing;
    for op in &ops {
        op.apply_to(&mut current);
    }
    store.apply(ops)?;
    Ok((outbound, current))
}
