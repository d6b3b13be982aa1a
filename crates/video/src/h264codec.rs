//! H.264 encoder and decoder over the system OpenH264 (Debian's libopenh264-dev 2.3.1),
//! through a small FFI of its C interface (`wels/codec_api.h`: the encoder and decoder are
//! objects whose first word points at a table of functions).
//!
//! Why our own FFI and not the `openh264` crate: its `openh264-sys2` either compiles the
//! bundled C++ sources (3 min 16 s on one core for `openh264` 0.9.9 from clean, measured)
//! or loads a DLL at run time with its own, newer, headers; neither links the library the
//! distribution keeps patched. The C interface is stable and small: create, initialise with
//! the base parameters, encode (key frames on demand, bitrate changes), decode, destroy.
//!
//! The encoder makes Constrained Baseline (what `profile-level-id=42e01f` announces), one
//! spatial and temporal layer, Annex B output (start codes), SPS and PPS before every IDR.

use std::ffi::{c_int, c_long, c_uchar, c_uint, c_void};
use std::ptr;

use crate::{I420Frame, VideoError};

pub use crate::codec::{EncodedFrame, EncoderConfig};

mod sys {
    #![allow(non_snake_case, non_camel_case_types, dead_code)]
    use super::{c_int, c_long, c_uchar, c_uint, c_void};

    pub const CAMERA_VIDEO_REAL_TIME: c_int = 0;
    pub const RC_BITRATE_MODE: c_int = 1;
    pub const VIDEO_FORMAT_I420: c_int = 23;
    pub const FRAME_TYPE_IDR: c_int = 1;
    pub const FRAME_TYPE_I: c_int = 2;
    pub const FRAME_TYPE_SKIP: c_int = 4;
    pub const ENCODER_OPTION_BITRATE: c_int = 5;
    pub const ENCODER_OPTION_MAX_BITRATE: c_int = 6;
    pub const ENCODER_OPTION_TRACE_LEVEL: c_int = 25;
    pub const DECODER_OPTION_TRACE_LEVEL: c_int = 9;
    pub const WELS_LOG_ERROR: c_int = 1;
    pub const SPATIAL_LAYER_ALL: c_int = 4;
    pub const VIDEO_BITSTREAM_AVC: c_int = 0;
    pub const ERROR_CON_DISABLE: c_int = 0;
    pub const MAX_LAYER_NUM_OF_FRAME: usize = 128;

    #[repr(C)]
    pub struct SEncParamBase {
        pub iUsageType: c_int,
        pub iPicWidth: c_int,
        pub iPicHeight: c_int,
        pub iTargetBitrate: c_int,
        pub iRCMode: c_int,
        pub fMaxFrameRate: f32,
    }

    #[repr(C)]
    pub struct SSourcePicture {
        pub iColorFormat: c_int,
        pub iStride: [c_int; 4],
        pub pData: [*mut c_uchar; 4],
        pub iPicWidth: c_int,
        pub iPicHeight: c_int,
        pub uiTimeStamp: i64,
    }

    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct SLayerBSInfo {
        pub uiTemporalId: c_uchar,
        pub uiSpatialId: c_uchar,
        pub uiQualityId: c_uchar,
        pub eFrameType: c_int,
        pub uiLayerType: c_uchar,
        pub iSubSeqId: c_int,
        pub iNalCount: c_int,
        pub pNalLengthInByte: *mut c_int,
        pub pBsBuf: *mut c_uchar,
    }

    #[repr(C)]
    pub struct SFrameBSInfo {
        pub iLayerNum: c_int,
        pub sLayerInfo: [SLayerBSInfo; MAX_LAYER_NUM_OF_FRAME],
        pub eFrameType: c_int,
        pub iFrameSizeInBytes: c_int,
        pub uiTimeStamp: i64,
    }

    #[repr(C)]
    pub struct SBitrateInfo {
        pub iLayer: c_int,
        pub iBitrate: c_int,
    }

    #[repr(C)]
    pub struct SVideoProperty {
        pub size: c_uint,
        pub eVideoBsType: c_int,
    }

