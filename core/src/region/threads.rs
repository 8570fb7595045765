//! The region's thread table and its reaper: who holds a shared
//! bulkhead's permits, and giving back the permits (and shared breakers'
//! half-open probes) of processes that died holding them.
//!
//! Every thread that takes or gives back a shared bulkhead's permits owns
//! an index in the region's table (claimed on its first use, kept by its
//! process when it exits, for the process's next new thread). An entry
//! names its owner as `[process start time:41 | pid:22 | ready:1]` and the
//! boot it was made in, so that a process that died is told apart from a
//! later one that got its pid: on Linux the start time is the process's
//! (`/proc/<pid>/stat`, in clock ticks since boot), and a process is alive
//! only while that file shows the same start time and the process is not a
//! zombie. Elsewhere only the pid is known (`kill(pid, 0)`).
//!
//! The reaper runs at most every [`REAP_EVERY`] per region, from a timer
//! thread in each process that holds a shared bulkhead and from any caller
//! that found no permit free. It takes every entry of a dead process for
//! its own process (so that, should it die too, the next reaper finishes
//! the work), settles those indices in every bulkhead of the region
//! ([`tagged::settle`](crate::bulkhead::tagged)), and frees them.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::{Mapping, Region};
use crate::bulkhead::tagged::{self, Tagged, THREADS};
use crate::clock::{Clock, MonotonicClock};
use crate::fork::{self, BackgroundThread, QuietMutex, Signal};
use crate::sync::{
    AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};

/// How often a region is reaped at most, and the reaper thread's tick: a
/// dead process's permits are back within two of these.
pub(crate) const REAP_EVERY: Duration = Duration::from_millis(250);

/// The table block's words: a header line, then two words per entry.
pub(super) mod table {
    /// When the region was last reaped (monotonic ns).
    pub(in crate::region) const LAST_REAP: usize = 0;
    /// The first entry's first word.
    pub(in crate::region) const ENTRIES: usize = 8;
    /// The block's length in words.
    pub(in crate::region) const WORDS: usize = ENTRIES + 2 * super::THREADS;
}

/// This process: its entry word when ready, and its boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ident {
    word: u64,
    boot: u64,
}

const READY: u64 = 1;
const PID_BITS: u32 = 22;
const START_MASK: u64 = (1 << 41) - 1;

impl Ident {
    fn new(pid: u32, start: u64, boot: u64) -> Ident {
        Ident {
            word: (start & START_MASK) << (PID_BITS + 1)
                | ((pid as u64) & ((1 << PID_BITS) - 1)) << 1
                | READY,
            boot,
        }
    }

    fn pid(word: u64) -> u32 {
        ((word >> 1) & ((1 << PID_BITS) - 1)) as u32
    }

    fn start(word: u64) -> u64 {
        word >> (PID_BITS + 1)
    }

    /// This process (computed again in a child of `fork()`).
    pub(crate) fn me() -> Ident {
        static ME: std::sync::OnceLock<QuietMutex<Option<(u64, Ident)>>> =
            std::sync::OnceLock::new();
        let gen = fork::generation();
        let mut me = ME.get_or_init(|| QuietMutex::new(None)).lock();
        match *me {
            Some((g, id)) if g == gen => id,
            _ => {
                let pid = std::process::id();
                let id = Ident::new(pid, start_time(pid).unwrap_or(0), boot());
                *me = Some((gen, id));
                id
            }
        }
    }
}

/// This process as the region names it: its owner word (ready) and boot.
pub(crate) fn this_process() -> (u64, u64) {
    let me = Ident::me();
    (me.word, me.boot)
}

/// Whether the process an owner word (with its boot; not ready while its
/// owner was still writing it) names is alive.
pub(crate) fn process_alive(word: u64, boot: u64) -> bool {
    alive(word, boot, Ident::me().boot, word & READY != 0)
}

