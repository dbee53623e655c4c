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
pub fn tune_for_daemon() -> bool {
    // Fixed thresholds turn off glibc's dynamic ones: after the first large block (a status
    // reply for 1000 programs) was freed, glibc raised the mmap threshold to its size and the
    // trim threshold to twice that, so every later reply grew the heap and kept ~0.6 MB of it.
    const MMAP_THRESHOLD: i32 = 128 * 1024;
    const TRIM_THRESHOLD: i32 = 256 * 1024;
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1) == 1
            && libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() -> bool {
    false
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_for_daemon() -> bool {
    false
}