    #[repr(C)]
    pub struct SDecodingParam {
        pub pFileNameRestructed: *mut i8,
        pub uiCpuLoad: c_uint,
        pub uiTargetDqLayer: c_uchar,
        pub eEcActiveIdc: c_int,
        pub bParseOnly: c_uchar,
        pub sVideoProperty: SVideoProperty,
    }

    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct SSysMEMBuffer {
        pub iWidth: c_int,
        pub iHeight: c_int,
        pub iFormat: c_int,
        pub iStride: [c_int; 2],
    }

    #[repr(C)]
    pub struct SBufferInfo {
        pub iBufferStatus: c_int,
        pub uiInBsTimeStamp: u64,
        pub uiOutYuvTimeStamp: u64,
        pub sSystemBuffer: SSysMEMBuffer,
        pub pDst: [*mut c_uchar; 3],
    }

    pub type Enc = *const EncVtbl;
    pub type Dec = *const DecVtbl;

    /// `ISVCEncoderVtbl`, in declaration order.
    #[repr(C)]
    pub struct EncVtbl {
        pub Initialize: unsafe extern "C" fn(*mut Enc, *const SEncParamBase) -> c_int,
        pub InitializeExt: unsafe extern "C" fn(*mut Enc, *const c_void) -> c_int,
        pub GetDefaultParams: unsafe extern "C" fn(*mut Enc, *mut c_void) -> c_int,
        pub Uninitialize: unsafe extern "C" fn(*mut Enc) -> c_int,
        pub EncodeFrame:
            unsafe extern "C" fn(*mut Enc, *const SSourcePicture, *mut SFrameBSInfo) -> c_int,
        pub EncodeParameterSets: unsafe extern "C" fn(*mut Enc, *mut SFrameBSInfo) -> c_int,
        pub ForceIntraFrame: unsafe extern "C" fn(*mut Enc, c_uchar) -> c_int,
        pub SetOption: unsafe extern "C" fn(*mut Enc, c_int, *mut c_void) -> c_int,
        pub GetOption: unsafe extern "C" fn(*mut Enc, c_int, *mut c_void) -> c_int,
    }

    /// `ISVCDecoderVtbl`, in declaration order (only the first entries are called).
    #[repr(C)]
    pub struct DecVtbl {
        pub Initialize: unsafe extern "C" fn(*mut Dec, *const SDecodingParam) -> c_long,
        pub Uninitialize: unsafe extern "C" fn(*mut Dec) -> c_long,
        pub DecodeFrame: *const c_void,
        pub DecodeFrameNoDelay: unsafe extern "C" fn(
            *mut Dec,
            *const c_uchar,
            c_int,
            *mut *mut c_uchar,
            *mut SBufferInfo,
        ) -> c_int,
        pub DecodeFrame2: *const c_void,
        pub FlushFrame: *const c_void,
        pub DecodeParser: *const c_void,
        pub DecodeFrameEx: *const c_void,
        pub SetOption: unsafe extern "C" fn(*mut Dec, c_int, *mut c_void) -> c_long,
        pub GetOption: unsafe extern "C" fn(*mut Dec, c_int, *mut c_void) -> c_long,
    }

    #[link(name = "openh264")]
    extern "C" {
        pub fn WelsCreateSVCEncoder(pp: *mut *mut Enc) -> c_int;
        pub fn WelsDestroySVCEncoder(p: *mut Enc);
        pub fn WelsCreateDecoder(pp: *mut *mut Dec) -> c_long;
        pub fn WelsDestroyDecoder(p: *mut Dec);
    }
}

/// An OpenH264 encoder.
pub struct H264Encoder {
    enc: *mut sys::Enc,
    config: EncoderConfig,
    frames: i64,
}

impl std::fmt::Debug for H264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Encoder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

// SAFETY: the encoder is only used through &mut self; OpenH264 keeps no thread affinity.
unsafe impl Send for H264Encoder {}