/// Has the process's reaper thread tell `watch`'s listeners of transitions
/// made by other processes, every [`REAP_EVERY`], while `watch` lives.
pub(crate) fn watch_breaker(watch: &Arc<crate::breaker::shared::Watch>) {
    let r = reaper();
    {
        let mut w = r.watches.lock();
        w.retain(|w| w.strong_count() > 0);
        w.push(Arc::downgrade(watch));
    }
    r.ensure();
}

/// Starts the process's reaper thread if it is not running here (in a
/// child of `fork()`, the parent's is not).
pub(crate) fn ensure_reaper() {
    reaper().ensure();
}

/// Whether the process an entry names (`word`, made in `boot`) is alive.
fn alive(word: u64, boot_of_entry: u64, my_boot: u64, ready: bool) -> bool {
    if ready && boot_of_entry != my_boot {
        return false; // made before this boot
    }
    let pid = Ident::pid(word);
    if pid == 0 {
        return false;
    }
    #[cfg(target_os = "linux")]
    {
        start_time(pid) == Some(Ident::start(word))
    }
    #[cfg(not(target_os = "linux"))]
    {
        // SAFETY: a plain system call; signal 0 only checks the pid.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
        rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
}

/// A live process's start time in clock ticks since boot (masked to the
/// entry's field), from `/proc/<pid>/stat`; `None` if there is no such
/// process or it is a zombie. Off Linux, 0 for a pid that exists.
fn start_time(pid: u32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name (field 2) is in parentheses and may hold spaces
        // or parentheses itself: fields after the last ')' are plain.
        let rest = &stat[stat.rfind(')')? + 1..];
        let mut fields = rest.split_ascii_whitespace();
        let state = fields.next()?;
        if state == "Z" || state == "X" || state == "x" {
            return None;
        }
        // Field 22 is the start time; `rest` begins at field 3.
        let start: u64 = fields.nth(22 - 4)?.parse().ok()?;
        Some(start & START_MASK)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        Some(0)
    }
}

/// This boot, as a 64-bit hash of Linux's boot id (0 elsewhere).
fn boot() -> u64 {
    #[cfg(target_os = "linux")]
    {
        let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
        // FNV-1a; 0 is kept for "unknown".
        let h = id.trim().bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        });
        h | 1
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// What a process keeps of a mapping's table: the indices its ended
/// threads left, and the spare index its threads share (under this lock)
/// when the table has none free.
#[derive(Debug, Default)]
pub(super) struct Local {
    gen: u64,
    free: Vec<usize>,
    spare: Option<usize>,
}

/// One index a thread owns.
struct Claim {
    /// The table's offset; `map` tells mappings apart (its allocation
    /// lives while this weak reference does, so no other mapping has it).
    table: usize,
    gen: u64,
    index: usize,
    map: Weak<Mapping>,
}

/// A thread's indices, one per mapping's table; given back to the process
/// when the thread ends.
struct Mine(Vec<Claim>);

impl Drop for Mine {
    fn drop(&mut self) {
        // The indices go back now: a late caller on this thread (another
        // thread-local's destructor) must not use the cached one.
        let _ = LAST.try_with(|l| l.set((0, 0, 0, 0)));
        let gen = fork::generation();
        for c in self.0.drain(..) {
            if c.gen != gen {
                continue; // a parent's, in a child of fork()
            }
            if let Some(map) = c.map.upgrade() {
                let mut local = map.threads.lock();
                if local.gen == gen {
                    local.free.push(c.index);
                }
            }
        }
    }
}

std::thread_local! {
    static MINE: RefCell<Mine> = const { RefCell::new(Mine(Vec::new())) };
    /// The thread's last claim looked up, as (mapping id, table offset,
    /// fork generation, index): the common case, one thread on one
    /// table, without walking `MINE`. Valid while the mapping of that id
    /// lives (ids are never reused, and a claim lasts as long as its
    /// thread), and only in that fork generation.
    static LAST: Cell<(u64, usize, u64, usize)> = const { Cell::new((0, 0, 0, 0)) };
}

