//! Reading the `Poll<T>` a poll function really returned, without ever
//! dropping the `T` in it (it belongs to the caller).
//!
//! Where the value is depends on how the Rust ABI returns `Poll<T>` on
//! RV64 (rustc 1.95):
//! - a single scalar (`Poll<()>`, `Poll<bool>`, `Poll<&U>`) or an
//!   aggregate of at most 8 bytes: in `a0`;
//! - a scalar pair (`Poll<usize>`: tag, value): tag in `a0`, value in `a1`;
//! - anything larger that is not a scalar pair (`Poll<Result<u64, E>>`,
//!   16 bytes; `Poll<[u64; 4]>`): in memory at a hidden pointer the
//!   caller passes in `a0`, which only the entry sees (`a0` at the return
//!   is not the value).
//!
//! Registers are read as the memory image `a0 ‖ a1` (a0's bytes at offset
//! 0, a1's at 8), which is the layout of every scalar, every aggregate of
//! ≤ 8 bytes and every scalar pair whose second half is at offset 8
//! (`Poll<usize>`, `Poll<u64>`, `Poll<Option<usize>>`, `Poll<Box<U>>`).
//! Not covered: a `Poll` of ≤ 8 bytes that is a scalar pair with a small
//! second half (`Poll<u32>`: tag at 0, value at 4, but passed in `a1`):
//! `is_ready` is still exact, the value is not.

use core::mem::{size_of, ManuallyDrop, MaybeUninit};
use core::task::Poll;

/// How a `Poll<T>` comes back from its poll function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Returned {
    /// In `a0` (and `a1`).
    Registers,
    /// In memory at the hidden pointer passed in `a0` at entry; the
    /// future (`self`) is then in `a1`.
    Indirect,
}

/// The choice for `Poll<T>` when the user did not make it: ≤ 8 bytes in
/// registers, > 16 bytes indirect, and 9..=16 bytes (scalar pair in
/// registers or aggregate in memory, which the size cannot tell) in
/// registers unless `overridden`.
pub fn returned<T>(overridden: Option<bool>) -> Returned {
    let size = size_of::<Poll<T>>();
    match (size, overridden) {
        (0..=8, _) => Returned::Registers,
        (9..=16, Some(true)) => Returned::Indirect,
        (9..=16, _) => Returned::Registers,
        _ => Returned::Indirect,
    }
}

/// A copy of the returned `Poll<T>` that never drops its `T`.
pub struct RawPoll<T>(ManuallyDrop<MaybeUninit<Poll<T>>>);

impl<T> RawPoll<T> {
    /// From the return registers, as the memory image `a0 ‖ a1`.
    ///
    /// # Safety
    /// `Poll<T>` must be returned in registers with the layout described
    /// in the module comment, and `a0`/`a1` must be the registers at the
    /// return of a function that returned a `Poll<T>`.
    pub unsafe fn from_registers(a0: usize, a1: usize) -> Self {
        let image = [a0, a1];
        let size = size_of::<Poll<T>>().min(size_of::<[usize; 2]>());
        let mut out = MaybeUninit::<Poll<T>>::uninit();
        // SAFETY: `size` bytes fit in both `image` and `out`; they do not
        // overlap.
        unsafe {
            core::ptr::copy_nonoverlapping(
                image.as_ptr() as *const u8,
                out.as_mut_ptr() as *mut u8,
                size,
            )
        };
        RawPoll(ManuallyDrop::new(out))
    }

    /// From the memory at the hidden return pointer.
    ///
    /// # Safety
    /// `ptr` must be the hidden return pointer that a poll function
    /// returning `Poll<T>` indirectly received, read after that function
    /// returned (so it holds an initialised `Poll<T>`).
    pub unsafe fn from_memory(ptr: usize) -> Self {
        // SAFETY: by the caller, `ptr` is valid and aligned for a `Poll<T>`
        // the function just wrote; this is a bitwise copy, the original
        // stays the caller's.
        RawPoll(ManuallyDrop::new(unsafe {
            core::ptr::read(ptr as *const MaybeUninit<Poll<T>>)
        }))
    }

    fn get(&self) -> &Poll<T> {
        // SAFETY: both constructors fill in a `Poll<T>` returned by the
        // function (their own safety contracts).
        unsafe { self.0.assume_init_ref() }
    }

    pub fn is_ready(&self) -> bool {
        self.get().is_ready()
    }