impl H264Encoder {
    /// Opens an encoder (sizes must be even).
    pub fn new(config: EncoderConfig) -> Result<Self, VideoError> {
        if config.width == 0 || config.height == 0 || config.fps == 0 {
            return Err(VideoError::Invalid("encoder size or rate"));
        }
        if config.width % 2 != 0 || config.height % 2 != 0 {
            return Err(VideoError::Invalid("H.264 needs an even frame size"));
        }
        let mut enc: *mut sys::Enc = ptr::null_mut();
        // SAFETY: WelsCreateSVCEncoder fills `enc` with an object whose first word is its
        // function table; every call passes that object back as its first argument.
        unsafe {
            if sys::WelsCreateSVCEncoder(&mut enc) != 0 || enc.is_null() {
                return Err(VideoError::Codec("WelsCreateSVCEncoder failed".into()));
            }
            // Errors only: its warnings would go to the process's output.
            let mut level = sys::WELS_LOG_ERROR;
            ((**enc).SetOption)(
                enc,
                sys::ENCODER_OPTION_TRACE_LEVEL,
                (&mut level as *mut c_int).cast(),
            );
            let param = sys::SEncParamBase {
                iUsageType: sys::CAMERA_VIDEO_REAL_TIME,
                iPicWidth: config.width as c_int,
                iPicHeight: config.height as c_int,
                iTargetBitrate: (config.bitrate_kbps.saturating_mul(1000)) as c_int,
                iRCMode: sys::RC_BITRATE_MODE,
                fMaxFrameRate: config.fps as f32,
            };
            let r = ((**enc).Initialize)(enc, &param);
            if r != 0 {
                sys::WelsDestroySVCEncoder(enc);
                return Err(VideoError::Codec(format!("encoder Initialize: {r}")));
            }
        }
        Ok(H264Encoder {
            enc,
            config,
            frames: 0,
        })
    }

    /// The encoder's settings.
    pub fn config(&self) -> EncoderConfig {
        self.config
    }

    /// Changes the target bitrate (kbit/s) from the next frame on.
    pub fn set_bitrate(&mut self, kbps: u32) -> Result<(), VideoError> {
        let mut b = sys::SBitrateInfo {
            iLayer: sys::SPATIAL_LAYER_ALL,
            iBitrate: kbps.saturating_mul(1000).min(i32::MAX as u32) as c_int,
        };
        // SAFETY: `b` is the SBitrateInfo this option takes; the encoder is initialised.
        let r = unsafe {
            ((**self.enc).SetOption)(
                self.enc,
                sys::ENCODER_OPTION_BITRATE,
                (&mut b as *mut sys::SBitrateInfo).cast(),
            )
        };
        if r != 0 {
            return Err(VideoError::Codec(format!("set bitrate: {r}")));
        }
        self.config.bitrate_kbps = kbps;
        Ok(())
    }

    /// Encodes one frame (an IDR when `keyframe`): the access unit in Annex B form, or no
    /// frame when rate control skipped it.
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
        let pic = sys::SSourcePicture {
            iColorFormat: sys::VIDEO_FORMAT_I420,
            iStride: [w as c_int, cw as c_int, cw as c_int, 0],
            pData: [
                frame.y.as_ptr().cast_mut(),
                frame.u.as_ptr().cast_mut(),
                frame.v.as_ptr().cast_mut(),
                ptr::null_mut(),
            ],
            iPicWidth: w as c_int,
            iPicHeight: h as c_int,
            uiTimeStamp: self.frames * 1000 / i64::from(self.config.fps.max(1)),
        };
        self.frames += 1;
        // SAFETY: the planes outlive the call and OpenH264 only reads them; `info` is plain
        // data the encoder fills, its buffers valid until the next call, copied out below.
        unsafe {
            if keyframe {
                ((**self.enc).ForceIntraFrame)(self.enc, 1);
            }
            let mut info: Box<sys::SFrameBSInfo> = Box::new(std::mem::zeroed());
            let r = ((**self.enc).EncodeFrame)(self.enc, &pic, &mut *info);
            if r != 0 {
                return Err(VideoError::Codec(format!("EncodeFrame: {r}")));
            }
            if info.eFrameType == sys::FRAME_TYPE_SKIP {
                return Ok(Vec::new());
            }
            let mut data = Vec::new();
            let layers = usize::try_from(info.iLayerNum)
                .unwrap_or(0)
                .min(sys::MAX_LAYER_NUM_OF_FRAME);
            for l in &info.sLayerInfo[..layers] {
                let nals = usize::try_from(l.iNalCount).unwrap_or(0);
                if nals == 0 || l.pNalLengthInByte.is_null() || l.pBsBuf.is_null() {
                    continue;
                }
                let lens = std::slice::from_raw_parts(l.pNalLengthInByte, nals);
                let total: usize = lens.iter().map(|&n| usize::try_from(n).unwrap_or(0)).sum();
                data.extend_from_slice(std::slice::from_raw_parts(l.pBsBuf, total));
            }
            if data.is_empty() {
                return Ok(Vec::new());
            }
            let keyframe = matches!(info.eFrameType, sys::FRAME_TYPE_IDR | sys::FRAME_TYPE_I);
            Ok(vec![EncodedFrame { data, keyframe }])
        }
    }
}

