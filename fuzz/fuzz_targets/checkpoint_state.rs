//! Loading a run's `checkpoint/state.json`, `config.json` and `dataset.json`: any bytes are a
//! record or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sepnet_train::checkpoint::TrainState;
use sepnet_train::{DatasetInfo, RunConfig};

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = serde_json::from_slice::<TrainState>(data) {
        let _ = serde_json::to_vec(&state).expect("a state serialises");
    }
    let _ = serde_json::from_slice::<RunConfig>(data);
    let _ = serde_json::from_slice::<DatasetInfo>(data);
});
