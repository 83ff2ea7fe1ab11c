//! Allocator tuning for the `sepnet` process.
//!
//! A CIFAR batch of 128 images with 64 channels at 32×32 is 32 MiB, just above glibc's
//! largest automatic mmap threshold (32 MiB on 64-bit). Every such tensor got its own `mmap`,
//! was returned to the kernel on drop, and the next one page-faulted its way back in: a
//! vgg-separable training step spent ~40% of its time zeroing pages. Raising the thresholds
//! keeps big blocks on the heap, where freed ones are reused (train step 799 → 405 ms when it
//! was introduced). This is the binary's choice; a library never changes its host's allocator.

/// Makes glibc's `malloc` serve large tensors from its heap and keep freed memory. Called
/// once at start-up, before threads allocate. The user's `MALLOC_MMAP_THRESHOLD_` wins.
pub fn retain_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() {
            return;
        }
        const GIB: libc::c_int = 1 << 30;
        // SAFETY: mallopt only changes allocator parameters; no other thread runs yet.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, GIB);
            libc::mallopt(libc::M_TRIM_THRESHOLD, GIB);
        }
    }
}
