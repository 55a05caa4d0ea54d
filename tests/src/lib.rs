//! End-to-end tests of Tierline that run the service binaries as real processes, across
//! services. The tests live in `tests/tests/`; this library is empty on purpose.
