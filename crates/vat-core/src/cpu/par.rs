//! Threads for the CPU kernels.
//!
//! Work is split into chunks whose size never depends on the thread count, and partial sums are
//! added in chunk order, so a run gives the same bits on 1, 2 or 16 threads. gemm keeps that
//! property too: it parallelises over output tiles and runs the k loop the same way on any
//! thread count.
//!
//! Natively each trainer owns a rayon pool of `threads` workers. In a threaded wasm module the
//! pool is the global one that wasm-bindgen-rayon starts (`initThreadPool(n)`), so there
//! `threads` must match the pool the page created.

/// A raw pointer that may be shared across threads. Each worker writes only its own
/// chunk's part of the buffer, which [`Disjoint::slice`] callers guarantee.
pub struct Disjoint<T> {
    ptr: *mut T,
    len: usize,
}

unsafe impl<T: Send> Send for Disjoint<T> {}
unsafe impl<T: Send> Sync for Disjoint<T> {}

impl<T> Disjoint<T> {
    pub fn new(buf: &mut [T]) -> Self {
        Self {
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
        }
    }

    /// The part `range` of the buffer.
    ///
    /// # Safety
    /// No two live slices from the same `Disjoint` may overlap.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice(&self, range: core::ops::Range<usize>) -> &mut [T] {
        assert!(
            range.start <= range.end && range.end <= self.len,
            "chunk {range:?} outside 0..{}",
            self.len
        );
        unsafe { core::slice::from_raw_parts_mut(self.ptr.add(range.start), range.end - range.start) }
    }
}

/// How many threads the kernels use, and (natively) the pool that runs them.
pub struct Threads {
    count: usize,
    #[cfg(all(feature = "threads", not(target_family = "wasm")))]
    pool: Option<rayon::ThreadPool>,
}

impl core::fmt::Debug for Threads {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Threads({})", self.count)
    }
}

impl Threads {
    /// The number of threads this build can run: 1 without the `threads` feature.
    pub fn available() -> usize {
        #[cfg(all(feature = "threads", not(target_family = "wasm")))]
        return std::thread::available_parallelism().map_or(1, |n| n.get());
        #[cfg(all(feature = "threads", target_family = "wasm"))]
        return rayon::current_num_threads();
        #[cfg(not(feature = "threads"))]
        1
    }

    /// `count` threads; 0 means every core. Fails when the build has no threads and more than
    /// one is asked for.
    pub fn new(count: usize) -> crate::error::Result<Self> {
        let count = if count == 0 { Self::available() } else { count };
        #[cfg(not(feature = "threads"))]
        if count > 1 {
            return Err(crate::error::VatError::InvalidConfig(format!(
                "this build of the CPU backend is single-threaded, so threads must be 1, got {count}; \
                 use the native engine in Node or the threaded module in a cross-origin isolated page"
            )));
        }
        #[cfg(all(feature = "threads", target_family = "wasm"))]
        if count != rayon::current_num_threads() {
            return Err(crate::error::VatError::InvalidConfig(format!(
                "this module's thread pool has {} threads, but {count} were asked for",
                rayon::current_num_threads()
            )));
        }
        Ok(Self {
            count,
            #[cfg(all(feature = "threads", not(target_family = "wasm")))]
            pool: if count > 1 {
                Some(
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(count)
                        .thread_name(|i| format!("vat-cpu-{i}"))
                        .build()
                        .map_err(|e| {
                            crate::error::VatError::BackendUnavailable(format!("cannot start {count} threads: {e}"))
                        })?,
                )
            } else {
                None
            },
        })
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// Runs `f` with this pool as the current one (what gemm's rayon mode and [`Self::for_each`] use).
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        #[cfg(all(feature = "threads", not(target_family = "wasm")))]
        if let Some(pool) = &self.pool {
            return pool.install(f);
        }
        f()
    }

    /// Calls `f(i)` for every `i` in `0..n`, on the current pool's threads when there are several.
    pub fn for_each(&self, n: usize, f: impl Fn(usize) + Send + Sync) {
        #[cfg(feature = "threads")]
        if self.count > 1 && n > 1 {
            use rayon::prelude::*;
            (0..n).into_par_iter().for_each(f);
            return;
        }
        (0..n).for_each(f);
    }

    /// gemm's setting for a matrix product inside [`Self::install`].
    pub fn gemm(&self) -> gemm::Parallelism {
        #[cfg(feature = "threads")]
        if self.count > 1 {
            return gemm::Parallelism::Rayon(self.count);
        }
        gemm::Parallelism::None
    }
}
