//! The build script of every service crate: `sqlx::migrate!` embeds the `migrations` and
//! `migrations-sqlite` directories at compile time but does not ask cargo to watch them, so a
//! migration added without a source change would be left out of the next build.

// A build script speaks to cargo on stdout.
#![allow(clippy::print_stdout)]

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=migrations-sqlite");
}
