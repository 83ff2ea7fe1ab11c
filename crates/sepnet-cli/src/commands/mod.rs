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
