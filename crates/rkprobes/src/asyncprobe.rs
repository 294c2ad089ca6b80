//! Async probes (`ProbeType::AsyncFunc`): follow every call of an
//! `async fn` from its first poll to its completion or its drop.
//!
//! An `async fn f` is a constructor `f` that only builds a state machine,
//! and a poll function (`f::{{closure}}` in the symbol table) that runs it:
//! `poll(self: Pin<&mut Self>, cx) -> Poll<T>`. An async probe is built from
//! two ordinary probes:
//! - a return probe (`SyncFunc`) on the poll function: its entry sees which
//!   future is polled (the state machine's address, `self`) and its return
//!   reads the `Poll<T>` really returned (see `decode.rs` for the ABI);
//! - a probe on the future's drop glue, `core::ptr::drop_in_place<f::{{closure}}>`:
//!   a future dropped while still followed never completed, so it is
//!   reported cancelled and its entry freed.
//!
//! Instances live in a bounded table allocated at registration
//! (`track.rs`); the hit path allocates nothing. A future that finds the
//! table full is not followed at that poll (one `missed` per such poll);
//! like a future already running when the probe is armed, it is followed
//! from a later poll on, as a new instance whose counts cover only the
//! polls followed. A future dropped before its first poll is never seen.

mod decode;
mod track;

use crate::api::{register_many, unregister_many, Kprobe, ProbeHandle};
use crate::arch::current::TrapFrame;
use crate::error::{Error, Result};
use crate::global;
use crate::os::KprobeOs;
use crate::point::{EntryAction, Post, Pre, RetData};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::marker::PhantomData;
use core::sync::atomic::Ordering;
use decode::RawPoll;
pub use decode::Returned;
pub use track::AsyncSummary;
use track::Table;

/// What happened to a future instance.
#[derive(Debug)]
pub enum AsyncEventKind<'a, T> {
    /// Its first poll is about to run (followed by `PollEnter { poll: 1 }`).
    Start,
    /// A poll begins; `poll` counts from 1.
    PollEnter { poll: u64 },
    /// A poll returned. `value` is the decoded `Ready` value (borrowed
    /// from a copy that is never dropped; `None` when `Pending`, or in the
    /// seed form, which does not know `T`); `ticks` spent in this poll.
    PollExit {
        poll: u64,
        ready: bool,
        value: Option<&'a T>,
        ticks: u64,
    },
    /// It returned `Ready` (right after its `PollExit`).
    Complete(AsyncSummary),
    /// It was dropped before completing.
    Cancelled(AsyncSummary),
}

/// One event of one future instance.
#[derive(Debug)]
pub struct AsyncEvent<'a, T = ()> {
    /// Address of the state machine: the instance's identity while alive.
    pub future: usize,
    /// The instance's number (1, 2, ..) within this probe.
    pub instance: u64,
    /// The hart it happens on.
    pub hart: usize,
    pub kind: AsyncEventKind<'a, T>,
}

