//! Registrar behaviour (RFC 3261 §10.3, Path per RFC 3327). Authentication is
//! done by the caller; this module turns an authorised REGISTER into binding
//! changes and the response.

use std::time::{Duration, Instant};

use natter_sip::{Contact, HeaderName, Message, ParseError};

use crate::peer::Peer;
use crate::store::{Binding, BindingStore};

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

/// Process a REGISTER for `aor` and build the response.
pub fn register(
    cfg: &RegistrarConfig,
    store: &dyn BindingStore,
    now: Instant,
    req: &Message<'_>,
    aor: &str,
    source: Peer,
    to_tag: &str,
) -> Message<'static> {
    match apply(cfg, store, now, req, aor, source) {
        Ok(()) => {}
        Err(Reject::TooBrief) => {
            let mut r = error(req, 423, None, to_tag);
            r.remove(HeaderName::ContentLength);
            r.push(HeaderName::MinExpires, cfg.min_expires.to_string());
            r.push(HeaderName::ContentLength, "0");
            return r;
        }
        Err(Reject::Bad(e)) => return error(req, 400, Some(&e.reason_phrase()), to_tag),
        Err(Reject::OutOfOrder) => return error(req, 500, Some("Out of order REGISTER"), to_tag),
    }
    let mut resp = error(req, 200, None, to_tag);
    resp.remove(HeaderName::ContentLength);
    for b in store.lookup(aor, now) {
        let secs = b.expires_at.saturating_duration_since(now).as_secs();
        let q = if b.q == 1000 {
            String::new()
        } else {
            format!(";q=0.{:03}", b.q)
        };
        resp.push(
            HeaderName::Contact,
            format!("<{}>;expires={secs}{q}", b.contact),
        );
    }
    // RFC 3327 §5.3: echo Path when the UA supports it.
    let supports_path = req
        .list(HeaderName::Supported)
        .map(|l| l.iter().any(|s| s.eq_ignore_ascii_case("path")));
    if supports_path.unwrap_or(false) {
        for p in req.header_values(HeaderName::Path) {
            resp.push(HeaderName::Path, p.to_owned());
        }
    }
    resp.push(HeaderName::ContentLength, "0");
    resp
}

enum Reject {
    TooBrief,
    OutOfOrder,
    Bad(ParseError),
}

impl From<ParseError> for Reject {
    fn from(e: ParseError) -> Self {
        Reject::Bad(e)
    }
}

fn apply(
    cfg: &RegistrarConfig,
    store: &dyn BindingStore,
    now: Instant,
    req: &Message<'_>,
    aor: &str,
    source: Peer,
) -> Result<(), Reject> {
    let contacts = req.contacts()?;
    let header_expires = req.expires()?;
    let call_id = req.call_id()?.to_owned();
    let cseq = req.cseq()?.seq;
    if contacts.is_empty() {
        return Ok(()); // a query (§10.3 step 8 answers with current bindings)
    }
    if contacts.iter().any(|c| matches!(c, Contact::Star)) {
        // §10.3 step 6: "*" only alone and with Expires: 0.
        if contacts.len() != 1 || header_expires != Some(0) {
            return Err(Reject::Bad(ParseError::BadHeader("Contact")));
        }
        for b in store.lookup(aor, now) {
            if b.call_id == call_id && cseq <= b.cseq {
                return Err(Reject::OutOfOrder);
            }
        }
        store.remove_all(aor);
        return Ok(());
    }
    let path: Vec<String> = req
        .header_values(HeaderName::Path)
        .map(str::to_owned)
        .collect();
    let existing = store.lookup(aor, now);
    let mut changes = Vec::with_capacity(contacts.len());
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
        let contact = addr.uri.to_string();
        if let Some(b) = existing.iter().find(|b| b.contact == contact) {
            if b.call_id == call_id && cseq <= b.cseq {
                return Err(Reject::OutOfOrder);
            }
        }
        changes.push((contact, expires, q));
    }
    for (contact, expires, q) in changes {
        if expires == 0 {
            store.remove(aor, &contact);
        } else {
            store.upsert(Binding {
                aor: aor.to_owned(),
                contact,
                q,
                expires_at: now + Duration::from_secs(u64::from(expires)),
                call_id: call_id.clone(),
                cseq,
                path: path.clone(),
                source: Some((source.transport, source.addr)),
            });
        }
    }
    Ok(())
}
