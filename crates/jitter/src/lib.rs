//! Adaptive audio jitter buffer in the class of WebRTC's NetEq, sans-IO.
//!
//! RTP packets go in with their arrival [`std::time::Instant`]; [`JitterBuffer::pull`] hands
//! out exactly one frame of PCM per call, always. In between the buffer:
//!
//! * estimates how late packets arrive relative to the fastest one (a forgetting histogram
//!   of relative arrival delay, 97th percentile) and derives a target playout delay;
//! * steers the real playout delay onto that target by time-stretching (WSOLA-style
//!   accelerate / preemptive expand of one pitch period), which also absorbs sender clock
//!   drift; packets are only discarded outright beyond `max_delay_ms`;
//! * hides losses with codec FEC, codec PLC, or its own G.711 Appendix I-style pitch
//!   repetition, and cross-fades back into real audio so seams do not click;
//! * plays comfort noise through DTX gaps without counting them as loss.
//!
//! Nothing here reads a clock: time only enters through the `Instant`s passed in.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use natter_jitter::{AudioDecoder, DecodeError, JitterBuffer, JitterConfig};
//!
//! /// 8 kHz L16: payloads are big-endian i16 samples.
//! struct L16;
//! impl AudioDecoder for L16 {
//!     fn decode(&mut self, p: &[u8], out: &mut Vec<i16>) -> Result<usize, DecodeError> {
//!         out.extend(p.chunks_exact(2).map(|c| i16::from_be_bytes([c[0], c[1]])));
//!         Ok(p.len() / 2)
//!     }
//!     fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
//!         out.resize(out.len() + samples, 0);
//!     }
//!     fn sample_rate(&self) -> u32 {
//!         8000
//!     }
//! }
//!
//! let mut jb = JitterBuffer::new(JitterConfig::new(8000, 8000), L16);
//! let t0 = Instant::now(); // in the phone: the socket's receive time / the audio clock
//! let mut out = Vec::new();
//! for k in 0..10u16 {
//!     let at = t0 + Duration::from_millis(20 * u64::from(k));
//!     jb.insert(k, 160 * u32::from(k), &[0x01; 320], at);
//!     jb.pull(at, &mut out);
//! }
//! assert_eq!(out.len(), 10 * 160); // always exactly one frame per pull
//! assert_eq!(jb.stats().concealed_ms, 0);
//! ```

mod buffer;
mod cng;
mod config;
mod decoder;
mod delay;
mod packet_buffer;
mod pitch;
mod plc;
mod stats;
mod stretch;
mod unwrap;

pub use buffer::JitterBuffer;
pub use config::JitterConfig;
pub use decoder::{AudioDecoder, DecodeError};
pub use stats::JitterStats;
