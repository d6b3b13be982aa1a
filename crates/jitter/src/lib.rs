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
