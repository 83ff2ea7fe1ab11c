//! One module per subcommand.

pub mod bench;
pub mod compare;
pub mod data;
pub mod eval;
pub mod export;
pub mod models;
pub mod predict;
pub mod quantize;
pub mod summary;
pub mod sweep;
pub mod train;

/// What a first GPU step costs, said before it starts: the kernels compile (and autotune)
/// then, tens of seconds that later runs skip. `None` on the CPU.
pub fn gpu_first_step_note(backend: sepnet_model::Backend) -> Option<String> {
    #[cfg(feature = "wgpu")]
    if backend == sepnet_model::Backend::Wgpu {
        return Some(format!(
            "wgpu: the first steps compile and autotune GPU kernels (tens of seconds for a new \
             model or batch size); they are kept in {} for later runs",
            sepnet_model::kernels::gpu::cache::directory().display()
        ));
    }
    let _ = backend;
    None
}
