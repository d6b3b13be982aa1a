//! Conference mixer: every leg hears the sum of all the other legs (never itself).
//!
//! Legs push one frame per interval; [`Mixer::mix_for`] sums the latest frames of every
//! other leg in 32-bit and saturates once at the end, so loud legs clip instead of
//! wrapping. A leg that has not pushed contributes silence.

/// Handle of a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub u32);

#[derive(Debug, Clone)]
struct Leg {
    id: LegId,
    frame: Vec<i16>,
}

/// An N-leg mixer with a fixed frame length.
#[derive(Debug, Clone)]
pub struct Mixer {
    frame_len: usize,
    legs: Vec<Leg>,
    next_id: u32,
}

impl Mixer {
    /// A mixer of `frame_len`-sample frames (e.g. 320 for 20 ms at 16 kHz).
    pub fn new(frame_len: usize) -> Self {
        Mixer {
            frame_len,
            legs: Vec::new(),
            next_id: 0,
        }
    }

    /// Samples per frame.
    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// Adds a leg, silent until it pushes.
    pub fn add_leg(&mut self) -> LegId {
        let id = LegId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        self.legs.push(Leg {
            id,
            frame: vec![0; self.frame_len],
        });
        id
    }

    /// Removes a leg; false if it was not there.
    pub fn remove_leg(&mut self, leg: LegId) -> bool {
        let before = self.legs.len();
        self.legs.retain(|l| l.id != leg);
        self.legs.len() != before
    }

    /// Number of legs.
    pub fn len(&self) -> usize {
        self.legs.len()
    }

    /// True with no legs.
    pub fn is_empty(&self) -> bool {
        self.legs.is_empty()
    }

    /// Sets `leg`'s current frame; shorter input is padded with silence, longer is cut.
    /// Returns false for an unknown leg.
    pub fn push(&mut self, leg: LegId, pcm: &[i16]) -> bool {
        let Some(l) = self.legs.iter_mut().find(|l| l.id == leg) else {
            return false;
        };
        let n = pcm.len().min(self.frame_len);
        l.frame.fill(0);
        if let (Some(dst), Some(src)) = (l.frame.get_mut(..n), pcm.get(..n)) {
            dst.copy_from_slice(src);
        }
        true
    }

    /// The frame `leg` should hear: the saturated sum of every other leg's frame.
    pub fn mix_for(&self, leg: LegId) -> Vec<i16> {
        let mut acc = vec![0i32; self.frame_len];
        for l in self.legs.iter().filter(|l| l.id != leg) {
            for (a, &s) in acc.iter_mut().zip(&l.frame) {
                *a += i32::from(s);
            }
        }
        acc.into_iter()
            .map(|v| v.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16)
            .collect()
    }

    /// Silences every leg's frame, e.g. at the start of a new interval so a leg whose
    /// packet did not arrive is not heard twice.
    pub fn clear_frames(&mut self) {
        for l in &mut self.legs {
            l.frame.fill(0);
        }
    }
}
