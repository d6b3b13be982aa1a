//! One direction of SRTP/SRTCP: keys, per-SSRC rollover counters, SRTCP indices and replay
//! windows.

use crate::cm::CmKeys;
use crate::error::SrtpError;
use crate::gcm::{GcmKeys, GCM_TAG_LEN};
use crate::header::{parse_rtcp_ssrc, parse_rtp, RTCP_CLEAR_LEN};
use crate::kdf::SessionKeys;
use crate::profile::SrtpProfile;
use crate::replay::{estimate_index, ReplayWindow};
use crate::streams::SsrcTable;

/// Octets of the SRTCP `E || index` word.
const SRTCP_INDEX_LEN: usize = 4;
/// The E bit of the SRTCP index word: set when the payload is encrypted.
const E_BIT: u32 = 0x8000_0000;
/// SRTCP indices are 31 bits wide.
const SRTCP_INDEX_MAX: u32 = 0x7fff_ffff;

// A context is built once per direction and never moved on the packet path, so the size
// difference (expanded AES schedules and HMAC pads inline) costs nothing, and boxing would
// add a pointer chase per packet.
#[allow(clippy::large_enum_variant)]
enum Cipher {
    Cm {
        rtp: CmKeys,
        rtcp: CmKeys,
        rtp_tag_len: usize,
    },
    Gcm {
        rtp: GcmKeys,
        rtcp: GcmKeys,
    },
}

/// SRTP and SRTCP state for ONE direction: use one context to protect what you send and
/// another (with the peer's keys) to unprotect what you receive.
///
/// Several SSRCs may share a context (RFC 3711 allows one master key per session); each
/// gets its own rollover counter, SRTCP index and replay windows, up to
/// [`MAX_SSRCS`](crate::MAX_SSRCS) at a time.
///
/// The `*_in_place` methods are the fast path: they never allocate if the vector has
/// capacity for the tag (and trailer) to be appended. On an error from an `unprotect`
/// method the buffer content is unspecified (it may be partly decrypted); drop it.
pub struct SrtpContext {
    profile: SrtpProfile,
    cipher: Cipher,
    /// Highest index and replay window per SSRC. On send only `highest` matters (it drives
    /// the rollover counter).
    rtp: SsrcTable<ReplayWindow>,
    /// Next SRTCP index to send, per SSRC.
    rtcp_send: SsrcTable<u32>,
    /// SRTCP replay window, per SSRC.
    rtcp_recv: SsrcTable<ReplayWindow>,
}

impl std::fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("SrtpContext")
            .field("profile", &self.profile)
            .field("rtp_ssrcs", &self.rtp.len())
            .field("rtcp_send_ssrcs", &self.rtcp_send.len())
            .field("rtcp_recv_ssrcs", &self.rtcp_recv.len())
            .finish()
    }
}

impl SrtpContext {
    /// Derive session keys from a master key and salt (RFC 3711 §4.3, kdr = 0).
    pub fn new(
        profile: SrtpProfile,
        master_key: &[u8],
        master_salt: &[u8],
    ) -> Result<Self, SrtpError> {
        if master_key.len() != profile.master_key_len() {
            return Err(SrtpError::BadKeyLength {
                expected: profile.master_key_len(),
                got: master_key.len(),
            });
        }
        if master_salt.len() != profile.master_salt_len() {
            return Err(SrtpError::BadSaltLength {
                expected: profile.master_salt_len(),
                got: master_salt.len(),
            });
        }
        let keys = SessionKeys::derive(profile, master_key, master_salt);
        Self::from_session_keys(profile, &keys)
    }

