//! VP8 encoder and decoder over the system libvpx (Debian's libvpx-dev), through the
//! `env-libvpx-sys` bindings (pre-generated for the installed version, found with
//! pkg-config: no bindgen, no C build). Only the calls a real-time sender and receiver need:
//! one-pass CBR encoding with key frames on demand and a target bitrate that can change
//! between frames; decoding into [`I420Frame`].

use std::ffi::{c_int, c_long, c_uint, c_ulong, c_void};
use std::mem::MaybeUninit;
use std::ptr;

use vpx_sys as sys;

use crate::{I420Frame, VideoError};

fn check(e: sys::vpx_codec_err_t, what: &str) -> Result<(), VideoError> {
    if e == sys::vpx_codec_err_t::VPX_CODEC_OK {
        Ok(())
    } else {
        Err(VideoError::Codec(format!("{what}: {e:?}")))
    }
}

pub use crate::codec::{EncodedFrame, EncoderConfig};

/// A libvpx VP8 encoder.
pub struct Vp8Encoder {
    ctx: Box<sys::vpx_codec_ctx_t>,
    cfg: Box<sys::vpx_codec_enc_cfg_t>,
    config: EncoderConfig,
    pts: i64,
}

impl std::fmt::Debug for Vp8Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vp8Encoder")
            .field("config", &self.config)
            .field("pts", &self.pts)
            .finish_non_exhaustive()
    }
}

// SAFETY: the context is only used through &mut self; libvpx keeps no thread affinity.
unsafe impl Send for Vp8Encoder {}

impl Vp8Encoder {
    /// Opens an encoder.
    pub fn new(config: EncoderConfig) -> Result<Self, VideoError> {
        if config.width == 0 || config.height == 0 || config.fps == 0 {
            return Err(VideoError::Invalid("encoder size or rate"));
        }
        // SAFETY: cfg is plain data filled by libvpx; ctx is initialised by enc_init before
        // any other use, and boxed so its address stays fixed.
        unsafe {
            let iface = sys::vpx_codec_vp8_cx();
            let mut cfg: Box<sys::vpx_codec_enc_cfg_t> =
                Box::new(MaybeUninit::zeroed().assume_init());
            check(
                sys::vpx_codec_enc_config_default(iface, &mut *cfg, 0),
                "config_default",
            )?;
            cfg.g_w = config.width;
            cfg.g_h = config.height;
            cfg.g_timebase.num = 1;
            cfg.g_timebase.den = config.fps as c_int;
            cfg.rc_target_bitrate = config.bitrate_kbps;
            cfg.rc_end_usage = sys::vpx_rc_mode::VPX_CBR;
            cfg.g_lag_in_frames = 0;
            cfg.g_threads = 1;
            cfg.g_error_resilient = 1;
            cfg.rc_min_quantizer = 2;
            cfg.rc_max_quantizer = 56;
            cfg.rc_undershoot_pct = 100;
            cfg.rc_overshoot_pct = 15;
            cfg.rc_buf_sz = 1000;
            cfg.rc_buf_initial_sz = 500;
            cfg.rc_buf_optimal_sz = 600;
            cfg.kf_mode = sys::vpx_kf_mode::VPX_KF_AUTO;
            cfg.kf_max_dist = config.keyframe_interval.max(1);
            let mut ctx: Box<sys::vpx_codec_ctx_t> = Box::new(MaybeUninit::zeroed().assume_init());
            check(
                sys::vpx_codec_enc_init_ver(
                    &mut *ctx,
                    iface,
                    &*cfg,
                    0,
                    sys::VPX_ENCODER_ABI_VERSION as c_int,
                ),
                "enc_init",
            )?;
            // Real-time speed (what browsers use); failure only costs CPU.
            let _ = sys::vpx_codec_control_(
                &mut *ctx,
                sys::vp8e_enc_control_id::VP8E_SET_CPUUSED as c_int,
                -6 as c_int,
            );
            Ok(Vp8Encoder {
                ctx,
                cfg,
                config,
                pts: 0,
            })
        }
    }

    /// The settings in force.
    pub fn config(&self) -> EncoderConfig {
        self.config
    }

