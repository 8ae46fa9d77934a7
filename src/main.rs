fn main() -> std::process::ExitCode {
    tune_malloc();
    pyroscope_relay::cli::main()
}

/// glibc's defaults suit request bodies badly, both ways (measured in
/// docs/performance.md, "Memory: what was changed"):
/// - each worker thread gets its own arena, and a freed 4 MiB body in one
///   arena cannot serve the next body allocated on another thread, so
///   every arena keeps its own high-water mark: with 64 x 4 MiB bodies in
///   flight the peak RSS was ~1.6 x the bodies;
/// - mapping each large body on its own (a low mmap threshold) fixes the
///   peak but faults in and zeroes 4 MiB per request: 4 MiB bodies went
///   at ~0.57 x the rate.
///
/// One arena, and large buffers from that arena up to 32 MiB, keep both:
/// freed bodies are reused by whichever thread needs one next. Small
/// allocations, the hot path, are served from glibc's per-thread caches
/// either way. `MALLOC_ARENA_MAX` or `MALLOC_MMAP_THRESHOLD_` in the
/// environment win over these settings.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    let unset = |name: &str| std::env::var_os(name).is_none();
    // SAFETY: mallopt only sets allocator parameters; it runs before any
    // other thread exists.
    unsafe {
        if unset("MALLOC_ARENA_MAX") {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
        if unset("MALLOC_MMAP_THRESHOLD_") {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 * 1024 * 1024);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}
