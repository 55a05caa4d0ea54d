//! The command's output on stdout. A reader that goes away (`tierline … | head -1`) ends the
//! command quietly, with the status a shell reports for a command the closed pipe stopped (141,
//! 128 + SIGPIPE), instead of `println!`'s panic and backtrace.

use std::io::{ErrorKind, Write as _};

/// The status of a command whose reader went away.
const CLOSED_PIPE: i32 = 141;

/// Writes one line (`args` and a newline) to stdout.
pub(crate) fn line(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_fmt(args)
        .and_then(|()| stdout.write_all(b"\n"));
    match written {
        Ok(()) => {}
        Err(error) if error.kind() == ErrorKind::BrokenPipe => std::process::exit(CLOSED_PIPE),
        Err(error) => {
            eprintln!("error: cannot write the output: {error}");
            std::process::exit(1);
        }
    }
}

/// `println!` for the command's output, through [`line`].
macro_rules! outln {
    () => {
        $crate::output::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
pub(crate) use outln;
