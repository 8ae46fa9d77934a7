fn main() -> std::process::ExitCode {
    pin_malloc_mmap_threshold();
    pyroscope_relay::cli::main()
}

/// glibc raises its mmap threshold (up to 32 MiB) each time a large
/// mmapped block is freed, after which request bodies (1 to 8 MiB) come
/// from the heap arenas, whose freed space is mostly not returned: with
/// 64 x 4 MiB bodies in flight the peak RSS was ~1.5 x the bodies instead
/// of ~1.1 x. A fixed 1 MiB threshold keeps buffers of 1 MiB and more in
/// their own mappings, unmapped on free. Small allocations, the hot path,
/// are unaffected. See docs/performance.md, "Memory: what was changed".
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn pin_malloc_mmap_threshold() {
    // SAFETY: mallopt only sets an allocator parameter; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn pin_malloc_mmap_threshold() {}
