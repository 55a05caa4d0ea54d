//! A progress bar on stderr: redrawn in place on a terminal, one line per step otherwise (logs,
//! CI), so stdout stays for the banner and the results.

use std::io::{IsTerminal, Write};

/// The progress of one step of the demo.
#[derive(Debug)]
pub(crate) struct Progress {
    step: &'static str,
    total: u64,
    done: u64,
    drawn_percent: Option<u64>,
    terminal: bool,
    started: std::time::Instant,
}

const WIDTH: u64 = 30;

impl Progress {
    /// Starts a step of `total` units.
    pub(crate) fn start(step: &'static str, total: u64) -> Self {
        let mut progress = Self {
            step,
            total: total.max(1),
            done: 0,
            drawn_percent: None,
            terminal: std::io::stderr().is_terminal(),
            started: std::time::Instant::now(),
        };
        progress.draw();
        progress
    }

    /// `units` more are done.
    pub(crate) fn advance(&mut self, units: u64) {
        self.done = (self.done + units).min(self.total);
        self.draw();
    }

    /// The step is over.
    pub(crate) fn finish(mut self) {
        self.done = self.total;
        self.draw();
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "{}{:<28} {} in {:.1} s",
            if self.terminal { "\r" } else { "" },
            self.step,
            self.total,
            self.started.elapsed().as_secs_f64()
        );
    }

    fn draw(&mut self) {
        let percent = self.done * 100 / self.total;
        if !self.terminal || self.drawn_percent == Some(percent) {
            return;
        }
        self.drawn_percent = Some(percent);
        let filled = (self.done * WIDTH / self.total) as usize;
        let bar = format!(
            "{}{}",
            "#".repeat(filled),
            "-".repeat(WIDTH as usize - filled)
        );
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{:<28} [{bar}] {percent:>3}% {}/{}",
            self.step, self.done, self.total
        );
        let _ = err.flush();
    }
}
