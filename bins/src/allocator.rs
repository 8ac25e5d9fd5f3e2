//! mimalloc, through its plain entry points where they give the alignment
//! asked for.
//!
//! The key-value store's roles allocate a request's keys and values and free
//! them once it is answered, hundreds per tick: mimalloc's per-size free
//! lists take that at about half glibc's cost (docs/BENCHMARKS.md, the
//! key-value store, run 15). The `mimalloc` crate's allocator always calls
//! the aligned entry points (`mi_malloc_aligned`), which take about 34
//! instructions where `mi_malloc` takes half that; `mi_malloc` aligns to 16
//! bytes any block of 16 bytes or more, and smaller ones to 8 (run 17).

use libmimalloc_sys as ffi;
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

pub struct MiMalloc;

/// Whether a block of `size` bytes from `mi_malloc` is aligned as asked.
fn plain(size: usize, align: usize) -> bool {
    align <= 8 || (align <= 16 && size >= 16)
}

// SAFETY: each block comes from mimalloc with the alignment its layout asks
// for (from the plain entry points only where they give it), and goes back
// to `mi_free`, which takes blocks from either.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if plain(layout.size(), layout.align()) {
            unsafe { ffi::mi_malloc(layout.size()) as *mut u8 }
        } else {
            unsafe { mimalloc::MiMalloc.alloc(layout) }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if plain(layout.size(), layout.align()) {
            unsafe { ffi::mi_zalloc(layout.size()) as *mut u8 }
        } else {
            unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        unsafe { ffi::mi_free(ptr as *mut c_void) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if plain(new_size, layout.align()) {
            unsafe { ffi::mi_realloc(ptr as *mut c_void, new_size) as *mut u8 }
        } else {
            unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_block_has_the_alignment_its_layout_asks_for() {
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1, 7, 8, 15, 16, 17, 24, 100, 4096, 1 << 20] {
                let Ok(layout) = Layout::from_size_align(size, align) else {
                    continue;
                };
                unsafe {
                    let ptr = MiMalloc.alloc(layout);
                    assert_eq!(ptr as usize % align, 0, "{size} bytes at {align}");
                    ptr.write_bytes(1, size);
                    let grown = MiMalloc.realloc(ptr, layout, size * 3);
                    assert_eq!(
                        grown as usize % align,
                        0,
                        "grown to {} at {align}",
                        size * 3
                    );
                    assert_eq!(*grown.add(size - 1), 1, "kept its bytes");
                    MiMalloc.dealloc(grown, Layout::from_size_align(size * 3, align).unwrap());
                    let zeroed = MiMalloc.alloc_zeroed(layout);
                    assert_eq!(zeroed as usize % align, 0);
                    assert!((0..size).all(|i| *zeroed.add(i) == 0));
                    MiMalloc.dealloc(zeroed, layout);
                }
            }
        }
    }
}
