/// jemalloc rather than glibc's malloc (docs/architecture.md, "Dependencies";
/// measured in docs/performance.md, "Allocator: jemalloc"): request bodies
/// are allocated on the receiving thread and freed on whichever thread
/// sends them or writes them to the queue; glibc serves such frees under an
/// arena lock, jemalloc's per-thread caches without one.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read when it starts (the `_RJEM_MALLOC_CONF`
/// environment variable wins; docs/performance.md, "Allocator: jemalloc"):
/// - freed pages go back to the kernel after about a tenth of a second,
///   by jemalloc's own background thread, instead of ten (its default):
///   the memory 16,384 connections' buffers held is given back while they
///   sit idle (11 KiB per idle connection with the defaults, 2.2 KiB with
///   these), and the next 4 MiB body still reuses the pages of the last
///   one without faulting them in again;
/// - one arena, so that a large buffer freed by one thread serves the next
///   one allocated on any other: with an arena per thread, the gzip bombs
///   of `tests/e2e/test_memory_budget.py` left 220-280 MiB resident under
///   a 128 MiB request memory budget (now ~155). Small allocations, the
///   hot path, come from per-thread caches either way.
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &[u8; 69] =
    b"background_thread:true,narenas:1,dirty_decay_ms:100,muzzy_decay_ms:0\0";

fn main() -> std::process::ExitCode {
    pyroscope_relay::cli::main()
}
