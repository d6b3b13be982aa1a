//! YUV4MPEG2 files (the format of `ffmpeg -f yuv4mpegpipe` and libvpx's tools), 4:2:0 only:
//! `C420jpeg`, `C420`, `C420paldv`, `C420mpeg2` or no colour-space tag (4:2:0 by default).

use std::io::{BufRead, Read, Write};

use crate::{I420Frame, VideoError};

/// Longest header line we accept.
const MAX_LINE: usize = 1024;
/// Largest picture we accept (16384 x 16384 would be 400 MB a frame).
const MAX_DIM: usize = 8192;

/// Stream parameters from the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Y4mHeader {
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
    /// Frame rate numerator.
    pub fps_num: u32,
    /// Frame rate denominator.
    pub fps_den: u32,
}

fn read_line<R: BufRead>(r: &mut R) -> Result<Option<Vec<u8>>, VideoError> {
    let mut line = Vec::new();
    let n = r
        .by_ref()
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(VideoError::Y4m("header line too long or cut".into()));
    }
    line.pop();
    Ok(Some(line))
}

/// Parses a stream header line (without the newline).
pub fn parse_header(line: &[u8]) -> Result<Y4mHeader, VideoError> {
    // ASCII only (as the format is): every parameter's one-letter tag then splits on a
    // character boundary.
    if !line.is_ascii() {
        return Err(VideoError::Y4m("header not ASCII".into()));
    }
    let text = std::str::from_utf8(line).map_err(|_| VideoError::Y4m("header not ASCII".into()))?;
    let mut it = text.split(' ');
    if it.next() != Some("YUV4MPEG2") {
        return Err(VideoError::Y4m("no YUV4MPEG2 signature".into()));
    }
    let mut h = Y4mHeader {
        width: 0,
        height: 0,
        fps_num: 30,
        fps_den: 1,
    };
    for tok in it.filter(|t| !t.is_empty()) {
        let (tag, val) = tok.split_at(1);
        match tag {
            "W" => h.width = val.parse().map_err(|_| VideoError::Y4m("bad W".into()))?,
            "H" => h.height = val.parse().map_err(|_| VideoError::Y4m("bad H".into()))?,
            "F" => {
                let (n, d) = val.split_once(':').ok_or(VideoError::Y4m("bad F".into()))?;
                h.fps_num = n.parse().map_err(|_| VideoError::Y4m("bad F".into()))?;
                h.fps_den = d.parse().map_err(|_| VideoError::Y4m("bad F".into()))?;
            }
            "C" if !val.starts_with("420") => {
                return Err(VideoError::Y4m(format!("colour space C{val} (only 4:2:0)")))
            }
            _ => {}
        }
    }
    if h.width == 0 || h.height == 0 || h.width > MAX_DIM || h.height > MAX_DIM {
        return Err(VideoError::Y4m(format!("size {}x{}", h.width, h.height)));
    }
    if h.fps_num == 0 || h.fps_den == 0 {
        h.fps_num = 30;
        h.fps_den = 1;
    }
    Ok(h)
}

/// Reads frames from a y4m stream.
#[derive(Debug)]
pub struct Y4mReader<R> {
    r: R,
    header: Y4mHeader,
}

impl<R: BufRead> Y4mReader<R> {
    /// Reads the stream header.
    pub fn new(mut r: R) -> Result<Self, VideoError> {
        let line = read_line(&mut r)?.ok_or(VideoError::Y4m("empty file".into()))?;
        let header = parse_header(&line)?;
        Ok(Y4mReader { r, header })
    }

    /// The stream's parameters.
    pub fn header(&self) -> Y4mHeader {
        self.header
    }

    /// The next frame; `Ok(None)` at the end of the stream.
    pub fn next_frame(&mut self) -> Result<Option<I420Frame>, VideoError> {
        let Some(line) = read_line(&mut self.r)? else {
            return Ok(None);
        };
        if !line.starts_with(b"FRAME") {
            return Err(VideoError::Y4m("expected FRAME".into()));
        }
        let (w, h) = (self.header.width, self.header.height);
        let (cw, ch) = I420Frame::chroma_size(w, h);
        Ok(Some(I420Frame {
            width: w,
            height: h,
            y: read_plane(&mut self.r, w * h)?,
            u: read_plane(&mut self.r, cw * ch)?,
            v: read_plane(&mut self.r, cw * ch)?,
        }))
    }
}

/// Most bytes reserved for a plane before its data is there.
const PLANE_PREALLOC: usize = 64 * 1024;

