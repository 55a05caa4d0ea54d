//! `tierline dev`: the whole platform in this one process, for trying it with nothing but the
//! Rust toolchain. The three services run as in a deployment — the same gRPC APIs, feeds,
//! triggers, scheduler and reports — each on its own port (50051, 50052, 50053 by default, the
//! ports of a deployment, so every other `tierline` command works unchanged), each over its own
//! SQLite file instead of Postgres, and the scoring service with its in-process tier cache instead
//! of Redis. `--demo` then loads a synthetic business through those same APIs.
//!
//! Each service keeps its own port (rather than one port serving all three APIs) so that clients,
//! tokens and network rules look exactly as they will in Kubernetes.

mod demo;
mod serve;
mod token;

pub(crate) use serve::run;

/// Prints a line for the person at the terminal (and for tests that read the endpoints).
fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // A closed stdout (piped into `head`) is no reason to stop the services.
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}
