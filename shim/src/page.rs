//! A syscall page: one thread's 64 entries, in private anonymous memory, with its
//! doorbell bits and its statistics.
//!
//! The entries fill exactly one 4 KiB page. The owner's per-syscall counters follow in the
//! same mapping; only the owner writes them, so they never bounce between cores.

use std::io;
use std::ptr::NonNull;

use crossbeam_utils::CachePadded;

use crate::entry::Entry;
use crate::notify::WakerSlot;
use crate::primitive::{AtomicU32, AtomicU64, Ordering};

/// Entries in one syscall page.
pub const ENTRIES_PER_PAGE: usize = if cfg!(loom) { 2 } else { 64 };

/// Syscall numbers that get their own counters; larger numbers share the last row.
pub const COUNTED_NRS: usize = 512;

/// One syscall number's counters, written only by the page's owner.
#[repr(C)]
#[derive(Default)]
pub struct Counters {
    /// Calls made.
    pub calls: std::sync::atomic::AtomicU64,
    /// Calls that ran on a service thread or worker.
    pub delegated: std::sync::atomic::AtomicU64,
    /// Calls that ran on the calling thread.
    pub direct: std::sync::atomic::AtomicU64,
    /// Calls that returned an error.
    pub errors: std::sync::atomic::AtomicU64,
}

impl Counters {
    /// Adds one call. Single writer, so a load and a store are enough (no locked RMW).
    #[inline]
    pub(crate) fn record(&self, delegated: bool, ret: i64) {
        use std::sync::atomic::Ordering::Relaxed;
        let bump = |c: &std::sync::atomic::AtomicU64| c.store(c.load(Relaxed) + 1, Relaxed);
        bump(&self.calls);
        bump(if delegated { &self.delegated } else { &self.direct });
        if (-4095..0).contains(&ret) {
            bump(&self.errors);
        }
    }

    /// Adds one call from any thread (the asynchronous path has many writers per page).
    #[inline]
    pub(crate) fn record_shared(&self, delegated: bool, ret: i64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.calls.fetch_add(1, Relaxed);
        (if delegated { &self.delegated } else { &self.direct }).fetch_add(1, Relaxed);
        if (-4095..0).contains(&ret) {
            self.errors.fetch_add(1, Relaxed);
        }
    }
}

/// What one page's mapping holds: everything a thread's page needs lives in the mapping,
/// so giving a thread a page never calls the allocator (the LD_PRELOAD library's first
/// interposed call on a thread must not).
///
/// Aligned to 4 KiB, with the entries first: the page an entry belongs to is its address
/// rounded down to 4 KiB, which is how a completer finds an entry's waker slot.
#[repr(C, align(4096))]
struct PageMemory {
    entries: [Entry; ENTRIES_PER_PAGE],
    /// The posted bits and the service thread watching them, on a line of their own.
    pending: CachePadded<Pending>,
    counters: [Counters; COUNTED_NRS],
    /// The wakers of asynchronous calls, one slot per entry (see [`crate::notify`]).
    wakers: [WakerSlot; ENTRIES_PER_PAGE],
}

const PAGE_ALIGN: usize = 4096;

/// A page's posted entries, and which service thread, if any, watches them.
///
/// `bits` holds one bit per entry posted and not yet taken by a service thread. A poster
/// sets its bit after the entry's own `Release` store of SUBMITTED; a service thread takes
/// all of them with an `Acquire` swap, so it sees every entry it takes as SUBMITTED.
///
/// `watcher` is non-zero while a service thread polls `bits` itself (its id). A poster
/// then need not ring the doorbell: the single-call round trip saves the doorbell's two
/// lines, each a cache-line transfer each way (~65 ns here). The two words share a line,
/// so the poster reads `watcher` from the line its `fetch_or` just brought over.
///
/// The handshake: the poster sets its bit (`fetch_or`, AcqRel) and then reads `watcher`; a
/// service thread that stops watching writes `watcher = 0` and then reads `bits` with a
/// read-modify-write that adds nothing (`fetch_or(0)`, AcqRel). The two RMWs on `bits`
/// are ordered by its modification order. If the poster's comes first, the service
/// thread's reads it: it sees the bit and rings the doorbell on the poster's behalf. If
/// the service thread's comes first, the poster's reads from it, so the service thread's
/// `watcher = 0` happens before the poster reads `watcher`: the poster sees 0 and rings
/// itself. (Both may; a spare doorbell bit only costs an empty look.) So the poster's read
/// of `watcher` may be Relaxed: a plain load, no cost beyond the `lock or` it did anyway. So while `bits` is non-zero the page is marked in the doorbell,
/// or watched, or being walked by a service thread that will take the bits: posted work
/// is never stranded. `loom_watched_page_never_strands_a_post` checks it.
#[repr(C)]
struct Pending {
    bits: AtomicU64,
    watcher: AtomicU32,
}

