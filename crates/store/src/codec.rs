//! The byte form of a binding as a Redis hash value: `b1` then netstrings
//! (`LEN:BYTES,`) for contact, expires_at, q, call_id, cseq, path, source, owner. Netstrings
//! because every field but the numbers is arbitrary text from a REGISTER (a Call-ID or a Path
//! can hold any separator one might pick). The version tag lets a later format coexist.

use crate::BindingRecord;

const TAG: &[u8] = b"b1";
/// A field longer than this is refused when decoding (SIP limits keep them far smaller).
const MAX_FIELD: usize = 64 * 1024;

fn push(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(field.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(field);
    out.push(b',');
}

/// Encodes everything but the AoR (the hash key names it).
pub fn encode_binding(b: &BindingRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + b.contact.len() + b.path.len() + b.call_id.len());
    out.extend_from_slice(TAG);
    push(&mut out, b.contact.as_bytes());
    push(&mut out, b.expires_at.to_string().as_bytes());
    push(&mut out, format!("{}", b.q).as_bytes());
    push(&mut out, b.call_id.as_bytes());
    push(&mut out, b.cseq.to_string().as_bytes());
    push(&mut out, b.path.as_bytes());
    push(&mut out, b.source.as_bytes());
    push(&mut out, b.owner.as_bytes());
    out
}

/// Splits one netstring off the front of `rest`.
fn take<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let colon = rest.iter().take(8).position(|&c| c == b':')?;
    let len_text = std::str::from_utf8(rest.get(..colon)?).ok()?;
    if len_text.is_empty() || !len_text.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let len: usize = len_text.parse().ok()?;
    if len > MAX_FIELD {
        return None;
    }
    let start = colon + 1;
    let end = start.checked_add(len)?;
    let field = rest.get(start..end)?;
    if rest.get(end) != Some(&b',') {
        return None;
    }
    *rest = rest.get(end + 1..)?;
    Some(field)
}

fn text(b: &[u8]) -> Option<String> {
    String::from_utf8(b.to_vec()).ok()
}

/// Decodes [`encode_binding`]'s bytes for `aor`; `None` for anything malformed (never panics).
pub fn decode_binding(aor: &str, bytes: &[u8]) -> Option<BindingRecord> {
    let mut rest = bytes.strip_prefix(TAG)?;
    let contact = text(take(&mut rest)?)?;
    let expires_at = text(take(&mut rest)?)?.parse().ok()?;
    let q: f32 = text(take(&mut rest)?)?.parse().ok()?;
    if !q.is_finite() {
        return None;
    }
    let call_id = text(take(&mut rest)?)?;
    let cseq = text(take(&mut rest)?)?.parse().ok()?;
    let path = text(take(&mut rest)?)?;
    let source = text(take(&mut rest)?)?;
    let owner = text(take(&mut rest)?)?;
    if !rest.is_empty() {
        return None;
    }
    Some(BindingRecord {
        aor: aor.to_owned(),
        contact,
        expires_at,
        q,
        call_id,
        cseq,
        path,
        source,
        owner,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BindingRecord {
        BindingRecord {
            aor: "sip:alice@natter.test".into(),
            contact: "sip:alice@192.0.2.1:5060;ob".into(),
            expires_at: 1_700_000_000,
            q: 0.5,
            call_id: "a,b:c\n".into(),
            cseq: 7,
            path: "<sip:p1;lr>\n<sip:p2;lr>".into(),
            source: "UDP:192.0.2.1:5060|1|\"<urn:uuid:x>\"".into(),
            owner: "UDP:127.0.0.2:5060".into(),
        }
    }

    #[test]
    fn round_trips_fields_holding_separators() {
        let b = sample();
        let bytes = encode_binding(&b);
        assert!(bytes.starts_with(b"b127:sip:alice@192.0.2.1:5060;ob,"));
        assert_eq!(decode_binding(&b.aor, &bytes), Some(b));
    }

    #[test]
    fn malformed_values_are_refused() {
        let good = encode_binding(&sample());
        for cut in 0..good.len() {
            assert_eq!(decode_binding("a", &good[..cut]), None, "cut at {cut}");
        }
        let mut extra = good.clone();
        extra.push(b'x');
        assert_eq!(decode_binding("a", &extra), None);
        assert_eq!(decode_binding("a", b"b199999999999:x,"), None);
        assert_eq!(decode_binding("a", b"b1-1:x,"), None);
    }
}
