//! Micro-benchmarks, ignored by default. Run (a few seconds):
//! `cargo test --release -p natter-srtp --test bench -- --ignored --nocapture --test-threads=1`
//!
//! `bench_gcm_backends` is the measurement behind choosing ring over RustCrypto's
//! `aes-gcm` for the AEAD profiles.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Instant;

use natter_srtp::{SrtpContext, SrtpProfile};

const PAYLOAD: usize = 160;

fn ns_per(iters: u32, f: impl FnMut(u32)) -> f64 {
    let mut f = f;
    // Warm up caches and CPU feature detection.
    for i in 0..iters / 10 {
        f(i);
    }
    let start = Instant::now();
    for i in 0..iters {
        f(i);
    }
    start.elapsed().as_nanos() as f64 / f64::from(iters)
}

#[test]
#[ignore]
fn bench_gcm_backends() {
    use aes_gcm::aead::AeadInPlace;
    use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit, Nonce, Tag};
    use ring::aead::{Aad, LessSafeKey, UnboundKey, AES_128_GCM, AES_256_GCM};

    let aad = [0x80u8; 12];
    let iters = 200_000;
    for (name, key_len) in [("AES-128-GCM", 16usize), ("AES-256-GCM", 32)] {
        let key = vec![7u8; key_len];
        let ring_key = LessSafeKey::new(
            UnboundKey::new(
                if key_len == 16 {
                    &AES_128_GCM
                } else {
                    &AES_256_GCM
                },
                &key,
            )
            .unwrap(),
        );
        let mut buf = vec![0u8; PAYLOAD];
        let ring_seal = ns_per(iters, |i| {
            let mut iv = [0u8; 12];
            iv[8..].copy_from_slice(&i.to_be_bytes());
            let tag = ring_key
                .seal_in_place_separate_tag(
                    ring::aead::Nonce::assume_unique_for_key(iv),
                    Aad::from(&aad),
                    black_box(&mut buf),
                )
                .unwrap();
            let _ = black_box(tag);
        });
        let mut sealed = vec![0u8; PAYLOAD];
        let tag = ring_key
            .seal_in_place_separate_tag(
                ring::aead::Nonce::assume_unique_for_key([0; 12]),
                Aad::from(&aad),
                &mut sealed,
            )
            .unwrap();
        sealed.extend_from_slice(tag.as_ref());
        let ring_open = ns_per(iters, |_| {
            let mut b = sealed.clone();
            let r = ring_key.open_in_place(
                ring::aead::Nonce::assume_unique_for_key([0; 12]),
                Aad::from(&aad),
                black_box(&mut b),
            );
            assert!(r.is_ok());
        });

        enum Rc {
            A(Box<Aes128Gcm>),
            B(Box<Aes256Gcm>),
        }
        let rc = if key_len == 16 {
            Rc::A(Box::new(Aes128Gcm::new_from_slice(&key).unwrap()))
        } else {
            Rc::B(Box::new(Aes256Gcm::new_from_slice(&key).unwrap()))
        };
        let rc_seal = ns_per(iters, |i| {
            let mut iv = [0u8; 12];
            iv[8..].copy_from_slice(&i.to_be_bytes());
            let n = Nonce::from_slice(&iv);
            let tag = match &rc {
                Rc::A(c) => c.encrypt_in_place_detached(n, &aad, black_box(&mut buf)),
                Rc::B(c) => c.encrypt_in_place_detached(n, &aad, black_box(&mut buf)),
            }
            .unwrap();
            let _ = black_box(tag);
        });
        let (ct, t) = sealed.split_at(PAYLOAD);
        let rc_open = ns_per(iters, |_| {
            let mut b = ct.to_vec();
            let n = Nonce::from_slice(&[0; 12]);
            let tag = Tag::from_slice(t);
            let r = match &rc {
                Rc::A(c) => c.decrypt_in_place_detached(n, &aad, black_box(&mut b), tag),
                Rc::B(c) => c.decrypt_in_place_detached(n, &aad, black_box(&mut b), tag),
            };
            assert!(r.is_ok());
        });
        println!(
            "{name} {PAYLOAD}B: ring seal {ring_seal:.0} ns, open {ring_open:.0} ns | \
             aes-gcm seal {rc_seal:.0} ns, open {rc_open:.0} ns"
        );
    }
}

#[test]
#[ignore]
fn bench_profiles() {
    let n: u16 = 50_000;
    for p in SrtpProfile::ALL {
        let key = vec![1u8; p.master_key_len()];
        let salt = vec![2u8; p.master_salt_len()];
        let mut tx = SrtpContext::new(p, &key, &salt).unwrap();
        let mut rx = SrtpContext::new(p, &key, &salt).unwrap();
        let mut pkt = vec![0x80, 0x60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        pkt.extend_from_slice(&[0x55; PAYLOAD]);
        let mut buf = Vec::with_capacity(256);
        let start = Instant::now();
        for seq in 0..n {
            buf.clear();
            buf.extend_from_slice(&pkt);
            buf[2..4].copy_from_slice(&seq.to_be_bytes());
            tx.protect_rtp_in_place(black_box(&mut buf)).unwrap();
        }
        let protect = start.elapsed().as_nanos() as f64 / f64::from(n);
        // Fresh sequence numbers for the receiver (untimed).
        let mut tx = SrtpContext::new(p, &key, &salt).unwrap();
        let mut sealed: Vec<Vec<u8>> = (0..n)
            .map(|seq| {
                let mut b = pkt.clone();
                b[2..4].copy_from_slice(&seq.to_be_bytes());
                b.reserve(16);
                tx.protect_rtp_in_place(&mut b).unwrap();
                b
            })
            .collect();
        let start = Instant::now();
        for s in &mut sealed {
            rx.unprotect_rtp_in_place(black_box(s)).unwrap();
        }
        let unprotect = start.elapsed().as_nanos() as f64 / f64::from(n);
        println!(
            "{p} {PAYLOAD}B payload: protect {protect:.0} ns/pkt (incl. copying the packet in), \
             unprotect {unprotect:.0} ns/pkt"
        );
    }
}
