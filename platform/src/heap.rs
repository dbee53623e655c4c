//! The C library's heap: glibc keeps freed memory and gives each thread its own arena unless
//! told otherwise. These depend on the C library, not the OS: glibc is only found on Linux
//! among svc's targets, and every other C library here needs neither call.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_free_memory() -> bool {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe { libc::malloc_trim(0) };
    true
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn use_one_malloc_arena() -> bool {
    // SAFETY: mallopt only sets an allocator parameter; called before any other thread exists.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() -> bool {
    false
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn use_one_malloc_arena() -> bool {
    false
}
