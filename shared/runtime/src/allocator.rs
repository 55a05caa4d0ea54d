//! The memory allocator of every Tierline binary: mimalloc.
//!
//! A tier lookup allocates a few dozen small objects (the decoded record, the view, the response
//! message) on whichever worker thread runs it. glibc's allocator spent about a sixth of a warm
//! lookup's CPU in `malloc`/`free` and their arena locks under 64 concurrent callers (measured with
//! `perf` on the `lookups` benchmark, docs/BENCHMARKS.md); mimalloc's thread-local free lists
//! avoid both. Every binary declares it with [`crate::service_allocator!`], so the services, the
//! all-in-one `tierline dev` and the benchmarks that run a service in-process use the same one.

pub use mimalloc::MiMalloc;

/// Declares mimalloc as the global allocator of the binary it is used in.
#[macro_export]
macro_rules! service_allocator {
    () => {
        #[global_allocator]
        static GLOBAL_ALLOCATOR: $crate::allocator::MiMalloc = $crate::allocator::MiMalloc;
    };
}
