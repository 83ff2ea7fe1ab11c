//! Ctrl-C (SIGINT) and SIGTERM set a flag that training checks between two steps: it writes a
//! checkpoint and exits with a message saying how to resume. A second Ctrl-C ends the process
//! at once (the last checkpoint stays intact: every file is written atomically).
//!
//! Commands with nothing to save (eval, predict, export, bench, summary, data) stop within a
//! tenth of a second instead: a watcher removes the temporary files of writes in progress
//! (their destinations keep their old contents) and exits with [`EXIT_STOPPED`].

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

/// How often the watcher of [`exit_on_signal`] looks at the flag.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// Makes a signal end this process promptly and cleanly (for commands that have no state to
/// save): no temporary file is left, and no destination is half written.
pub fn exit_on_signal(command: &'static str) {
    let flag = flag();
    std::thread::spawn(move || {
        while !flag.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(WATCH_EVERY);
        }
        sepnet_data::atomic::remove_temporaries();
        eprintln!("{command}: stopped by a signal; nothing was left half written");
        std::process::exit(EXIT_STOPPED);
    });
}

/// True once a stop was asked for.
pub fn requested() -> bool {
    flag().load(std::sync::atomic::Ordering::SeqCst)
}
