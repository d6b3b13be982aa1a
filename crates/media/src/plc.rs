//! Packet loss concealment for the waveform codecs (G.711, G.722), after the idea of
//! G.711 Appendix I: repeat the last pitch period of good speech, hold it at full level
//! for 10 ms, then fade by 20 % per 10 ms so a long gap ends in silence at 60 ms, and
//! cross-fade back into the first good frame so the seam does not click.
//!
//! It works on decoded PCM, so the same code serves any rate; pitch lags scale with it
//! (5–15 ms, i.e. 40–120 samples at 8 kHz as in the appendix).

/// Concealment state kept alongside a decoder.
#[derive(Debug, Clone)]
pub struct Plc {
    rate: u32,
    /// The most recent good (or concealed, during a loss) output, newest last.
    history: Vec<i16>,
    hist_len: usize,
    pitch_min: usize,
    pitch_max: usize,
    /// One pitch period copied from history when a loss starts.
    period: Vec<f32>,
    /// Read position inside `period`.
    pos: usize,
    /// Samples concealed so far in the current loss; 0 when not in a loss.
    lost: usize,
}

impl Plc {
    /// Concealment for PCM at `rate` Hz.
    pub fn new(rate: u32) -> Self {
        let rate = rate.max(1000);
        let pitch_min = (rate / 200) as usize; // 5 ms
        let pitch_max = (rate * 3 / 200) as usize; // 15 ms
        let hist_len = pitch_max * 3 + pitch_max / 4;
        Plc {
            rate,
            history: Vec::with_capacity(hist_len * 2),
            hist_len,
            pitch_min,
            pitch_max,
            period: Vec::new(),
            pos: 0,
            lost: 0,
        }
    }

    fn ms(&self, ms: u32) -> usize {
        (self.rate * ms / 1000) as usize
    }

    /// Records a good frame; if it ends a loss, its start is cross-faded (in place) from
    /// the concealment signal so the listener hears no step.
    pub fn good_frame(&mut self, frame: &mut [i16]) {
        if self.lost > 0 && !self.period.is_empty() {
            let ola = self.ms(4).min(frame.len());
            for (i, s) in frame.iter_mut().take(ola).enumerate() {
                let synth = self.next_synth();
                let w = (i + 1) as f32 / (ola + 1) as f32;
                let mixed = w * f32::from(*s) + (1.0 - w) * synth;
                *s = mixed.clamp(-32768.0, 32767.0) as i16;
            }
        }
        self.lost = 0;
        self.push_history(frame);
    }

    /// Appends `samples` of concealment to `out`.
    pub fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        if self.lost == 0 {
            self.start_loss();
        }
        let start = out.len();
        if self.period.is_empty() {
            out.resize(start + samples, 0);
        } else {
            for _ in 0..samples {
                let v = self.next_synth();
                out.push(v.clamp(-32768.0, 32767.0) as i16);
            }
        }
        // Keep history current so a second loss right after recovery has fresh pitch.
        let (_, fresh) = out.split_at(start);
        let fresh: Vec<i16> = fresh.to_vec();
        self.push_history(&fresh);
    }

    /// The next concealment sample with the Appendix I attenuation applied; advances
    /// the loss clock.
    fn next_synth(&mut self) -> f32 {
        let Some(&v) = self.period.get(self.pos) else {
            return 0.0;
        };
        self.pos += 1;
        if self.pos >= self.period.len() {
            self.pos = 0;
        }
        let full = self.ms(10);
        let zero = self.ms(60);
        let gain = if self.lost < full {
            1.0
        } else if self.lost >= zero {
            0.0
        } else {
            1.0 - (self.lost - full) as f32 / (zero - full) as f32
        };
        self.lost += 1;
        v * gain
    }

    fn push_history(&mut self, frame: &[i16]) {
        self.history.extend_from_slice(frame);
        if self.history.len() > self.hist_len {
            let cut = self.history.len() - self.hist_len;
            self.history.drain(..cut);
        }
    }

    fn start_loss(&mut self) {
        self.period.clear();
        self.pos = 0;
        let h = &self.history;
        if h.len() < self.pitch_max * 2 || h.iter().all(|&s| s == 0) {
            self.lost = 1; // mark the loss so recovery skips the cross-fade source
            return;
        }
        let pitch = self.estimate_pitch();
        let n = h.len();
        self.period = h[n - pitch..].iter().map(|&s| f32::from(s)).collect();
        self.lost = 1;
    }

    /// Lag in `pitch_min..=pitch_max` that maximises the normalised correlation of the
    /// newest `pitch_max` samples with the signal that lag earlier.
    fn estimate_pitch(&self) -> usize {
        let h = &self.history;
        let n = h.len();
        let w = self.pitch_max;
        let recent = &h[n - w..];
        let mut best = (self.pitch_max, f64::MIN);
        for lag in self.pitch_min..=self.pitch_max {
            let Some(past) = h.get(n - w - lag..n - lag) else {
                continue;
            };
            let mut corr = 0.0f64;
            let mut energy = 0.0f64;
            for (&a, &b) in recent.iter().zip(past) {
                corr += f64::from(a) * f64::from(b);
                energy += f64::from(b) * f64::from(b);
            }
            let score = if energy > 0.0 {
                corr / energy.sqrt()
            } else {
                0.0
            };
            if score > best.1 {
                best = (lag, score);
            }
        }
        best.0
    }
}