type Sink<T> = Box<dyn Fn(&mut TrapFrame, &AsyncEvent<'_, T>) + Send + Sync>;

/// What to register on.
pub(crate) enum Target {
    /// An `async fn` or its poll function, by address.
    Addr(usize),
    /// An `async fn` or its poll function, by name.
    Symbol(String),
    /// A poll function (any `Future::poll`), taken as is.
    PollFn(usize),
}

/// Where the drop glue is.
enum DropGlue {
    /// `core::ptr::drop_in_place<poll function's name>` from the symbol table.
    ByName,
    At(usize),
    /// No cancellation detection (see `without_drop_detection`).
    Ignore,
}

/// How a poll's result is read.
#[derive(Clone, Copy)]
enum Decode {
    Typed(Returned),
    /// The seed form, not knowing `T`: `Ready` iff `a0 == 0`.
    TagInA0,
}

/// Builds an async probe:
/// `AsyncProbe::<usize>::symbol("kernel::task::targets::sum_after_yields").on_event(|e| ..).register()`.
///
/// `T` is the `async fn`'s output, used to decode its `Poll<T>`.
#[must_use = "a probe does nothing until `register` is called"]
pub struct AsyncProbe<T> {
    target: Target,
    indirect: Option<bool>,
    capacity: usize,
    maxactive: Option<usize>,
    drop_glue: DropGlue,
    decode: Option<Decode>,
    enabled: bool,
    sink: Option<Sink<T>>,
    _t: PhantomData<fn() -> T>,
}

/// Default number of instances followed at once.
pub const DEFAULT_CAPACITY: usize = 64;

impl<T: 'static> AsyncProbe<T> {
    fn new(target: Target) -> Self {
        AsyncProbe {
            target,
            indirect: None,
            capacity: DEFAULT_CAPACITY,
            maxactive: None,
            drop_glue: DropGlue::ByName,
            decode: None,
            enabled: true,
            sink: None,
            _t: PhantomData,
        }
    }

    /// On the `async fn` named `name` (its poll function `name::{{closure}}`
    /// is probed), or on a poll function by its own name.
    pub fn symbol(name: &str) -> Self {
        Self::new(Target::Symbol(name.into()))
    }

    /// On the `async fn` (or its poll function) starting at `addr`. The
    /// name is looked up there: constructors the linker folded into one
    /// address carry only one name, so prefer `symbol` for those.
    pub fn at(addr: usize) -> Self {
        Self::new(Target::Addr(addr))
    }

    /// On any poll function (e.g. a hand-written `Future::poll`), as is.
    pub fn poll_fn(addr: usize) -> Self {
        Self::new(Target::PollFn(addr))
    }

    /// Says whether `Poll<T>` comes back through the hidden return pointer.
    /// Only matters when `Poll<T>` is 9 to 16 bytes: rustc returns a scalar
    /// pair (`Poll<usize>`) in a0/a1, other layouts of that size
    /// (`Poll<Result<u64, E>>`) in memory. Default there: registers.
    /// Smaller is always in registers, larger always in memory.
    pub fn returned_indirectly(mut self, yes: bool) -> Self {
        self.indirect = Some(yes);
        self
    }

    /// Instances followed at once (default `DEFAULT_CAPACITY`); a new
    /// instance beyond that is not followed and counts as missed.
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n;
        self
    }

    /// Polls in progress at once (the return probe's `maxactive`).
    pub fn maxactive(mut self, n: usize) -> Self {
        self.maxactive = Some(n);
        self
    }

    /// The future's drop glue is at `addr` (when the symbol table has no
    /// `core::ptr::drop_in_place<..>` under the poll function's name, e.g.
    /// because identical drop glues were folded into one address).
    pub fn drop_glue_at(mut self, addr: usize) -> Self {
        self.drop_glue = DropGlue::At(addr);
        self
    }

    /// Registers without watching drops: instances dropped before they
    /// complete are then never reported and keep their table entry (a new
    /// future at the same address continues that instance). For futures
    /// that always run to completion.
    pub fn without_drop_detection(mut self) -> Self {
        self.drop_glue = DropGlue::Ignore;
        self
    }

    /// Registers the probe disabled; enable it through `AsyncHandle`.
    pub fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }

    /// Called for every event, in the hit path: must not block or
    /// allocate if the traced code may hold the allocator.
    pub fn on_event(mut self, f: impl Fn(&AsyncEvent<'_, T>) + Send + Sync + 'static) -> Self {
        self.sink = Some(Box::new(move |_, e| f(e)));
        self
    }

    fn returned(&self) -> Returned {
        decode::returned::<T>(self.indirect)
    }

    /// Registers both probes; on error neither stays.
    pub fn register(self) -> Result<AsyncHandle> {
        let kp = global::get().ok_or(Error::NotInitialized)?;
        let os = kp.os;
        let (poll, name, user_addr) = resolve(os, &self.target)?;
        let drop_addr = match self.drop_glue {
            DropGlue::Ignore => None,
            DropGlue::At(a) => Some(a),
            DropGlue::ByName => {
                let glue = format!(
                    "core::ptr::drop_in_place<{}>",
                    name.ok_or(Error::NoDropGlue)?
                );
                Some(os.symbol_by_name(&glue).ok_or(Error::NoDropGlue)?.addr)
            }
        };
        let decode = self.decode.unwrap_or(Decode::Typed(self.returned()));
        let table = Arc::new(Table::new(self.capacity));
        let sink: Arc<Option<Sink<T>>> = Arc::new(self.sink);
        let mut poll_probe = Kprobe::function(poll)
            .entry(entry_handler(os, decode, table.clone(), sink.clone()))
            .ret(ret_handler(os, decode, table.clone(), sink.clone()));
        if let Some(n) = self.maxactive {
            poll_probe = poll_probe.maxactive(n);
        }
        if !self.enabled {
            poll_probe = poll_probe.disabled();
        }
        let mut builders = vec![poll_probe];
        if let Some(a) = drop_addr {
            builders.push(Kprobe::at(a).pre(drop_handler(os, table.clone(), sink)));
        }
        let mut results = register_many(builders).into_iter();
        let poll_handle = results.next().unwrap_or(Err(Error::NoSpace));
        let drop_handle = results.next().transpose();
        let (poll_handle, drop_handle) = match (poll_handle, drop_handle) {
            (Ok(p), Ok(d)) => (p, d),
            (p, d) => {
                let err = p.as_ref().err().or(d.as_ref().err()).copied();
                let left: Vec<ProbeHandle> = p.into_iter().chain(d.ok().flatten()).collect();
                unregister_many(left);
                return Err(err.unwrap_or(Error::NoSpace));
            }
        };
        COMPANIONS.lock().push(Companion {
            poll: poll_handle.id(),
            drop: drop_handle.as_ref().map(|h| h.id()),
            user_addr,
        });
        Ok(AsyncHandle {
            poll: poll_handle,
            drop: drop_handle,
            table,
            returned: match decode {
                Decode::Typed(r) => r,
                Decode::TagInA0 => Returned::Registers,
            },
        })
    }
}