    /// Build from already-derived session keys (used by the RFC 7714 vectors, which
    /// publish session keys only).
    pub(crate) fn from_session_keys(
        profile: SrtpProfile,
        keys: &SessionKeys,
    ) -> Result<Self, SrtpError> {
        let bad_key = SrtpError::BadKeyLength {
            expected: profile.master_key_len(),
            got: keys.rtp_key.len(),
        };
        let cipher = if profile.is_aead() {
            Cipher::Gcm {
                rtp: GcmKeys::new(&keys.rtp_key, &keys.rtp_salt).ok_or(bad_key.clone())?,
                rtcp: GcmKeys::new(&keys.rtcp_key, &keys.rtcp_salt).ok_or(bad_key)?,
            }
        } else {
            Cipher::Cm {
                rtp: CmKeys::new(&keys.rtp_key, &keys.rtp_salt, &keys.rtp_auth)
                    .ok_or(bad_key.clone())?,
                rtcp: CmKeys::new(&keys.rtcp_key, &keys.rtcp_salt, &keys.rtcp_auth)
                    .ok_or(bad_key)?,
                rtp_tag_len: profile.rtp_auth_tag_len(),
            }
        };
        Ok(SrtpContext {
            profile,
            cipher,
            rtp: SsrcTable::new(),
            rtcp_send: SsrcTable::new(),
            rtcp_recv: SsrcTable::new(),
        })
    }

    /// The profile this context was keyed for.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// The rollover counter currently associated with `ssrc` (the ROC of the highest index
    /// sent or accepted), if the SSRC is known.
    pub fn roc(&self, ssrc: u32) -> Option<u32> {
        self.rtp.get(ssrc).map(|w| (w.highest() >> 16) as u32)
    }

    /// Protect an RTP packet into `out` (cleared first).
    pub fn protect_rtp(&mut self, rtp: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        copy_into(rtp, out, self.profile.rtp_auth_tag_len());
        self.protect_rtp_in_place(out)
    }

    /// Unprotect an SRTP packet into `out` (cleared first).
    pub fn unprotect_rtp(&mut self, srtp: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        copy_into(srtp, out, 0);
        self.unprotect_rtp_in_place(out)
    }

    /// Protect an RTCP packet into `out` (cleared first).
    pub fn protect_rtcp(&mut self, rtcp: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        copy_into(
            rtcp,
            out,
            SRTCP_INDEX_LEN + self.profile.rtcp_auth_tag_len(),
        );
        self.protect_rtcp_in_place(out)
    }

    /// Unprotect an SRTCP packet into `out` (cleared first).
    pub fn unprotect_rtcp(&mut self, srtcp: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        copy_into(srtcp, out, 0);
        self.unprotect_rtcp_in_place(out)
    }

    /// Encrypt the payload of the RTP packet in `buf` and append the tag.
    pub fn protect_rtp_in_place(&mut self, buf: &mut Vec<u8>) -> Result<(), SrtpError> {
        let h = parse_rtp(buf)?;
        let index = match self.rtp.get_mut(h.ssrc) {
            Some(w) => {
                // A sender that jumps back more than half the sequence space right after
                // starting would need a ROC of -1. Send it under ROC 0 rather than refuse
                // (the receiver will judge it) but leave the state alone, so one stray
                // sequence number cannot shift the ROC of everything after it. A ROC past
                // 2^32-1 is a hard stop.
                match estimate_index(w.highest(), h.seq) {
                    Err(SrtpError::Replayed) => u64::from(h.seq),
                    other => {
                        let index = other?;
                        w.accept(index);
                        index
                    }
                }
            }
            None => {
                let index = u64::from(h.seq);
                self.rtp.insert(h.ssrc, ReplayWindow::new(index));
                index
            }
        };
        let roc = (index >> 16) as u32;
        match &self.cipher {
            Cipher::Cm {
                rtp, rtp_tag_len, ..
            } => {
                let iv = rtp.iv(h.ssrc, index);
                if let Some(payload) = buf.get_mut(h.len..) {
                    rtp.apply(&iv, payload);
                }
                let tag = rtp.tag(buf, &roc.to_be_bytes());
                buf.extend_from_slice(tag.get(..*rtp_tag_len).unwrap_or(&tag));
            }
            Cipher::Gcm { rtp, .. } => {
                let iv = rtp.rtp_iv(h.ssrc, roc, h.seq);
                let (aad, payload) = buf.split_at_mut(h.len);
                let tag = rtp.seal(iv, aad, payload);
                buf.extend_from_slice(&tag);
            }
        }
        Ok(())
    }

