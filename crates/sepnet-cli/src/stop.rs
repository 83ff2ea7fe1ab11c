//! Ctrl-C (SIGINT) and SIGTERM set a flag that training checks between two steps: it writes a
//! checkpoint and exits with a message saying how to resume. A second Ctrl-C ends the process
//! at once (the last checkpoint stays intact: every file is written atomically).

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Exit status of a run stopped by a signal (128 + SIGINT, as shells report it).
pub const EXIT_STOPPED: i32 = 130;

/// Installs the handlers (once, at start-up).
pub fn install() {
    let flag = FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)));
    #[cfg(unix)]
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The order matters: the shutdown handler sees the flag as it was before this signal,
        // so only a second signal ends the process.
        let _ =
            signal_hook::flag::register_conditional_shutdown(signal, EXIT_STOPPED, flag.clone());
        let _ = signal_hook::flag::register(signal, flag.clone());
    }
}

/// The flag the handlers set.
pub fn flag() -> Arc<AtomicBool> {
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
        .clone()
}
