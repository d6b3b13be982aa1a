//! The in-place packet path must not allocate when the buffer has room for the tag: the
//! phone protects and unprotects every 20 ms per stream. A counting global allocator makes
//! that checkable. This file holds a single test so no other test thread allocates
//! concurrently.
#![allow(clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use natter_srtp::{SrtpContext, SrtpProfile};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn in_place_protect_and_unprotect_do_not_allocate() {
    for p in SrtpProfile::ALL {
        let key = vec![3u8; p.master_key_len()];
        let salt = vec![4u8; p.master_salt_len()];
        let mut tx = SrtpContext::new(p, &key, &salt).unwrap();
        let mut rx = SrtpContext::new(p, &key, &salt).unwrap();
        let mut rtp = Vec::with_capacity(1500);
        let mut rtcp = Vec::with_capacity(1500);
        // First packets create the per-SSRC entries (allowed to allocate once).
        for warmup in [true, false] {
            let before = ALLOCATIONS.load(Ordering::SeqCst);
            let base: u16 = if warmup { 0 } else { 200 };
            for seq in base..base + 200 {
                rtp.clear();
                rtp.extend_from_slice(&[0x80, 0x00]);
                rtp.extend_from_slice(&seq.to_be_bytes());
                rtp.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9]);
                rtp.extend_from_slice(&[0x5a; 160]);
                tx.protect_rtp_in_place(&mut rtp).unwrap();
                rx.unprotect_rtp_in_place(&mut rtp).unwrap();

                rtcp.clear();
                rtcp.extend_from_slice(&[0x80, 200, 0, 6, 0, 0, 0, 9]);
                rtcp.extend_from_slice(&[0x11; 20]);
                tx.protect_rtcp_in_place(&mut rtcp).unwrap();
                rx.unprotect_rtcp_in_place(&mut rtcp).unwrap();
            }
            let after = ALLOCATIONS.load(Ordering::SeqCst);
            if !warmup {
                assert_eq!(after - before, 0, "{p}: allocations on the packet path");
            }
        }
    }
}
