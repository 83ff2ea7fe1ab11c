//! A run's and a sweep's records as `--resume`, `eval` and `compare --collect` read them
//! (`config.json`, `dataset.json`, `checkpoint/state.json`, `summary.json`, `plan.json`): any
//! bytes are refused or give a record whose seal holds — never a panic; a plan that loads
//! passes its own checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sepnet_train::fuzzing::check_record;

fuzz_target!(|data: &[u8]| check_record(data));