/// A region's thread table, for the shared bulkheads taken from it.
#[derive(Clone)]
pub(crate) struct Threads {
    region: Region,
    offset: usize,
}

impl std::fmt::Debug for Threads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Threads")
            .field("offset", &self.offset)
            .finish()
    }
}

impl Threads {
    /// The table at `offset` of `region` (its slot made or found). Claims
    /// this process's spare index now, so that a full table is an error
    /// here, not later.
    pub(super) fn new(region: &Region, offset: usize) -> Result<Threads, super::RegionError> {
        let t = Threads {
            region: region.clone(),
            offset,
        };
        reaper().add(&t);
        let mut local = t.local();
        if local.spare.is_none() {
            local.spare = t.claim_new().or_else(|| {
                t.reap(true);
                t.claim_new()
            });
            if local.spare.is_none() {
                return Err(super::RegionError::Full {
                    problem: format!("all {THREADS} thread entries are held by live threads"),
                });
            }
        }
        drop(local);
        Ok(t)
    }

    fn word(&self, w: usize) -> &AtomicU64 {
        self.region.word(self.offset + w * 8)
    }

    fn entry(&self, i: usize) -> (&AtomicU64, &AtomicU64) {
        (
            self.word(table::ENTRIES + 2 * i),
            self.word(table::ENTRIES + 2 * i + 1),
        )
    }