    /// Changes the target bitrate from the next frame on (bandwidth estimation).
    pub fn set_bitrate(&mut self, kbps: u32) -> Result<(), VideoError> {
        let kbps = kbps.clamp(30, 20_000);
        if kbps == self.config.bitrate_kbps {
            return Ok(());
        }
        self.cfg.rc_target_bitrate = kbps;
        // SAFETY: ctx was initialised in new(); cfg outlives the call.
        check(
            unsafe { sys::vpx_codec_enc_config_set(&mut *self.ctx, &*self.cfg) },
            "config_set",
        )?;
        self.config.bitrate_kbps = kbps;
        Ok(())
    }

    /// Encodes one frame (of the configured size); `keyframe` forces a key frame. Returns
    /// the encoded frames libvpx produced (one, or none when it dropped the frame).
    pub fn encode(
        &mut self,
        frame: &I420Frame,
        keyframe: bool,
    ) -> Result<Vec<EncodedFrame>, VideoError> {
        let (w, h) = (self.config.width as usize, self.config.height as usize);
        if frame.width != w || frame.height != h {
            return Err(VideoError::Invalid("frame size differs from the encoder's"));
        }
        let (cw, ch) = I420Frame::chroma_size(w, h);
        if frame.y.len() < w * h || frame.u.len() < cw * ch || frame.v.len() < cw * ch {
            return Err(VideoError::Invalid("short I420 planes"));
        }
        let mut out = Vec::new();
        // SAFETY: img points into `frame`'s planes, which outlive the encode call and are
        // only read (libvpx copies the picture); packets are copied out before the next call.
        unsafe {
            let mut img: sys::vpx_image_t = MaybeUninit::zeroed().assume_init();
            if sys::vpx_img_wrap(
                &mut img,
                sys::vpx_img_fmt::VPX_IMG_FMT_I420,
                w as c_uint,
                h as c_uint,
                1,
                frame.y.as_ptr() as *mut u8,
            )
            .is_null()
            {
                return Err(VideoError::Codec("img_wrap".into()));
            }
            img.planes[0] = frame.y.as_ptr() as *mut u8;
            img.planes[1] = frame.u.as_ptr() as *mut u8;
            img.planes[2] = frame.v.as_ptr() as *mut u8;
            img.stride[0] = w as c_int;
            img.stride[1] = cw as c_int;
            img.stride[2] = cw as c_int;
            let flags = if keyframe {
                sys::VPX_EFLAG_FORCE_KF as c_long
            } else {
                0
            };
            check(
                sys::vpx_codec_encode(
                    &mut *self.ctx,
                    &img,
                    self.pts,
                    1,
                    flags,
                    sys::VPX_DL_REALTIME as c_ulong,
                ),
                "encode",
            )?;
            self.pts += 1;
            let mut iter: sys::vpx_codec_iter_t = ptr::null();
            loop {
                let pkt = sys::vpx_codec_get_cx_data(&mut *self.ctx, &mut iter);
                if pkt.is_null() {
                    break;
                }
                if (*pkt).kind != sys::vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT {
                    continue;
                }
                let f = (*pkt).data.frame;
                let data = std::slice::from_raw_parts(f.buf as *const u8, f.sz as usize).to_vec();
                let keyframe = data.first().is_some_and(|b| b & 1 == 0);
                out.push(EncodedFrame { data, keyframe });
            }
        }
        Ok(out)
    }
}

impl Drop for Vp8Encoder {
    fn drop(&mut self) {
        // SAFETY: initialised in new(), destroyed once.
        unsafe {
            sys::vpx_codec_destroy(&mut *self.ctx);
        }
    }
}

/// A libvpx VP8 decoder.
pub struct Vp8Decoder {
    ctx: Box<sys::vpx_codec_ctx_t>,
    /// Frames decoded.
    pub frames: u64,
}

impl std::fmt::Debug for Vp8Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vp8Decoder")
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

// SAFETY: as for the encoder.
unsafe impl Send for Vp8Decoder {}