/// The probed poll function, its name, and the address the user named.
fn resolve(os: &dyn KprobeOs, target: &Target) -> Result<(usize, Option<&'static str>, usize)> {
    const CLOSURE: &str = "::{{closure}}";
    match target {
        Target::PollFn(a) => Ok((
            *a,
            os.symbol_at(*a).filter(|s| s.addr == *a).map(|s| s.name),
            *a,
        )),
        Target::Symbol(name) => {
            let name = name.trim();
            let named = os.symbol_by_name(name);
            let poll = if name.ends_with(CLOSURE) {
                named
            } else {
                os.symbol_by_name(&format!("{name}{CLOSURE}")).or(named)
            }
            .ok_or(Error::UnknownSymbol)?;
            Ok((
                poll.addr,
                Some(poll.name),
                named.map_or(poll.addr, |s| s.addr),
            ))
        }
        Target::Addr(a) => {
            let sym = os.symbol_at(*a).ok_or(Error::NoFunction { addr: *a })?;
            if sym.addr != *a {
                return Err(Error::NotFunctionEntry { addr: *a });
            }
            if sym.name.ends_with(CLOSURE) {
                return Ok((*a, Some(sym.name), *a));
            }
            // Not a poll function: the async fn whose poll function it has.
            let poll = os
                .symbol_by_name(&format!("{}{CLOSURE}", sym.name))
                .ok_or(Error::UnknownSymbol)?;
            Ok((poll.addr, Some(poll.name), *a))
        }
    }
}

fn emit<T>(sink: &Option<Sink<T>>, tf: &mut TrapFrame, e: AsyncEvent<'_, T>) {
    if let Some(f) = sink {
        f(tf, &e);
    }
}