    /// This process's part of the mapping's table, reset in a child of
    /// `fork()` (the parent's indices are the parent's).
    fn local(&self) -> fork::QuietGuard<impl std::ops::DerefMut<Target = Local> + '_> {
        let gen = fork::generation();
        let mut local = self.region.map.threads.lock();
        if local.gen != gen {
            *local = Local {
                gen,
                ..Local::default()
            };
        }
        local
    }

    /// Runs `f` with the calling thread's index (claimed on its first
    /// call); when the table has no index free, with the process's spare
    /// index, under a process lock.
    #[inline]
    pub(crate) fn with_index<R>(&self, f: impl FnOnce(usize) -> R) -> R {
        // The region was mapped: the handlers are registered.
        let gen = fork::generation_known();
        let id = self.region.map.id;
        if let Ok((i, o, g, index)) = LAST.try_with(Cell::get) {
            if i == id && o == self.offset && g == gen {
                return f(index);
            }
        }
        self.with_index_slow(gen, f)
    }

    #[inline(never)]
    fn with_index_slow<R>(&self, gen: u64, f: impl FnOnce(usize) -> R) -> R {
        let (key, map) = (self.offset, Arc::as_ptr(&self.region.map));
        let found = MINE
            .try_with(|m| {
                m.borrow()
                    .0
                    .iter()
                    .find(|c| c.table == key && c.gen == gen && std::ptr::eq(c.map.as_ptr(), map))
                    .map(|c| c.index)
            })
            .ok()
            .flatten();
        match found {
            Some(i) => {
                let _ = LAST.try_with(|l| l.set((self.region.map.id, key, gen, i)));
                f(i)
            }
            None => self.with_new_index(key, gen, f),
        }
    }

    #[cold]
    fn with_new_index<R>(&self, key: usize, gen: u64, f: impl FnOnce(usize) -> R) -> R {
        reaper().ensure();
        let claimed = {
            let reused = self.local().free.pop();
            reused.or_else(|| self.claim_new())
        };
        if let Some(index) = claimed {
            let kept = MINE.try_with(|m| {
                let mut m = m.borrow_mut();
                m.0.retain(|c| c.gen == gen && c.map.strong_count() > 0);
                m.0.push(Claim {
                    table: key,
                    gen,
                    index,
                    map: Arc::downgrade(&self.region.map),
                })
            });
            if kept.is_ok() {
                let _ = LAST.try_with(|l| l.set((self.region.map.id, key, gen, index)));
                return f(index);
            }
            // The thread is ending: its index goes back at once.
            self.local().free.push(index);
        }
        let mut local = self.local();
        let spare = match local.spare {
            Some(s) => s,
            None => {
                // In a child of fork(): claim the child's own spare.
                let s = self.claim_new().expect("the table has no free entry");
                local.spare = Some(s);
                s
            }
        };
        f(spare)
    }

    /// Claims a free entry for this process.
    fn claim_new(&self) -> Option<usize> {
        let me = Ident::me();
        (0..THREADS).find(|&i| {
            let (id, boot) = self.entry(i);
            if id.load(Relaxed) != 0 {
                return false;
            }
            // Relaxed: claiming only; the entry's owner is published by the
            // Release store below.
            if id
                .compare_exchange(0, me.word & !READY, Relaxed, Relaxed)
                .is_err()
            {
                return false;
            }
            boot.store(me.boot, Relaxed);
            // Release: pairs with the reaper's Acquire load; the boot word
            // is written before the entry reads as ready.
            id.store(me.word, Release);
            true
        })
    }

    /// Gives back the half-open probes dead processes hold in the region's
    /// shared breakers; how many.
    fn reap_probes(&self, verdicts: &mut HashMap<(u64, u64, bool), bool>, my_boot: u64) -> i64 {
        let mut back = 0;
        for b in self.region.breaker_blocks() {
            let mut dead = |w: u64, boot: u64| {
                let ready = w & READY != 0;
                !*verdicts
                    .entry((w | READY, boot, ready))
                    .or_insert_with(|| alive(w, boot, my_boot, ready))
            };
            back += crate::breaker::shared::reap_probes(&b.state, b.probes.get(), &mut dead) as i64;
        }
        back
    }

    /// Reaps the region if it was not reaped in the last [`REAP_EVERY`]
    /// (or at once, `force`): settles and frees the entries of dead
    /// processes, and gives back the probes of dead processes in its
    /// breakers. Returns the permits and probes given back.
    pub(crate) fn reap(&self, force: bool) -> i64 {
        let now = MonotonicClock.now();
        let last = self.word(table::LAST_REAP);
        let was = last.load(Relaxed);
        let due = now.saturating_sub(was) >= REAP_EVERY.as_nanos() as u64;
        // Relaxed: the timestamp only spaces reaps out; entries are
        // claimed with their own compare-and-swap.
        if !force && (!due || last.compare_exchange(was, now, Relaxed, Relaxed).is_err()) {
            return 0;
        }
        let me = Ident::me();
        let mut verdicts: HashMap<(u64, u64, bool), bool> = HashMap::new();
        let mut dead = Vec::new();
        for i in 0..THREADS {
            let (id, boot) = self.entry(i);
            // Acquire: pairs with `claim_new`'s Release store (the boot
            // word is the entry's).
            let w = id.load(Acquire);
            if w == 0 || w | READY == me.word {
                continue;
            }
            let ready = w & READY != 0;
            let b = boot.load(Relaxed);
            let is_alive = *verdicts
                .entry((w | READY, b, ready))
                .or_insert_with(|| alive(w, b, me.boot, ready));
            if is_alive {
                continue;
            }
            // The entry becomes this process's, not ready while its boot
            // word is rewritten, so that no other reaper takes it meanwhile.
            // Relaxed: the compare-and-swap decides who settles it.
            if id
                .compare_exchange(w, me.word & !READY, Relaxed, Relaxed)
                .is_err()
            {
                continue;
            }
            boot.store(me.boot, Relaxed);
            // Release: as in `claim_new`.
            id.store(me.word, Release);
            dead.push(i);
        }
        let mut back = self.reap_probes(&mut verdicts, me.boot);
        if dead.is_empty() {
            return back;
        }
        for b in self.region.bulkhead_blocks() {
            let ledger = b.ledger.get();
            let t = Tagged {
                word: &b.state.word,
                ledger,
            };
            let n = tagged::settle(&t, &dead);
            if n > 0 {
                crate::bulkhead::shared::wake_all(&b.wake.word);
            }
            back += n;
        }
        for &i in &dead {
            // Release: the settled ledger entries before the entry is free.
            self.entry(i).0.store(0, Release);
        }
        back
    }
}