/// Completer: wakes the task waiting for `entry`, an entry posted with NOTIFY.
pub(crate) fn notify(entry: &Entry) {
    let addr = entry as *const Entry as usize;
    let base = addr & !(PAGE_ALIGN - 1);
    let slot = (addr - base) / std::mem::size_of::<Entry>();
    // SAFETY: entries exist only inside a PageMemory (Entry has no public constructor
    // outside loom models, and the shim makes them nowhere else), whose alignment puts
    // the entries array at the start of a 4 KiB-aligned block; so `base` is that
    // PageMemory, mapped for as long as `entry` is borrowed, and `slot` indexes its
    // entries.
    let mem = unsafe { &*(base as *const PageMemory) };
    debug_assert!(std::ptr::eq(&mem.entries[slot], entry));
    mem.wakers[slot].wake();
}

/// A syscall page: a handle on its mapping (entries, doorbell bits, counters).
///
/// One pointer wide (`repr(transparent)`), so that a table of page pointers can lend out
/// its slots as pages (`crate::shared`'s page table, through [`SyscallPage::into_raw`] and
/// [`SyscallPage::view`]).
#[repr(transparent)]
pub struct SyscallPage {
    mem: NonNull<PageMemory>,
}

// SAFETY: the mapping is only reached through atomics; see `entry` for the protocol.
unsafe impl Send for SyscallPage {}
// SAFETY: as above: every shared field is an atomic.
unsafe impl Sync for SyscallPage {}

impl SyscallPage {
    /// Maps a new page of FREE entries and zeroed counters.
    pub fn new() -> io::Result<Self> {
        Ok(SyscallPage { mem: Self::map()? })
    }

    /// The page as one pointer, for a table slot; [`SyscallPage::from_raw`] takes it back.
    pub(crate) fn into_raw(self) -> *mut () {
        std::mem::ManuallyDrop::new(self).mem.as_ptr().cast()
    }

    /// The page behind a pointer from [`SyscallPage::into_raw`].
    ///
    /// # Safety
    /// `raw` came from `into_raw`, and no other `SyscallPage` or view owns it any more.
    pub(crate) unsafe fn from_raw(raw: *mut ()) -> Self {
        // SAFETY: the caller's contract: `raw` is a live page's non-null mapping.
        SyscallPage {
            mem: unsafe { NonNull::new_unchecked(raw.cast()) },
        }
    }

    /// The page whose pointer (from [`SyscallPage::into_raw`]) `slot` holds, borrowed for
    /// as long as the slot is.
    ///
    /// # Safety
    /// The caller loaded a non-null value from `slot` with an ordering that makes the
    /// store of that value happen before this call, and `slot` is not written again while
    /// the returned reference lives (so reading it as a plain pointer races with nothing).
    pub(crate) unsafe fn view(slot: &std::sync::atomic::AtomicPtr<()>) -> &SyscallPage {
        // SAFETY: `SyscallPage` is `repr(transparent)` over `NonNull<PageMemory>`, which has
        // the size, alignment and valid values of the non-null `*mut ()` in the slot
        // (`AtomicPtr<()>` has the layout of `*mut ()`); the caller's contract makes the
        // plain read of it ordered after the slot's one store, and no later store exists.
        unsafe { &*(slot as *const std::sync::atomic::AtomicPtr<()>).cast::<SyscallPage>() }
    }

    #[cfg(not(loom))]
    fn map() -> io::Result<NonNull<PageMemory>> {
        // Zeroed anonymous memory is a valid PageMemory: every field is an atomic whose
        // zero is FREE or a count of 0, or a waker slot whose zero word means empty.
        Ok(crate::sys::map_anonymous(std::mem::size_of::<PageMemory>())?.cast())
    }

    #[cfg(loom)]
    fn map() -> io::Result<NonNull<PageMemory>> {
        // Field by field on the heap: the whole page is too big for a loom thread's stack.
        let mut mem = Box::<PageMemory>::new_uninit();
        let p = mem.as_mut_ptr();
        // SAFETY: every field of `*p` is written exactly once below, through raw pointers
        // into the allocation, before `assume_init`.
        unsafe {
            for i in 0..ENTRIES_PER_PAGE {
                std::ptr::addr_of_mut!((*p).entries[i]).write(Entry::new());
                std::ptr::addr_of_mut!((*p).wakers[i]).write(WakerSlot::default());
            }
            std::ptr::addr_of_mut!((*p).pending).write(CachePadded::new(Pending {
                bits: AtomicU64::new(0),
                watcher: AtomicU32::new(0),
            }));
            for i in 0..COUNTED_NRS {
                std::ptr::addr_of_mut!((*p).counters[i]).write(Counters::default());
            }
            Ok(NonNull::from(Box::leak(mem.assume_init())))
        }
    }

    /// Entry `i` (`i < ENTRIES_PER_PAGE`).
    #[inline]
    pub fn entry(&self, i: usize) -> &Entry {
        // SAFETY: `mem` is mapped for as long as `self` lives.
        unsafe { &self.mem.as_ref().entries[i] }
    }