impl Vp8Decoder {
    /// Opens a decoder.
    pub fn new() -> Result<Self, VideoError> {
        // SAFETY: ctx is boxed (fixed address) and initialised by dec_init before use.
        unsafe {
            let mut ctx: Box<sys::vpx_codec_ctx_t> = Box::new(MaybeUninit::zeroed().assume_init());
            check(
                sys::vpx_codec_dec_init_ver(
                    &mut *ctx,
                    sys::vpx_codec_vp8_dx(),
                    ptr::null(),
                    0,
                    sys::VPX_DECODER_ABI_VERSION as c_int,
                ),
                "dec_init",
            )?;
            Ok(Vp8Decoder { ctx, frames: 0 })
        }
    }

    /// Decodes one encoded frame; returns the pictures it produced (normally one).
    pub fn decode(&mut self, data: &[u8]) -> Result<Vec<I420Frame>, VideoError> {
        if data.is_empty() || data.len() > u32::MAX as usize {
            return Err(VideoError::Invalid("VP8 frame size"));
        }
        let mut out = Vec::new();
        // SAFETY: data outlives the call; returned images are valid until the next
        // decode call and are copied out at once with their strides and sizes.
        unsafe {
            check(
                sys::vpx_codec_decode(
                    &mut *self.ctx,
                    data.as_ptr(),
                    data.len() as c_uint,
                    ptr::null_mut::<c_void>(),
                    0,
                ),
                "decode",
            )?;
            let mut iter: sys::vpx_codec_iter_t = ptr::null();
            loop {
                let img = sys::vpx_codec_get_frame(&mut *self.ctx, &mut iter);
                if img.is_null() {
                    break;
                }
                let img = &*img;
                if img.fmt != sys::vpx_img_fmt::VPX_IMG_FMT_I420 {
                    continue;
                }
                let (w, h) = (img.d_w as usize, img.d_h as usize);
                let (cw, ch) = I420Frame::chroma_size(w, h);
                let plane = |i: usize, pw: usize, ph: usize| {
                    let stride = img.stride[i] as usize;
                    let mut v = Vec::with_capacity(pw * ph);
                    for row in 0..ph {
                        let p = img.planes[i].add(row * stride);
                        v.extend_from_slice(std::slice::from_raw_parts(p, pw));
                    }
                    v
                };
                out.push(I420Frame {
                    width: w,
                    height: h,
                    y: plane(0, w, h),
                    u: plane(1, cw, ch),
                    v: plane(2, cw, ch),
                });
                self.frames += 1;
            }
        }
        Ok(out)
    }
}

impl Drop for Vp8Decoder {
    fn drop(&mut self) {
        // SAFETY: initialised in new(), destroyed once.
        unsafe {
            sys::vpx_codec_destroy(&mut *self.ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::TestPattern;
    use crate::vp8::{keyframe_size, Vp8Packetizer};

    #[test]
    fn encode_packetize_depacketize_decode() {
        let mut enc = Vp8Encoder::new(EncoderConfig::default()).expect("encoder");
        let mut dec = Vp8Decoder::new().expect("decoder");
        let mut pat = TestPattern::new(320, 240);
        let mut pz = Vp8Packetizer::new(1100, 7);
        let mut decoded = 0;
        for i in 0..30 {
            let src = pat.next_frame();
            let frames = enc.encode(&src, i == 20).expect("encode");
            for f in frames {
                if i == 0 || i == 20 {
                    assert!(f.keyframe, "frame {i} is a key frame");
                    assert_eq!(keyframe_size(&f.data), Some((320, 240)));
                }
                let p = pz.packetize(&f.data);
                let refs: Vec<&[u8]> = p.iter().map(Vec::as_slice).collect();
                let data = crate::vp8::depacketize(&refs).expect("depacketize");
                for pic in dec.decode(&data).expect("decode") {
                    let psnr = pic.psnr_y(&src).expect("same size");
                    assert!(psnr > 25.0, "frame {i}: PSNR {psnr:.1} dB");
                    assert_eq!(TestPattern::read_counter(&pic), i as u16);
                    decoded += 1;
                }
            }
        }
        assert_eq!(decoded, 30);
        enc.set_bitrate(200).expect("bitrate");
        assert_eq!(enc.config().bitrate_kbps, 200);
        assert!(dec.decode(&[1, 2, 3]).is_err());
    }
}
