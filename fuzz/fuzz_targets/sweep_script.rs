//! The Slurm batch script of a sweep: whatever folder name, time limit, partition or account a
//! user gives, the script is refused or has exactly its own lines — no input adds one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sepnet_train::fuzzing::check_script;

fuzz_target!(|data: &[u8]| check_script(data));
