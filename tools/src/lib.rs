//! Operator tools for Tierline. The binaries live in `src/bin/`; see each one's `--help`.