/// Reads exactly `n` bytes. The buffer grows with the data actually read, so a short stream
/// whose header claims 8192 x 8192 costs its own size, not a 100 MB frame for every `FRAME`.
fn read_plane<R: Read>(r: &mut R, n: usize) -> Result<Vec<u8>, VideoError> {
    let mut plane = Vec::with_capacity(n.min(PLANE_PREALLOC));
    let got = r
        .take(n as u64)
        .read_to_end(&mut plane)
        .map_err(|_| VideoError::Y4m("frame cut short".into()))?;
    if got != n {
        return Err(VideoError::Y4m("frame cut short".into()));
    }
    Ok(plane)
}

/// Writes frames to a y4m stream (`C420jpeg`).
#[derive(Debug)]
pub struct Y4mWriter<W: Write> {
    w: W,
    width: usize,
    height: usize,
    /// Frames written.
    pub frames: u64,
}

impl<W: Write> Y4mWriter<W> {
    /// Writes the stream header.
    pub fn new(mut w: W, width: usize, height: usize, fps: u32) -> Result<Self, VideoError> {
        writeln!(w, "YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg")?;
        Ok(Y4mWriter {
            w,
            width,
            height,
            frames: 0,
        })
    }

    /// The stream's frame size.
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// Appends a frame; frames of another size are refused (a y4m stream has one size).
    pub fn write(&mut self, f: &I420Frame) -> Result<(), VideoError> {
        if f.width != self.width || f.height != self.height {
            return Err(VideoError::Y4m(format!(
                "frame {}x{} in a {}x{} stream",
                f.width, f.height, self.width, self.height
            )));
        }
        self.w.write_all(b"FRAME\n")?;
        self.w.write_all(&f.y)?;
        self.w.write_all(&f.u)?;
        self.w.write_all(&f.v)?;
        self.frames += 1;
        Ok(())
    }

    /// Flushes.
    pub fn flush(&mut self) -> Result<(), VideoError> {
        self.w.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::TestPattern;

    /// Found by the video_depacketize fuzz target: a parameter starting with a multi-byte
    /// character made the tag split panic. Such a header is refused.
    #[test]
    fn non_ascii_header_is_refused_not_a_panic() {
        let line = "YUV4MPEG2 W2 H2 \u{3e5}x".as_bytes();
        assert!(matches!(parse_header(line), Err(VideoError::Y4m(_))));
        assert!(parse_header(b"YUV4MPEG2 W2 H2").is_ok());
    }

    #[test]
    fn write_read_round_trip() {
        let mut p = TestPattern::new(33, 17);
        let frames: Vec<I420Frame> = (0..3).map(|_| p.next_frame()).collect();
        let mut buf = Vec::new();
        let mut w = Y4mWriter::new(&mut buf, 33, 17, 30).expect("header");
        for f in &frames {
            w.write(f).expect("frame");
        }
        assert!(buf.starts_with(b"YUV4MPEG2 W33 H17 F30:1 Ip A1:1 C420jpeg\nFRAME\n"));
        assert_eq!(buf.len(), 41 + 3 * (6 + I420Frame::byte_len(33, 17)));
        let mut r = Y4mReader::new(buf.as_slice()).expect("reads");
        assert_eq!(r.header().width, 33);
        for f in &frames {
            assert_eq!(r.next_frame().expect("frame").as_ref(), Some(f));
        }
        assert_eq!(r.next_frame(), Ok(None));
    }

    #[test]
    fn refuses_bad_headers() {
        assert!(parse_header(b"YUV4MPEG2 W320 H240 C444").is_err());
        assert!(parse_header(b"YUV4MPEG2 W0 H240").is_err());
        assert!(parse_header(b"YUV4MPEG W320 H240").is_err());
        assert_eq!(
            parse_header(b"YUV4MPEG2 W320 H240 F25:1 C420").map(|h| h.fps_num),
            Ok(25)
        );
        let cut = b"YUV4MPEG2 W4 H4\nFRAME\n0123";
        let mut r = Y4mReader::new(&cut[..]).expect("header");
        assert!(r.next_frame().is_err());
        // A header claiming the largest picture, then a few bytes: refused as cut short
        // (without reserving the 100 MB the header claims).
        let cut = b"YUV4MPEG2 W8192 H8192\nFRAME\n0123";
        let mut r = Y4mReader::new(&cut[..]).expect("header");
        assert_eq!(
            r.next_frame(),
            Err(VideoError::Y4m("frame cut short".into()))
        );
    }
}
