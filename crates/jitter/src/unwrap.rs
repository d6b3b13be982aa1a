//! Unwrapping of RTP sequence numbers and timestamps onto i64, so ordering and
//! differences work across the 16/32-bit wrap.

/// Unwraps a modular counter relative to the highest value seen so far: a new value is
/// taken to be the nearest one (within half the modulus) to that highest value.
#[derive(Debug, Default, Clone)]
pub(crate) struct Unwrapper {
    highest: Option<i64>,
}

impl Unwrapper {
    pub(crate) fn seq(&mut self, v: u16) -> i64 {
        let u = match self.highest {
            None => i64::from(v),
            Some(h) => h + i64::from(v.wrapping_sub(h as u16) as i16),
        };
        self.note(u)
    }

    pub(crate) fn ts(&mut self, v: u32) -> i64 {
        let u = match self.highest {
            None => i64::from(v),
            Some(h) => h + i64::from(v.wrapping_sub(h as u32) as i32),
        };
        self.note(u)
    }

    pub(crate) fn highest(&self) -> Option<i64> {
        self.highest
    }

    fn note(&mut self, u: i64) -> i64 {
        match self.highest {
            Some(h) if h >= u => {}
            _ => self.highest = Some(u),
        }
        u
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_wraps_forward_and_tolerates_reorder() {
        let mut u = Unwrapper::default();
        assert_eq!(u.seq(65534), 65534);
        assert_eq!(u.seq(65535), 65535);
        assert_eq!(u.seq(1), 65537);
        assert_eq!(u.seq(0), 65536);
        assert_eq!(u.seq(65535), 65535);
        assert_eq!(u.highest(), Some(65537));
    }

    #[test]
    fn ts_wraps() {
        let mut u = Unwrapper::default();
        assert_eq!(u.ts(u32::MAX - 159), i64::from(u32::MAX) - 159);
        assert_eq!(u.ts(1), i64::from(u32::MAX) + 2);
    }
}