    /// The value of a `Ready`, borrowed from this copy.
    pub fn value(&self) -> Option<&T> {
        match self.get() {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The memory image of `p` as two registers (what an ABI returning it
    /// in registers leaves in a0/a1 for the layouts covered).
    fn image<T>(p: &Poll<T>) -> (usize, usize) {
        let mut regs = [0usize; 2];
        let n = size_of::<Poll<T>>();
        assert!(n <= 16);
        // SAFETY: copies the n bytes of `p` into the 16-byte array.
        unsafe {
            core::ptr::copy_nonoverlapping(
                p as *const Poll<T> as *const u8,
                regs.as_mut_ptr() as *mut u8,
                n,
            )
        };
        (regs[0], regs[1])
    }

    #[test]
    fn unit_in_a0() {
        assert_eq!(returned::<()>(None), Returned::Registers);
        // SAFETY: a0 = 0 is Ready(()), 1 Pending: Poll<()> is one byte.
        let r = unsafe { RawPoll::<()>::from_registers(0, 0xdead) };
        assert!(r.is_ready());
        assert_eq!(r.value(), Some(&()));
        // SAFETY: as above.
        let p = unsafe { RawPoll::<()>::from_registers(1, 0) };
        assert!(!p.is_ready());
    }

    #[test]
    fn usize_in_a0_a1() {
        assert_eq!(size_of::<Poll<usize>>(), 16);
        assert_eq!(returned::<usize>(None), Returned::Registers);
        // SAFETY: the (tag, value) pair as the ABI returns it.
        let r = unsafe { RawPoll::<usize>::from_registers(0, 55) };
        assert_eq!(r.value(), Some(&55));
        // SAFETY: as above; a1 is junk when Pending.
        let p = unsafe { RawPoll::<usize>::from_registers(1, 0x1234) };
        assert!(!p.is_ready());
        assert_eq!(p.value(), None);
        // Agrees with the compiler's own layout.
        let (a0, a1) = image(&Poll::Ready(7usize));
        assert_eq!((a0, a1), (0, 7));
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum E {
        Zero,
        Overflow,
    }

    #[test]
    fn result_u64_in_memory() {
        assert_eq!(size_of::<Poll<Result<u64, E>>>(), 16);
        // 16 bytes: registers by default, memory when told.
        assert_eq!(returned::<Result<u64, E>>(None), Returned::Registers);
        assert_eq!(returned::<Result<u64, E>>(Some(true)), Returned::Indirect);
        for p in [
            Poll::Ready(Ok(42u64)),
            Poll::Ready(Err(E::Zero)),
            Poll::Ready(Err(E::Overflow)),
            Poll::Pending,
        ] {
            let slot = p;
            // SAFETY: `slot` is an initialised Poll<Result<u64, E>>.
            let r = unsafe { RawPoll::<Result<u64, E>>::from_memory(&slot as *const _ as usize) };
            assert_eq!(r.is_ready(), p.is_ready());
            assert_eq!(
                r.value().copied(),
                match p {
                    Poll::Ready(v) => Some(v),
                    Poll::Pending => None,
                }
            );
        }
        // The layout the kernel's targets comment documents.
        let ok: Poll<Result<u64, E>> = Poll::Ready(Ok(42));
        let (a0, a1) = image(&ok);
        assert_eq!((a0 & 0xff, a1), (0, 42));
        let (a0, _) = image(&Poll::<Result<u64, E>>::Pending);
        assert_eq!(a0 & 0xff, 2);
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Big {
        a: u64,
        b: u64,
        c: u64,
        d: u64,
    }

    #[test]
    fn big_struct_in_memory() {
        assert_eq!(size_of::<Poll<Big>>(), 40);
        assert_eq!(returned::<Big>(None), Returned::Indirect);
        assert_eq!(returned::<Big>(Some(false)), Returned::Indirect);
        let big = Big {
            a: 5,
            b: 10,
            c: 15,
            d: 20,
        };
        let slot = Poll::Ready(big);
        // SAFETY: `slot` is an initialised Poll<Big>.
        let r = unsafe { RawPoll::<Big>::from_memory(&slot as *const _ as usize) };
        assert_eq!(r.value(), Some(&big));
        let pending: Poll<Big> = Poll::Pending;
        // SAFETY: as above.
        let r = unsafe { RawPoll::<Big>::from_memory(&pending as *const _ as usize) };
        assert!(!r.is_ready());
    }

    /// Counts drops, to show a decoded value is never dropped.
    struct Counted(&'static AtomicUsize);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn decoded_values_are_not_dropped() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        let slot = ManuallyDrop::new(Poll::Ready((Counted(&DROPS), String::from("owned"))));
        {
            // SAFETY: `slot` holds an initialised Poll of that type.
            let r =
                unsafe { RawPoll::<(Counted, String)>::from_memory(&*slot as *const _ as usize) };
            assert_eq!(r.value().map(|v| v.1.as_str()), Some("owned"));
        }
        assert_eq!(DROPS.load(Ordering::SeqCst), 0);
        // The caller's value is intact and dropped once, by its owner.
        drop(ManuallyDrop::into_inner(slot));
        assert_eq!(DROPS.load(Ordering::SeqCst), 1);
    }
}