    /// Verify and decrypt the SRTP packet in `buf`, leaving the RTP packet.
    ///
    /// Order (RFC 3711 §3.3): estimate the index, reject replays, authenticate, decrypt, and
    /// only then advance the rollover counter and replay window.
    pub fn unprotect_rtp_in_place(&mut self, buf: &mut Vec<u8>) -> Result<(), SrtpError> {
        let tag_len = self.profile.rtp_auth_tag_len();
        let body_len = buf.len().checked_sub(tag_len).ok_or(SrtpError::TooShort)?;
        let h = parse_rtp(buf.get(..body_len).ok_or(SrtpError::TooShort)?)?;
        let index = match self.rtp.get_mut(h.ssrc) {
            Some(w) => {
                let index = estimate_index(w.highest(), h.seq)?;
                w.check(index)?;
                index
            }
            None => u64::from(h.seq),
        };
        let roc = (index >> 16) as u32;
        match &self.cipher {
            Cipher::Cm { rtp, .. } => {
                let (body, tag) = buf.split_at(body_len);
                if !rtp.verify(body, &roc.to_be_bytes(), tag) {
                    return Err(SrtpError::AuthFailed);
                }
                let iv = rtp.iv(h.ssrc, index);
                if let Some(payload) = buf.get_mut(h.len..body_len) {
                    rtp.apply(&iv, payload);
                }
            }
            Cipher::Gcm { rtp, .. } => {
                let iv = rtp.rtp_iv(h.ssrc, roc, h.seq);
                let (aad, sealed) = buf.split_at_mut(h.len);
                if !rtp.open(iv, aad, sealed) {
                    return Err(SrtpError::AuthFailed);
                }
            }
        }
        buf.truncate(body_len);
        match self.rtp.get_mut(h.ssrc) {
            Some(w) => w.accept(index),
            None => self.rtp.insert(h.ssrc, ReplayWindow::new(index)),
        }
        Ok(())
    }

    /// Encrypt the RTCP packet in `buf` after its first 8 octets and append the SRTCP
    /// index (with the E bit set) and tag.
    pub fn protect_rtcp_in_place(&mut self, buf: &mut Vec<u8>) -> Result<(), SrtpError> {
        let ssrc = parse_rtcp_ssrc(buf)?;
        let index = match self.rtcp_send.get_mut(ssrc) {
            Some(next) => {
                let index = *next;
                if index > SRTCP_INDEX_MAX {
                    return Err(SrtpError::IndexExhausted);
                }
                *next = index + 1;
                index
            }
            None => {
                // RFC 3711 §3.4: the SRTCP index starts at zero.
                self.rtcp_send.insert(ssrc, 1);
                0
            }
        };
        let word = (E_BIT | index).to_be_bytes();
        match &self.cipher {
            Cipher::Cm { rtcp, .. } => {
                let iv = rtcp.iv(ssrc, u64::from(index));
                if let Some(payload) = buf.get_mut(RTCP_CLEAR_LEN..) {
                    rtcp.apply(&iv, payload);
                }
                buf.extend_from_slice(&word);
                let tag = rtcp.tag(buf, &[]);
                let tag_len = self.profile.rtcp_auth_tag_len();
                buf.extend_from_slice(tag.get(..tag_len).unwrap_or(&tag));
            }
            Cipher::Gcm { rtcp, .. } => {
                let iv = rtcp.rtcp_iv(ssrc, index);
                let (head, payload) = buf.split_at_mut(RTCP_CLEAR_LEN);
                let aad = rtcp_aad(head, word);
                let tag = rtcp.seal(iv, &aad, payload);
                buf.extend_from_slice(&tag);
                buf.extend_from_slice(&word);
            }
        }
        Ok(())
    }