impl Drop for H264Encoder {
    fn drop(&mut self) {
        // SAFETY: created by WelsCreateSVCEncoder and initialised; not used afterwards.
        unsafe {
            ((**self.enc).Uninitialize)(self.enc);
            sys::WelsDestroySVCEncoder(self.enc);
        }
    }
}

/// An OpenH264 decoder.
pub struct H264Decoder {
    dec: *mut sys::Dec,
}

impl std::fmt::Debug for H264Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Decoder").finish_non_exhaustive()
    }
}

// SAFETY: as for the encoder.
unsafe impl Send for H264Decoder {}

impl H264Decoder {
    /// Opens a decoder for AVC (not SVC) streams.
    pub fn new() -> Result<Self, VideoError> {
        let mut dec: *mut sys::Dec = ptr::null_mut();
        // SAFETY: as for the encoder; the parameters are plain data read during the call.
        unsafe {
            if sys::WelsCreateDecoder(&mut dec) != 0 || dec.is_null() {
                return Err(VideoError::Codec("WelsCreateDecoder failed".into()));
            }
            let mut level = sys::WELS_LOG_ERROR;
            ((**dec).SetOption)(
                dec,
                sys::DECODER_OPTION_TRACE_LEVEL,
                (&mut level as *mut c_int).cast(),
            );
            let param = sys::SDecodingParam {
                pFileNameRestructed: ptr::null_mut(),
                uiCpuLoad: 0,
                uiTargetDqLayer: u8::MAX,
                eEcActiveIdc: sys::ERROR_CON_DISABLE,
                bParseOnly: 0,
                sVideoProperty: sys::SVideoProperty {
                    size: std::mem::size_of::<sys::SVideoProperty>() as c_uint,
                    eVideoBsType: sys::VIDEO_BITSTREAM_AVC,
                },
            };
            let r = ((**dec).Initialize)(dec, &param);
            if r != 0 {
                sys::WelsDestroyDecoder(dec);
                return Err(VideoError::Codec(format!("decoder Initialize: {r}")));
            }
        }
        Ok(H264Decoder { dec })
    }

    /// Decodes one access unit (Annex B); returns the picture it completes, if any.
    pub fn decode(&mut self, data: &[u8]) -> Result<Vec<I420Frame>, VideoError> {
        if data.is_empty() {
            return Ok(Vec::new());
        }
        let len = c_int::try_from(data.len()).map_err(|_| VideoError::Invalid("frame size"))?;
        let mut dst: [*mut c_uchar; 3] = [ptr::null_mut(); 3];
        // SAFETY: OpenH264 reads `len` bytes of `data` and points `dst` into its own
        // buffers, valid until the next decode call; we copy the planes out at once, within
        // the sizes and strides it reports.
        unsafe {
            let mut info: sys::SBufferInfo = std::mem::zeroed();
            let r = ((**self.dec).DecodeFrameNoDelay)(
                self.dec,
                data.as_ptr(),
                len,
                dst.as_mut_ptr(),
                &mut info,
            );
            if r != 0 {
                return Err(VideoError::Codec(format!("DecodeFrameNoDelay: {r:#x}")));
            }
            if info.iBufferStatus != 1 || dst.iter().any(|p| p.is_null()) {
                return Ok(Vec::new());
            }
            let b = info.sSystemBuffer;
            let (w, h) = (
                usize::try_from(b.iWidth).unwrap_or(0),
                usize::try_from(b.iHeight).unwrap_or(0),
            );
            let (ys, cs) = (
                usize::try_from(b.iStride[0]).unwrap_or(0),
                usize::try_from(b.iStride[1]).unwrap_or(0),
            );
            if w == 0 || h == 0 || ys < w {
                return Ok(Vec::new());
            }
            let (cw, ch) = I420Frame::chroma_size(w, h);
            if cs < cw {
                return Ok(Vec::new());
            }
            let plane = |p: *mut c_uchar, stride: usize, pw: usize, ph: usize| {
                let mut out = Vec::with_capacity(pw * ph);
                for row in 0..ph {
                    out.extend_from_slice(std::slice::from_raw_parts(p.add(row * stride), pw));
                }
                out
            };
            Ok(vec![I420Frame {
                width: w,
                height: h,
                y: plane(dst[0], ys, w, h),
                u: plane(dst[1], cs, cw, ch),
                v: plane(dst[2], cs, cw, ch),
            }])
        }
    }
}

