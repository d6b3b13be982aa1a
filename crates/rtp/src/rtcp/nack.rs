//! Generic NACK FCI (RFC 4585 §6.2.1): a packet ID plus a bitmask of the 16 following
//! sequence numbers.

/// Expands `(pid, blp)` entries into sequence numbers, in wire order.
pub(crate) fn expand(pid: u16, blp: u16, out: &mut Vec<u16>) {
    out.push(pid);
    for bit in 0..16u16 {
        if blp & (1 << bit) != 0 {
            out.push(pid.wrapping_add(bit + 1));
        }
    }
}

/// Packs `lost` into `(pid, blp)` entries such that expanding them yields exactly `lost`
/// again: an entry absorbs following numbers only while they stay within 16 of its PID and
/// keep increasing, so unsorted or duplicated input still round-trips.
pub(crate) fn compress(lost: &[u16]) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&pid) = lost.get(i) {
        i += 1;
        let mut blp = 0u16;
        let mut last = 0u16;
        while let Some(&seq) = lost.get(i) {
            let d = seq.wrapping_sub(pid);
            if d == 0 || d > 16 || d <= last {
                break;
            }
            blp |= 1 << (d - 1);
            last = d;
            i += 1;
        }
        out.push((pid, blp));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(lost: &[u16]) -> Vec<(u16, u16)> {
        let fci = compress(lost);
        let mut back = Vec::new();
        for &(p, b) in &fci {
            expand(p, b, &mut back);
        }
        assert_eq!(back, lost);
        fci
    }

    #[test]
    fn packs_runs() {
        assert_eq!(roundtrip(&[]), vec![]);
        assert_eq!(roundtrip(&[100]), vec![(100, 0)]);
        assert_eq!(
            roundtrip(&[100, 101, 103, 116]),
            vec![(100, 0b1000_0000_0000_0101)]
        );
        assert_eq!(roundtrip(&[100, 117]), vec![(100, 0), (117, 0)]);
        assert_eq!(roundtrip(&[65534, 65535, 0, 1]), vec![(65534, 0b111)]);
        assert_eq!(roundtrip(&[5, 5]), vec![(5, 0), (5, 0)]);
        assert_eq!(roundtrip(&[7, 6]), vec![(7, 0), (6, 0)]);
    }
}
