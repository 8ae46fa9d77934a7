/// jemalloc rather than glibc's malloc (docs/architecture.md, "Dependencies";
/// measured in docs/performance.md, "Allocator: jemalloc"): request bodies
/// are allocated on the receiving thread and freed on whichever thread
/// sends them or writes them to the queue; glibc serves such frees under an
/// arena lock, jemalloc's per-thread caches without one.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read when it starts (the `_RJEM_MALLOC_CONF`
/// environment variable wins). Freed pages go back to the kernel after
/// about a second, by jemalloc's own background thread, instead of ten
/// (its default): the memory that 16,384 connections' buffers held is
/// given back while they sit idle (11 KiB per idle connection with the
/// defaults, 2.4 KiB with these), and a second is still long enough for
/// the next 4 MiB body to reuse the pages of the last one without faulting
/// them in again.
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &[u8; 60] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

fn main() -> std::process::ExitCode {
    pyroscope_relay::cli::main()
}
