//! A synthetic video source: vertical colour bars scrolling one step per frame, a moving
//! white box, and the frame number as a binary strip of blocks at the top, so a receiver
//! (and a person looking at a recording) can tell frames apart and see motion.

use crate::I420Frame;

/// BT.601 studio-range YUV of white, yellow, cyan, green, magenta, red, blue, black.
const BARS: [(u8, u8, u8); 8] = [
    (235, 128, 128),
    (210, 16, 146),
    (170, 166, 16),
    (145, 54, 34),
    (106, 202, 222),
    (81, 90, 240),
    (41, 240, 110),
    (16, 128, 128),
];

/// Generates frames.
#[derive(Debug, Clone)]
pub struct TestPattern {
    width: usize,
    height: usize,
    /// Number of the next frame.
    pub frame: u64,
}

impl TestPattern {
    /// A source of `width` x `height` frames (even sizes recommended).
    pub fn new(width: usize, height: usize) -> Self {
        TestPattern {
            width: width.max(2),
            height: height.max(2),
            frame: 0,
        }
    }

    /// The next frame.
    pub fn next_frame(&mut self) -> I420Frame {
        let (w, h) = (self.width, self.height);
        let n = self.frame;
        self.frame += 1;
        let mut f = I420Frame::black(w, h);
        let (cw, ch) = I420Frame::chroma_size(w, h);
        let shift = (n as usize * 2) % w;
        let bar = |x: usize| BARS[((x + shift) % w) * BARS.len() / w];
        for y in 0..h {
            for x in 0..w {
                f.y[y * w + x] = bar(x).0;
            }
        }
        for y in 0..ch {
            for x in 0..cw {
                let (_, u, v) = bar((x * 2).min(w - 1));
                f.u[y * cw + x] = u;
                f.v[y * cw + x] = v;
            }
        }
        // A box bouncing horizontally through the lower half.
        let side = (h / 6).max(2);
        let span = w.saturating_sub(side).max(1);
        let t = (n as usize * 4) % (2 * span);
        let bx = if t < span { t } else { 2 * span - t };
        let by = h / 2;
        for y in by..(by + side).min(h) {
            for x in bx..(bx + side).min(w) {
                f.y[y * w + x] = 235;
            }
        }
        // Frame counter: 16 bits as blocks along the top (white = 1, black = 0).
        let bw = (w / 16).max(1);
        let bh = (h / 12).max(1);
        for bit in 0..16 {
            let on = (n >> (15 - bit)) & 1 == 1;
            for y in 0..bh.min(h) {
                for x in bit * bw..((bit + 1) * bw).min(w) {
                    f.y[y * w + x] = if on { 235 } else { 16 };
                }
            }
        }
        f
    }

    /// Reads back the frame counter written by [`Self::next_frame`] from a (possibly
    /// lossy-decoded) frame of the same size.
    pub fn read_counter(f: &I420Frame) -> u16 {
        let bw = (f.width / 16).max(1);
        let bh = (f.height / 12).max(1);
        let mut n = 0u16;
        for bit in 0..16 {
            let (x, y) = (bit * bw + bw / 2, bh / 2);
            let on = f.y.get(y * f.width + x).is_some_and(|&v| v > 128);
            n = n << 1 | u16::from(on);
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_differ_and_carry_their_number() {
        let mut p = TestPattern::new(320, 240);
        let a = p.next_frame();
        let b = p.next_frame();
        assert_ne!(a.y, b.y);
        assert_eq!(a.y.len(), 320 * 240);
        assert_eq!(a.u.len(), 160 * 120);
        assert_eq!(TestPattern::read_counter(&a), 0);
        assert_eq!(TestPattern::read_counter(&b), 1);
        p.frame = 1234;
        assert_eq!(TestPattern::read_counter(&p.next_frame()), 1234);
    }
}