    /// Verify and (if the E bit says so) decrypt the SRTCP packet in `buf`, leaving the
    /// RTCP packet.
    pub fn unprotect_rtcp_in_place(&mut self, buf: &mut Vec<u8>) -> Result<(), SrtpError> {
        let tag_len = self.profile.rtcp_auth_tag_len();
        if buf.len() < RTCP_CLEAR_LEN + SRTCP_INDEX_LEN + tag_len {
            return Err(SrtpError::TooShort);
        }
        let ssrc = parse_rtcp_ssrc(buf)?;
        let len = buf.len();
        // Where the E||index word sits differs: RFC 3711 puts it before the tag, RFC 7714
        // after the AEAD cipher (whose last octets are the tag).
        let word_at = if self.profile.is_aead() {
            len - SRTCP_INDEX_LEN
        } else {
            len - tag_len - SRTCP_INDEX_LEN
        };
        let word: [u8; 4] = buf
            .get(word_at..word_at + SRTCP_INDEX_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(SrtpError::TooShort)?;
        let e_index = u32::from_be_bytes(word);
        let encrypted = e_index & E_BIT != 0;
        let index = e_index & SRTCP_INDEX_MAX;
        if let Some(w) = self.rtcp_recv.get_mut(ssrc) {
            w.check(u64::from(index))?;
        }
        let plain_len = match &self.cipher {
            Cipher::Cm { rtcp, .. } => {
                let (body, tag) = buf.split_at(len - tag_len);
                if !rtcp.verify(body, &[], tag) {
                    return Err(SrtpError::AuthFailed);
                }
                if encrypted {
                    let iv = rtcp.iv(ssrc, u64::from(index));
                    if let Some(payload) = buf.get_mut(RTCP_CLEAR_LEN..word_at) {
                        rtcp.apply(&iv, payload);
                    }
                }
                word_at
            }
            Cipher::Gcm { rtcp, .. } => {
                let iv = rtcp.rtcp_iv(ssrc, index);
                let plain_len = word_at - GCM_TAG_LEN;
                if encrypted {
                    let (head, sealed) = buf.split_at_mut(RTCP_CLEAR_LEN);
                    let aad = rtcp_aad(head, word);
                    let sealed = sealed
                        .get_mut(..word_at - RTCP_CLEAR_LEN)
                        .ok_or(SrtpError::TooShort)?;
                    if !rtcp.open(iv, &aad, sealed) {
                        return Err(SrtpError::AuthFailed);
                    }
                } else {
                    // §9.3: the AAD is the whole RTCP packet followed by the E||index word,
                    // and the cipher is the tag alone. Move the word next to the packet so
                    // the AAD is contiguous, without allocating.
                    let mut tag = [0u8; GCM_TAG_LEN];
                    tag.copy_from_slice(buf.get(plain_len..word_at).ok_or(SrtpError::TooShort)?);
                    let aad_end = plain_len + SRTCP_INDEX_LEN;
                    if let Some(dst) = buf.get_mut(plain_len..aad_end) {
                        dst.copy_from_slice(&word);
                    }
                    let aad = buf.get(..aad_end).ok_or(SrtpError::TooShort)?;
                    if !rtcp.open(iv, aad, &mut tag) {
                        return Err(SrtpError::AuthFailed);
                    }
                }
                plain_len
            }
        };
        buf.truncate(plain_len);
        match self.rtcp_recv.get_mut(ssrc) {
            Some(w) => w.accept(u64::from(index)),
            None => self
                .rtcp_recv
                .insert(ssrc, ReplayWindow::new(u64::from(index))),
        }
        Ok(())
    }

    /// Set the next SRTCP index to send for `ssrc` (tests reproduce published vectors
    /// that start at a given index).
    #[cfg(test)]
    pub(crate) fn set_next_srtcp_index(&mut self, ssrc: u32, index: u32) {
        self.rtcp_send.insert(ssrc, index);
    }
}

/// SRTCP AEAD associated data for an encrypted packet (§9.2): the first 8 octets, then the
/// E||index word.
fn rtcp_aad(head: &[u8], word: [u8; 4]) -> [u8; 12] {
    let mut aad = [0u8; 12];
    if let Some(h) = head.get(..RTCP_CLEAR_LEN) {
        aad[..RTCP_CLEAR_LEN].copy_from_slice(h);
    }
    aad[RTCP_CLEAR_LEN..].copy_from_slice(&word);
    aad
}

/// Copy `src` into `out`, reserving room for `extra` octets to be appended.
fn copy_into(src: &[u8], out: &mut Vec<u8>, extra: usize) {
    out.clear();
    out.reserve(src.len() + extra);
    out.extend_from_slice(src);
}
