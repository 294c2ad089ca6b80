//! Typed errors, and the errno-style codes of the seed API.

use crate::arch::current::RejectReason;
use core::fmt;

/// Why a probe operation was refused. A refused registration changes
/// nothing: no text is patched, no slot is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// `init` has not been called.
    NotInitialized,
    /// The address is not aligned to the architecture's instruction alignment.
    Misaligned { addr: usize },
    /// The address is outside the probeable kernel text.
    OutsideText { addr: usize },
    /// The address is inside an instruction, not at its start.
    NotInstructionBoundary { addr: usize, function: usize },
    /// No function contains the address, so its instruction boundary cannot
    /// be checked (the OS's symbol table does not cover it).
    NoFunction { addr: usize },
    /// The address is on the blacklist (trap path, hit path, OS-marked).
    Blacklisted { addr: usize },
    /// The instruction there cannot be probed.
    UnsupportedInstruction {
        addr: usize,
        mnemonic: &'static str,
        reason: RejectReason,
    },
    /// No probe with that id or address is registered (or it already was
    /// unregistered).
    NotRegistered,
    /// No such symbol, or a malformed `name+offset`.
    UnknownSymbol,
    /// The probe type needs a function entry and `addr` is not one.
    NotFunctionEntry { addr: usize },
    /// The probe table, slot area or instance pool is full.
    NoSpace,
    /// A return probe's `maxactive` is 0 or above `max`.
    BadMaxactive { requested: usize, max: usize },
    /// Called from a probe handler, where waiting for other harts to leave
    /// their probes could deadlock.
    InHandler,
    /// The probe type is not supported by this operation.
    UnsupportedType,
    /// No program file at that path (uprobes).
    UnknownPath,
    /// An async probe found no drop glue for its future in the symbol
    /// table (`core::ptr::drop_in_place<..::{{closure}}>`; identical drop
    /// glues folded into one address keep only one name). Give it with
    /// `drop_glue_at`, or opt out with `without_drop_detection`.
    NoDropGlue,
}

impl Error {
    /// The negative errno-style value the seed API returns.
    pub fn errno(&self) -> isize {
        const EPERM: isize = 1;
        const ENOENT: isize = 2;
        const EFAULT: isize = 14;
        const EBUSY: isize = 16;
        const EINVAL: isize = 22;
        const ENOSPC: isize = 28;
        const EDEADLK: isize = 35;
        const EOPNOTSUPP: isize = 95;
        -match self {
            Error::NotInitialized => EBUSY,
            Error::Misaligned { .. } | Error::NotInstructionBoundary { .. } => EINVAL,
            Error::BadMaxactive { .. } => EINVAL,
            Error::NotFunctionEntry { .. } | Error::NoFunction { .. } => EINVAL,
            Error::OutsideText { .. } => EFAULT,
            Error::Blacklisted { .. } => EPERM,
            Error::UnsupportedInstruction { .. } | Error::UnsupportedType => EOPNOTSUPP,
            Error::NotRegistered
            | Error::UnknownSymbol
            | Error::UnknownPath
            | Error::NoDropGlue => ENOENT,
            Error::NoSpace => ENOSPC,
            Error::InHandler => EDEADLK,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotInitialized => write!(f, "rkprobes is not initialised"),
            Error::Misaligned { addr } => write!(f, "{addr:#x} is misaligned"),
            Error::OutsideText { addr } => write!(f, "{addr:#x} is outside kernel text"),
            Error::NotInstructionBoundary { addr, function } => write!(
                f,
                "{addr:#x} is not an instruction boundary (function at {function:#x})"
            ),
            Error::NoFunction { addr } => {
                write!(
                    f,
                    "no known function contains {addr:#x}: cannot check its boundary"
                )
            }
            Error::Blacklisted { addr } => write!(f, "{addr:#x} is blacklisted"),
            Error::UnsupportedInstruction {
                addr,
                mnemonic,
                reason,
            } => {
                write!(f, "cannot probe `{mnemonic}` at {addr:#x}: {reason}")
            }
            Error::NotRegistered => write!(f, "no such probe"),
            Error::UnknownSymbol => write!(f, "unknown symbol"),
            Error::NotFunctionEntry { addr } => write!(f, "{addr:#x} is not a function entry"),
            Error::NoSpace => write!(f, "out of probe table, slot or instance space"),
            Error::BadMaxactive { requested, max } => {
                write!(f, "maxactive {requested} is not in 1..={max}")
            }
            Error::InHandler => write!(f, "not allowed from inside a probe handler"),
            Error::UnsupportedType => write!(f, "probe type not supported here"),
            Error::UnknownPath => write!(f, "no program at that path"),
            Error::NoDropGlue => write!(f, "no drop glue found for the async fn's future"),
        }
    }
}

pub type Result<T> = core::result::Result<T, Error>;
