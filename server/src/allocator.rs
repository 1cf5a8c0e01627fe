//! Gives freed memory back to the system after a burst.
//!
//! glibc's allocator keeps the pages of freed small blocks in its arenas for
//! reuse and returns only the top of each heap by itself. After a burst (a
//! hundred thousand users and rooms, all forgotten by the engine's sweep),
//! the process stayed at most of its peak: 100 MB resident against 19 MB at
//! the start and 123 MB at the peak (`bounds.rs`, debug build). Asking glibc
//! for those pages with `malloc_trim(0)` brings it back near the start; see
//! docs/security.md for the figures. No crate wraps this one call, so it is
//! here, the only `unsafe` in the workspace.

/// Returns the free pages of every arena to the system. It walks and locks
/// each arena in turn, so call it only after a large release (the memory
/// engine's sweep calls it when it shrinks a table), not per request.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code, reason = "malloc_trim has no safe wrapper; see the module doc")]
pub(crate) fn release_free_pages() {
    // SAFETY: `malloc_trim` takes no pointer and touches only the allocator's
    // own free lists, under the allocator's locks (MT-Safe per its manual).
    let released = unsafe { libc::malloc_trim(0) == 1 };
    tracing::debug!(released, "asked the allocator to return its free pages");
}

/// Other allocators (musl, macOS, Windows) return memory by themselves or
/// have no such call.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn release_free_pages() {}
