//! The seed document's API, kept exactly: errno-style `isize` results.

use crate::api::{unregister_addr, Kprobe};
use crate::point::{ProbeType, SeedHandler};

/// Registers a probe at `addr`. Returns 0, or a negative errno
/// (`Error::errno`): -EINVAL misaligned / not an instruction boundary,
/// -EFAULT outside kernel text, -EPERM blacklisted, -EOPNOTSUPP
/// unsupported instruction or type, -ENOSPC out of space, -EBUSY not
/// initialised, -EDEADLK called from a handler.
pub fn kprobe_register(
    addr: usize,
    handler: SeedHandler,
    post_handler: Option<SeedHandler>,
    probe_type: ProbeType,
) -> isize {
    match Kprobe::at(addr)
        .kind(probe_type)
        .seed_handlers(handler, post_handler)
        .register()
    {
        Ok(_) => 0,
        Err(e) => e.errno(),
    }
}

/// Unregisters every probe at `addr`. Returns 0 or a negative errno
/// (-ENOENT when nothing is registered there).
pub fn kprobe_unregister(addr: usize) -> isize {
    match unregister_addr(addr) {
        Ok(_) => 0,
        Err(e) => e.errno(),
    }
}