impl Drop for H264Decoder {
    fn drop(&mut self) {
        // SAFETY: created by WelsCreateDecoder and initialised; not used afterwards.
        unsafe {
            ((**self.dec).Uninitialize)(self.dec);
            sys::WelsDestroyDecoder(self.dec);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::TestPattern;

    #[test]
    fn ffi_layouts_match_codec_api_h() {
        // Sizes and offsets printed by a C program against /usr/include/wels (2.3.1).
        use std::mem::{offset_of, size_of};
        assert_eq!(size_of::<sys::SEncParamBase>(), 24);
        assert_eq!(size_of::<sys::SSourcePicture>(), 72);
        assert_eq!(size_of::<sys::SLayerBSInfo>(), 40);
        assert_eq!(size_of::<sys::SFrameBSInfo>(), 5144);
        assert_eq!(size_of::<sys::SDecodingParam>(), 32);
        assert_eq!(size_of::<sys::SBufferInfo>(), 72);
        assert_eq!(offset_of!(sys::SBufferInfo, pDst), 48);
        assert_eq!(offset_of!(sys::DecVtbl, DecodeFrameNoDelay), 24);
        assert_eq!(offset_of!(sys::DecVtbl, SetOption), 64);
        assert_eq!(offset_of!(sys::EncVtbl, ForceIntraFrame), 48);
        assert_eq!(offset_of!(sys::EncVtbl, SetOption), 56);
    }

    #[test]
    fn encode_packetize_depacketize_decode() {
        let mut enc = H264Encoder::new(EncoderConfig {
            width: 320,
            height: 240,
            fps: 30,
            bitrate_kbps: 800,
            ..EncoderConfig::default()
        })
        .expect("encoder");
        let mut dec = H264Decoder::new().expect("decoder");
        let mut src = TestPattern::new(320, 240);
        let mut decoded = 0;
        let mut keys = 0;
        for i in 0..30 {
            let raw = src.next_frame();
            for f in enc.encode(&raw, i == 0 || i == 20).expect("encode") {
                keys += usize::from(f.keyframe);
                if i == 0 {
                    // SPS first: profile_idc 66 (Baseline), constraint_set1 (Constrained).
                    let sps = crate::h264::split_annex_b(&f.data)[0];
                    assert_eq!(sps[0] & 0x1f, 7, "SPS first");
                    assert_eq!(sps[1], 66, "Baseline profile");
                }
                assert!(f.data.starts_with(&[0, 0, 0, 1]) || f.data.starts_with(&[0, 0, 1]));
                let payloads = crate::h264::packetize(&f.data, 1100);
                assert!(payloads.iter().all(|p| p.len() <= 1100));
                let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
                let au = crate::h264::depacketize(&refs).expect("depacketize");
                for pic in dec.decode(&au).expect("decode") {
                    assert_eq!((pic.width, pic.height), (320, 240));
                    assert_eq!(TestPattern::read_counter(&pic), i as u16);
                    let psnr = pic.psnr_y(&raw).expect("same size");
                    assert!(psnr > 30.0, "frame {i}: PSNR {psnr:.1} dB");
                    decoded += 1;
                }
            }
        }
        assert_eq!(decoded, 30);
        assert!(keys >= 2, "forced IDR honoured: {keys}");
    }

    #[test]
    fn garbage_is_an_error_not_a_crash() {
        let mut dec = H264Decoder::new().expect("decoder");
        let junk: Vec<u8> = (0..500u32).map(|i| (i * 7919 % 251) as u8).collect();
        let _ = dec.decode(&junk);
        let _ = dec.decode(&[0, 0, 0, 1, 0x65, 0xff]);
    }
}
