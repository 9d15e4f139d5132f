//! Everything the binary prints goes through here. A closed pipe, a full disk or a terminal
//! that went away never panics and never changes a decision: what cannot be written is dropped
//! (as ripgrep does on EPIPE) and the first failure is remembered, so that a command whose
//! output *is* its result (`show --json > /dev/full`) can exit with the internal-error code
//! instead of 0. A reader that closes the pipe on purpose (`| head -1`) is not a failure.

use std::fmt;
use std::io::{self, Write};
use std::sync::Mutex;

/// The first error writing standard output, if any.
static STDOUT_FAILED: Mutex<Option<io::ErrorKind>> = Mutex::new(None);
/// Once standard error fails, later diagnostics are not even attempted.
static STDERR_FAILED: Mutex<bool> = Mutex::new(false);

/// Prints a line on stdout; see the module comment for what happens when it cannot.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::stdout_line(format_args!($($arg)*))
    };
}

/// Prints a line on stderr (progress, notes, errors); dropped when stderr is gone.
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::output::stderr_line(format_args!($($arg)*))
    };
}

pub fn stdout_line(args: fmt::Arguments<'_>) {
    let mut failed = STDOUT_FAILED.lock().unwrap_or_else(|e| e.into_inner());
    if failed.is_some() {
        return;
    }
    let mut out = io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    if let Err(e) = written {
        *failed = Some(e.kind());
    }
}

pub fn stderr_line(args: fmt::Arguments<'_>) {
    let mut failed = STDERR_FAILED.lock().unwrap_or_else(|e| e.into_inner());
    if *failed {
        return;
    }
    let mut err = io::stderr().lock();
    if err
        .write_fmt(args)
        .and_then(|()| err.write_all(b"\n"))
        .is_err()
    {
        *failed = true;
    }
}

/// Writes raw bytes to stdout (shell completions), with the same rules as [`stdout_line`].
pub fn stdout_bytes(bytes: &[u8]) {
    let mut failed = STDOUT_FAILED.lock().unwrap_or_else(|e| e.into_inner());
    if failed.is_some() {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        *failed = Some(e.kind());
    }
}

/// Whether stdout failed for a reason other than its reader leaving: the output a command
/// exists to produce was lost (a full disk, an I/O error).
pub fn stdout_lost() -> Option<io::ErrorKind> {
    let mut failed = STDOUT_FAILED.lock().unwrap_or_else(|e| e.into_inner());
    if failed.is_none() {
        // Whatever is still buffered must reach its destination before we can say so.
        if let Err(e) = io::stdout().lock().flush() {
            *failed = Some(e.kind());
        }
    }
    failed.filter(|kind| *kind != io::ErrorKind::BrokenPipe)
}

/// A panic is a bug in gauntlet: say so on stderr (if it is still there), never as exit 101.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        // Not through `stderr_line`: the panic may have happened while it held its lock.
        let _ = writeln!(
            io::stderr(),
            "gauntlet: internal error (a bug in gauntlet, please report it): {info}"
        );
    }));
}
