//! The one bounds-checked accessor for packet memory, and the frame view the
//! shared parse (`relay_common::datagram`) reads through it.

use aya_ebpf::{helpers::generated::bpf_xdp_get_buff_len, programs::XdpContext};
use relay_common::{datagram::Frame, wire::FrameHeader};

use crate::error::Error;

/// A pointer to the `T` that starts `offset` bytes into the frame's linear
/// part, or `None` when that part ends before `offset + size_of::<T>()`.
#[inline(always)]
fn ptr_at<T: FrameHeader>(ctx: &XdpContext, offset: usize) -> Option<*mut T> {
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
    // SAFETY: packet memory is never at address 0. Said so that LLVM drops
    // the null test `Option<&T>` would otherwise cost every frame.
    unsafe { core::hint::assert_unchecked(start != 0) };
    if start + offset + core::mem::size_of::<T>() > end {
        return None;
    }
    Some((start + offset) as *mut T)
}

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
    let p = ptr_at::<T>(ctx, offset).ok_or(Error::Truncated)?;
    // SAFETY: `data..data_end` is the frame's linear packet memory, readable and
    // writable for the whole program run; `ptr_at` keeps the whole `T` inside
    // it (the verifier enforces the same). `T: FrameHeader` has alignment 1 and
    // accepts every byte pattern, so any offset yields a valid `T`.
    // Exclusivity is the caller's obligation (see `# Safety`).
    Ok(unsafe { &mut *p })
}

/// The frame of this run, as the shared parse reads it. Only for reading
/// headers: nothing may write the frame while references from it are alive
/// (the rewrite and the ring copy come after the parse).
pub struct XdpFrame<'a> {
    ctx: &'a XdpContext,
    len: usize,
}

impl<'a> XdpFrame<'a> {
    #[inline(always)]
    pub fn new(ctx: &'a XdpContext) -> Self {
        // SAFETY: `ctx.ctx` is the kernel-provided context of this run.
        let len = unsafe { bpf_xdp_get_buff_len(ctx.ctx) as usize };
        Self { ctx, len }
    }
}

impl Frame for XdpFrame<'_> {
    /// The whole frame, fragments of a multi-buffer frame included: the
    /// headers are always in the linear part, the ring copy reads across.
    #[inline(always)]
    fn frame_len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    fn header<T: FrameHeader>(&self, offset: usize) -> Option<&T> {
        // SAFETY: as in `ref_mut_at`; shared, and by `XdpFrame`'s contract
        // nothing writes the frame while the returned reference is alive.
        ptr_at::<T>(self.ctx, offset).map(|p| unsafe { &*p })
    }
}