/// At a poll's entry: finds or starts the instance, leaves for the return
/// `[future, hidden return pointer, table slot, entry time]`.
fn entry_handler<T: 'static>(
    os: &'static dyn KprobeOs,
    decode: Decode,
    table: Arc<Table>,
    sink: Arc<Option<Sink<T>>>,
) -> impl Fn(&mut TrapFrame, &mut RetData) -> EntryAction + Send + Sync + 'static {
    move |tf, data| {
        let (future, ret_ptr) = match decode {
            Decode::Typed(Returned::Indirect) => (tf.arg(1), tf.arg(0)),
            _ => (tf.arg(0), 0),
        };
        let hart = os.hart_id();
        let Some((p, first)) = table.poll_enter(future, hart, os.now_ticks()) else {
            // Not followed: no need to catch this poll's return.
            return EntryAction::Cancel;
        };
        let ev = |kind| AsyncEvent {
            future,
            instance: p.seq,
            hart,
            kind,
        };
        if first {
            emit(&sink, tf, ev(AsyncEventKind::Start));
        }
        emit(&sink, tf, ev(AsyncEventKind::PollEnter { poll: p.poll }));
        *data = [future, ret_ptr, p.slot, os.now_ticks() as usize];
        EntryAction::Continue
    }
}

/// At a poll's return: decodes `Poll<T>`, reports the exit and, if
/// `Ready`, the completion.
fn ret_handler<T: 'static>(
    os: &'static dyn KprobeOs,
    decode: Decode,
    table: Arc<Table>,
    sink: Arc<Option<Sink<T>>>,
) -> impl Fn(&mut TrapFrame, &RetData) + Send + Sync + 'static {
    move |tf, data| {
        let now = os.now_ticks();
        let [future, ret_ptr, slot, entered] = *data;
        let entered = entered as u64;
        let raw = match decode {
            // SAFETY: the probe is on a poll function returning `Poll<T>`
            // (the caller of `register` named `T`), and these are the
            // registers at its return; the layout rule is decode.rs's.
            Decode::Typed(Returned::Registers) => {
                Some(unsafe { RawPoll::<T>::from_registers(tf.ret(), tf.ret2()) })
            }
            // SAFETY: `ret_ptr` is the hidden return pointer this very call
            // received at entry, and the function has returned.
            Decode::Typed(Returned::Indirect) => {
                Some(unsafe { RawPoll::<T>::from_memory(ret_ptr) })
            }
            Decode::TagInA0 => None,
        };
        let ready = raw.as_ref().map_or(tf.ret() == 0, |r| r.is_ready());
        table.poll_exit(slot, entered, now);
        let (instance, poll) = table.seq_poll(slot);
        let hart = os.hart_id();
        let ev = |kind| AsyncEvent {
            future,
            instance,
            hart,
            kind,
        };
        emit(
            &sink,
            tf,
            ev(AsyncEventKind::PollExit {
                poll,
                ready,
                value: raw.as_ref().and_then(|r| r.value()),
                ticks: now.saturating_sub(entered),
            }),
        );
        if ready {
            let summary = table.complete(slot, now);
            emit(&sink, tf, ev(AsyncEventKind::Complete(summary)));
        }
    }
}

/// At the drop glue's entry (`a0` = the future being dropped).
fn drop_handler<T: 'static>(
    os: &'static dyn KprobeOs,
    table: Arc<Table>,
    sink: Arc<Option<Sink<T>>>,
) -> impl Fn(&mut TrapFrame) + Send + Sync + 'static {
    move |tf| {
        let future = tf.arg(0);
        if let Some((instance, summary)) = table.dropped(future, os.now_ticks()) {
            let e = AsyncEvent {
                future,
                instance,
                hart: os.hart_id(),
                kind: AsyncEventKind::Cancelled(summary),
            };
            emit(&sink, tf, e);
        }
    }
}

/// A registered async probe. Dropping it leaves the probe registered.
pub struct AsyncHandle {
    poll: ProbeHandle,
    drop: Option<ProbeHandle>,
    table: Arc<Table>,
    returned: Returned,
}

