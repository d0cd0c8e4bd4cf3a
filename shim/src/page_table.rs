//! A runtime's pages by index: a table of page pointers that only the kernel backs as it
//! fills.
//!
//! Every runtime has one, and most runtimes hand out a few pages: a forked child builds
//! a runtime before its first call (many never make one), and a short program has a
//! thread or two. A table of `MAX_PAGES` pointers is 32 KiB; kept in an anonymous mapping
//! of its own, whose zero bytes mean "no page", a runtime with up to 512 pages touches one
//! 4 KiB block of it, and building one writes nothing. (The table it replaces, 4,096
//! `OnceLock`s written up front, was 64 KiB of page faults: most of the time a forked
//! child's runtime took to build.)

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::doorbell::MAX_PAGES;
use crate::page::SyscallPage;

/// `MAX_PAGES` slots, each null or a page from [`SyscallPage::into_raw`].
///
/// Orderings: a slot is written once while the table lives, by [`PageTable::insert`],
/// with Release, after its page was mapped (and zeroed by the kernel); [`PageTable::get`]
/// loads it with Acquire, so whoever sees the pointer sees the page's FREE entries. The
/// pages are freed only by `Drop`, which has the table to itself.
pub(crate) struct PageTable {
    slots: NonNull<AtomicPtr<()>>,
}

// SAFETY: the slots are atomics, and the pages they point to are `Sync` and `Send`
// (`SyscallPage`): sharing or moving the table shares or moves nothing else.
unsafe impl Send for PageTable {}
// SAFETY: as above.
unsafe impl Sync for PageTable {}

const TABLE_BYTES: usize = MAX_PAGES * std::mem::size_of::<AtomicPtr<()>>();

impl PageTable {
    /// An empty table: one mapping, not yet backed.
    pub(crate) fn new() -> io::Result<Self> {
        // Zeroed anonymous memory is `MAX_PAGES` valid null `AtomicPtr`s.
        Ok(PageTable {
            slots: crate::sys::map_anonymous(TABLE_BYTES)?.cast(),
        })
    }

    fn slot(&self, index: usize) -> Option<&AtomicPtr<()>> {
        // SAFETY: the mapping holds `MAX_PAGES` slots and lives as long as `self`.
        (index < MAX_PAGES).then(|| unsafe { &*self.slots.as_ptr().add(index) })
    }

    /// Page `index`, if one was inserted there.
    #[inline]
    pub(crate) fn get(&self, index: usize) -> Option<&SyscallPage> {
        let slot = self.slot(index)?;
        if slot.load(Ordering::Acquire).is_null() {
            return None;
        }
        // SAFETY: a non-null value loaded with Acquire, stored once with Release by
        // `insert`; the slot is not written again until `Drop`, which needs `&mut self`
        // and so waits for this borrow.
        Some(unsafe { SyscallPage::view(slot) })
    }

    /// Puts `page` at `index`, a slot that is still empty; hands `page` back if it is not
    /// (or if `index` is out of range). One writer at a time (the caller's lock).
    pub(crate) fn insert(&self, index: usize, page: SyscallPage) -> Result<&SyscallPage, SyscallPage> {
        let Some(slot) = self.slot(index) else {
            return Err(page);
        };
        if !slot.load(Ordering::Relaxed).is_null() {
            return Err(page);
        }
        slot.store(page.into_raw(), Ordering::Release);
        // SAFETY: just stored, non-null, by this thread; never written again (above).
        Ok(unsafe { SyscallPage::view(slot) })
    }
}

impl Drop for PageTable {
    fn drop(&mut self) {
        for index in 0..MAX_PAGES {
            let Some(slot) = self.slot(index) else { break };
            let raw = slot.load(Ordering::Relaxed);
            if raw.is_null() {
                // Pages are inserted at the lowest free index, so the rest are empty.
                break;
            }
            // SAFETY: `raw` came from `into_raw` in `insert`; with `&mut self`, no view of
            // it lives, and the slot is dropped with the table.
            drop(unsafe { SyscallPage::from_raw(raw) });
        }
        // SAFETY: the mapping came from `map_anonymous(TABLE_BYTES)`, and nothing refers
        // to it any more.
        unsafe { crate::sys::unmap(self.slots.cast(), TABLE_BYTES) };
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_empty_until_its_page_is_inserted_and_keeps_its_first_page() {
        let table = PageTable::new().expect("map the table");
        assert!(table.get(0).is_none());
        assert!(table.get(MAX_PAGES).is_none());
        let Ok(first) = table.insert(0, SyscallPage::new().expect("map a page")) else {
            panic!("slot 0 was empty");
        };
        let first_entry = first.entry(0) as *const _;
        let again = table.get(0).expect("inserted");
        assert!(std::ptr::eq(again.entry(0), first_entry));
        assert!(table.insert(0, SyscallPage::new().expect("map a page")).is_err());
        assert!(table
            .insert(MAX_PAGES, SyscallPage::new().expect("map a page"))
            .is_err());
        assert!(table.get(1).is_none());
        assert!(table.insert(1, SyscallPage::new().expect("map a page")).is_ok());
        assert!(table.get(1).is_some());
    }
}
