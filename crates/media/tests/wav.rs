#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too
use std::path::PathBuf;

use natter_media::{WavRecorder, WavSource};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("natter-media-wav-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn record_then_play_back() {
    let path = tmp("mono.wav");
    let pcm: Vec<i16> = (0..1000).map(|i| (i * 37 % 20000 - 10000) as i16).collect();
    let mut rec = WavRecorder::create(&path, 16000).unwrap();
    rec.write(&pcm[..300]).unwrap();
    rec.write(&pcm[300..]).unwrap();
    rec.finalize().unwrap();
    // 44-byte canonical header + 2 bytes per sample.
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 44 + 2000);

    let mut src = WavSource::open(&path).unwrap();
    assert_eq!(src.sample_rate(), 16000);
    assert_eq!(src.channels(), 1);
    let a = src.read(400).unwrap();
    let b = src.read(400).unwrap();
    let c = src.read(400).unwrap();
    let d = src.read(400).unwrap();
    assert_eq!((a.len(), b.len(), c.len(), d.len()), (400, 400, 200, 0));
    let all: Vec<i16> = [a, b, c].concat();
    assert_eq!(all, pcm);
}

#[test]
fn stereo_and_other_formats_become_mono_i16() {
    // Stereo 16-bit: mono is the average of the two channels.
    let path = tmp("stereo.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for (l, r) in [
        (100i16, 300i16),
        (-1000, 1000),
        (32767, 32767),
        (-32768, -32767),
    ] {
        w.write_sample(l).unwrap();
        w.write_sample(r).unwrap();
    }
    w.finalize().unwrap();
    let mut src = WavSource::open(&path).unwrap();
    assert_eq!(src.channels(), 2);
    assert_eq!(src.read_all().unwrap(), [200, 0, 32767, -32768]);

    // 8-bit unsigned on disk (hound gives it signed): scaled to 16 bits.
    let path = tmp("u8.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 8,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for s in [0i8, 64, -128, 127] {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
    let mut src = WavSource::open(&path).unwrap();
    assert_eq!(src.read_all().unwrap(), [0, 16384, -32768, 32512]);

    // 32-bit float.
    let path = tmp("f32.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for s in [0.0f32, 0.5, -1.0, 2.0] {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
    let mut src = WavSource::open(&path).unwrap();
    assert_eq!(src.sample_rate(), 48000);
    assert_eq!(src.read_all().unwrap(), [0, 16384, -32767, 32767]);
}

#[test]
fn missing_or_garbage_file_is_an_error() {
    assert!(WavSource::open(tmp("does-not-exist.wav")).is_err());
    let path = tmp("garbage.wav");
    std::fs::write(&path, b"RIFF\x00\x00\x00\x00WAVEjunk").unwrap();
    assert!(WavSource::open(&path).is_err());
}