impl AsyncHandle {
    /// Address of the probed poll function.
    pub fn poll_fn(&self) -> usize {
        self.poll.addr()
    }
    /// Address of the probed drop glue, if drops are watched.
    pub fn drop_glue(&self) -> Option<usize> {
        self.drop.as_ref().map(|h| h.addr())
    }
    /// How `Poll<T>` is read.
    pub fn returned(&self) -> Returned {
        self.returned
    }
    fn count(c: &core::sync::atomic::AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
    pub fn started(&self) -> u64 {
        Self::count(&self.table.counters.started)
    }
    pub fn completed(&self) -> u64 {
        Self::count(&self.table.counters.completed)
    }
    pub fn cancelled(&self) -> u64 {
        Self::count(&self.table.counters.cancelled)
    }
    /// Polls seen (of followed and unfollowed instances).
    pub fn polls(&self) -> u64 {
        Self::count(&self.table.counters.polls)
    }
    /// Polls of instances not followed (table full) plus polls the return probe
    /// missed (its pool full, or hit inside another probe's handler).
    pub fn missed(&self) -> u64 {
        Self::count(&self.table.counters.missed)
            + self.poll.missed()
            + self.drop.as_ref().map_or(0, |h| h.missed())
    }
    /// Instances followed right now.
    pub fn in_flight(&self) -> usize {
        self.table.live()
    }
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }
    pub fn enable(&self) {
        self.poll.enable();
    }
    pub fn disable(&self) {
        self.poll.disable();
    }
    /// Removes both probes; returns once no hart can be in them.
    pub fn unregister(self) -> Result<()> {
        take_companions(&[self.poll.id()]);
        let mut handles = vec![self.poll];
        handles.extend(self.drop);
        unregister_many(handles).into_iter().collect()
    }
}

/// The drop probe that goes with each async probe's poll probe, so that
/// removing the poll probe by id or by address (the seed form) removes it
/// too.
struct Companion {
    poll: u64,
    drop: Option<u64>,
    /// The address the user registered on (seed form: `kprobe_unregister`).
    user_addr: usize,
}

static COMPANIONS: spin::Mutex<Vec<Companion>> = spin::Mutex::new(Vec::new());

/// Forgets the async probes whose poll probes are among `ids`; returns the
/// ids of their drop probes.
pub(crate) fn take_companions(ids: &[u64]) -> Vec<u64> {
    let mut list = COMPANIONS.lock();
    let mut extra = Vec::new();
    list.retain(|c| {
        let hit = ids.contains(&c.poll);
        if hit {
            extra.extend(c.drop);
        }
        !hit
    });
    extra
}

/// Poll probes of async probes registered on `addr` (which may be an
/// `async fn`'s constructor, not the poll function probed).
pub(crate) fn polls_registered_at(addr: usize) -> Vec<u64> {
    COMPANIONS
        .lock()
        .iter()
        .filter(|c| c.user_addr == addr)
        .map(|c| c.poll)
        .collect()
}

/// `Kprobe::at(addr).kind(ProbeType::AsyncFunc)` and the seed form: `pre`
/// runs at each poll's entry, `post` at completion (with the frame of the
/// last poll's return). Not knowing `T`, the result is read as a tag in
/// `a0` with 0 = `Ready`: right for `Poll<()>` and for every `Poll<T>`
/// returned in registers whose `T` has no niche (`Poll<usize>`,
/// `Poll<u64>`, ..). Use `AsyncProbe::<T>` for anything else. The returned
/// handle is the poll function's probe; unregistering it (by handle, id or
/// the address given here) also removes the drop probe.
pub(crate) fn register_kprobe(
    target: Target,
    pre: Option<Pre>,
    post: Option<Post>,
    enabled: bool,
    maxactive: Option<usize>,
) -> Result<ProbeHandle> {
    let mut b = AsyncProbe::<()>::new(target);
    b.decode = Some(Decode::TagInA0);
    b.maxactive = maxactive;
    b.enabled = enabled;
    b.sink = Some(Box::new(move |tf, e| match e.kind {
        AsyncEventKind::PollEnter { .. } => {
            if let Some(pre) = &pre {
                pre.call(tf, &mut [0; 4]);
            }
        }
        AsyncEventKind::Complete(_) => {
            if let Some(post) = &post {
                post.call(tf, &[0; 4]);
            }
        }
        _ => {}
    }));
    let h = b.register()?;
    Ok(h.poll)
}
