//! The one bounds-checked accessor for packet memory.

use aya_ebpf::programs::XdpContext;
use relay_common::wire::FrameHeader;

use crate::error::Error;

/// A reference to the `T` that starts `offset` bytes into the frame, or
/// [`Error::Truncated`] when the frame ends before `offset + size_of::<T>()`.
///
/// # Safety
///
/// The caller must not hold another reference to any byte of
/// `offset..offset + size_of::<T>()` while the returned one is alive.
#[inline(always)]
pub unsafe fn ref_mut_at<'a, T: FrameHeader>(
    ctx: &'a XdpContext,
    offset: usize,
) -> Result<&'a mut T, Error> {
    // Volatile reads: LLVM must not relate these to earlier reads of the same
    // fields, or it proves the check below redundant from checks the verifier
    // cannot follow (e.g. IP total length vs frame length) and removes it.
    // SAFETY: `ctx.ctx` is the kernel-provided, valid `xdp_md` of this run.
    let (start, end) = unsafe {
        (
            core::ptr::read_volatile(&(*ctx.ctx).data) as usize,
            core::ptr::read_volatile(&(*ctx.ctx).data_end) as usize,
        )
    };
    if start + offset + core::mem::size_of::<T>() > end {
        return Err(Error::Truncated);
    }
    // SAFETY: `data..data_end` is the frame's linear packet memory, readable and
    // writable for the whole program run; the check above keeps the whole `T`
    // inside it (the verifier enforces the same). `T: FrameHeader` has alignment
    // 1 and accepts every byte pattern, so any offset yields a valid `T`.
    // Exclusivity is the caller's obligation (see `# Safety`).
    Ok(unsafe { &mut *((start + offset) as *mut T) })
}