/// The process's reaper thread: reaps every region with a shared bulkhead
/// or breaker every [`REAP_EVERY`], and tells the listeners of this
/// process's shared breakers of transitions made elsewhere.
struct Reaper {
    tables: QuietMutex<Vec<(Weak<Mapping>, usize)>>,
    /// Shared breakers whose listeners hear of other processes'
    /// transitions from this thread.
    watches: QuietMutex<Vec<Weak<crate::breaker::shared::Watch>>>,
    thread: BackgroundThread,
}

fn reaper() -> &'static Reaper {
    static REAPER: std::sync::OnceLock<Reaper> = std::sync::OnceLock::new();
    REAPER.get_or_init(|| Reaper {
        tables: QuietMutex::new(Vec::new()),
        watches: QuietMutex::new(Vec::new()),
        thread: BackgroundThread::new(),
    })
}

impl Reaper {
    fn add(&'static self, t: &Threads) {
        {
            let mut tables = self.tables.lock();
            tables.retain(|(m, _)| m.strong_count() > 0);
            let known = tables.iter().any(|(m, o)| {
                *o == t.offset && std::ptr::eq(m.as_ptr(), Arc::as_ptr(&t.region.map))
            });
            if !known {
                tables.push((Arc::downgrade(&t.region.map), t.offset));
            }
        }
        self.ensure();
    }

    /// Starts the thread in this process if it is not running here.
    fn ensure(&'static self) {
        self.thread
            .ensure(|signal| crate::sync::spawn_own("failwell-reaper", move || self.run(&signal)));
    }

    fn run(&self, signal: &Signal) {
        loop {
            {
                let _q = fork::quiet();
                let tables: Vec<Threads> = self
                    .tables
                    .lock()
                    .iter()
                    .filter_map(|(m, offset)| {
                        Some(Threads {
                            region: Region { map: m.upgrade()? },
                            offset: *offset,
                        })
                    })
                    .collect();
                for t in &tables {
                    t.reap(false);
                }
            }
            // Outside the quiet section: listeners are the user's code.
            let watches: Vec<_> = self
                .watches
                .lock()
                .iter()
                .filter_map(Weak::upgrade)
                .collect();
            for w in watches {
                w.catch_up();
            }
            if signal.sleep_until(Instant::now().checked_add(REAP_EVERY)) {
                return;
            }
        }
    }
}

#[cfg(test)]
impl Threads {
    /// Writes a free entry as a process of `ident` in `boot` left it; its
    /// index.
    pub(super) fn plant(&self, ident: u64, boot: u64) -> usize {
        let i = (0..THREADS)
            .rev()
            .find(|&i| self.entry(i).0.load(Relaxed) == 0)
            .expect("a free entry");
        self.entry(i).1.store(boot, Relaxed);
        self.entry(i).0.store(ident, Relaxed);
        i
    }

    /// Entry `i`'s owner word.
    pub(super) fn owner(&self, i: usize) -> u64 {
        self.entry(i).0.load(Relaxed)
    }
}

/// This boot, as entries hold it.
#[cfg(test)]
pub(super) fn boot_for_tests() -> u64 {
    boot()
}

#[cfg(test)]
pub(super) fn ident_for_tests(pid: u32, start: u64, boot: u64) -> u64 {
    Ident::new(pid, start, boot).word
}

#[cfg(test)]
pub(super) fn start_time_for_tests(pid: u32) -> Option<u64> {
    start_time(pid)
}
