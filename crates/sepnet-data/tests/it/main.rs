//! sepnet-data's integration tests, one binary: every bad input, batches, downloads from a
//! server on loopback, and the real datasets when present (ignored, with the reason, when not).

mod bad_input;
mod batches;
mod download;
mod real_data;