    /// The waker slot of entry `i`.
    #[inline]
    pub(crate) fn waker(&self, i: usize) -> &WakerSlot {
        // SAFETY: as in `entry`.
        unsafe { &self.mem.as_ref().wakers[i] }
    }

    /// The counters of syscall `nr` (numbers past the table share the last row).
    #[inline]
    pub fn counters(&self, nr: u64) -> &Counters {
        let row = (nr as usize).min(COUNTED_NRS - 1);
        // SAFETY: as in `entry`.
        unsafe { &self.mem.as_ref().counters[row] }
    }

    /// All counters, indexed by syscall number.
    pub fn all_counters(&self) -> &[Counters; COUNTED_NRS] {
        // SAFETY: as in `entry`.
        unsafe { &self.mem.as_ref().counters }
    }

    /// Poster: marks `bits` as posted. True if the caller must ring the runtime's doorbell
    /// for this page: it had nothing pending before and no service thread watches it
    /// (see [`Pending`] for the handshake).
    #[inline]
    pub(crate) fn mark_pending(&self, bits: u64) -> bool {
        let line = self.pending_line();
        line.bits.fetch_or(bits, Ordering::AcqRel) == 0 && line.watcher.load(Ordering::Relaxed) == 0
    }

    #[inline]
    fn pending_line(&self) -> &Pending {
        // SAFETY: as in `entry`.
        unsafe { &self.mem.as_ref().pending }
    }

    #[inline]
    fn pending(&self) -> &AtomicU64 {
        &self.pending_line().bits
    }

    /// Service thread `id` (non-zero): polls this page's bits itself from now on, so that
    /// posters need not ring the doorbell. False if another service thread watches it.
    pub fn watch(&self, id: u32) -> bool {
        debug_assert_ne!(id, 0);
        self.pending_line()
            .watcher
            .compare_exchange(0, id, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Service thread: stops watching this page (which it watches). True if bits are
    /// pending that posters may have left to the watcher: the caller must ring the doorbell
    /// for this page (or take them itself).
    pub fn unwatch(&self) -> bool {
        let line = self.pending_line();
        line.watcher.store(0, Ordering::Relaxed);
        line.bits.fetch_or(0, Ordering::AcqRel) != 0
    }

    /// Hints the caches that a service thread is about to claim the entries in `bits`:
    /// fetches their lines for writing, all at once. Claiming one entry after another
    /// would wait for each line's transfer in turn (a claim is a locked instruction, which
    /// no later load may pass), ~65 ns each here.
    #[inline]
    pub fn prefetch(&self, mut bits: u64) {
        while bits != 0 {
            let slot = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            crate::primitive::prefetch_write(self.entry(slot));
        }
    }

    /// The posted bits, without taking them (for statistics and benches).
    pub fn pending_bits(&self) -> u64 {
        self.pending().load(Ordering::Relaxed)
    }

    /// Service thread: takes every posted bit.
    #[inline]
    pub fn take_pending(&self) -> u64 {
        let pending = self.pending();
        if pending.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        pending.swap(0, Ordering::Acquire)
    }
}

impl Drop for SyscallPage {
    fn drop(&mut self) {
        #[cfg(not(loom))]
        // SAFETY: the mapping came from `map_anonymous` with this size, and the page is
        // being dropped, so nothing refers to it any more.
        unsafe {
            crate::sys::unmap(self.mem.cast(), std::mem::size_of::<PageMemory>())
        };
        #[cfg(loom)]
        // SAFETY: the memory came from `Box::leak` in `map`.
        drop(unsafe { Box::from_raw(self.mem.as_ptr()) });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn entries_fill_one_page() {
        assert_eq!(std::mem::size_of::<[Entry; ENTRIES_PER_PAGE]>(), 4096);
        assert_eq!(std::mem::offset_of!(PageMemory, pending), 4096);
        assert_eq!(std::mem::offset_of!(PageMemory, counters), 4096 + 128);
    }

    #[test]
    fn page_is_private_anonymous_memory() {
        let page = SyscallPage::new().unwrap();
        let addr = page.entry(0) as *const Entry as usize;
        assert_eq!(addr % 4096, 0, "entries start on a page boundary");
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let line = maps
            .lines()
            .find(|l| {
                let range = l.split_whitespace().next().unwrap();
                let (lo, hi) = range.split_once('-').unwrap();
                let (lo, hi) = (
                    usize::from_str_radix(lo, 16).unwrap(),
                    usize::from_str_radix(hi, 16).unwrap(),
                );
                (lo..hi).contains(&addr)
            })
            .expect("the page is mapped");
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&fields[1][3..4], "p", "private mapping: {line}");
        assert_eq!(fields[4], "0", "no inode behind it: {line}");
        assert!(
            fields.len() < 6 || !fields[5].starts_with('/'),
            "no file behind it: {line}"
        );
    }
}
