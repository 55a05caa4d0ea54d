//! Exit codes scripts can trust, and errors shown as the server said them (its message and each
//! invalid field), never as debug dumps.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | an unexpected failure (internal server error, unreadable answer, local I/O) |
//! | 2 | the input was refused: bad command line, file or field (`INVALID_ARGUMENT`, `FAILED_PRECONDITION`, `OUT_OF_RANGE`) |
//! | 3 | not found |
//! | 4 | conflict: already exists, or changed meanwhile (`ALREADY_EXISTS`, `ABORTED`) |
//! | 5 | a service is unavailable or too slow: retry later |
//! | 6 | the token is missing, invalid or lacks the scope |
//! | 7 | `status`: a service is not serving |

use std::process::ExitCode;

use tonic::Code;

/// Why a command failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The server answered with an error.
    Server(tonic::Status),
    /// The input (file, flag) is unusable before anything was sent.
    Input(String),
    /// A service is not serving (`status`).
    NotServing,
    /// Anything else.
    Other(anyhow::Error),
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        Self::Server(status)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self::Other(error)
    }
}

/// The exit code of a server error.
pub(crate) fn code_of(code: Code) -> u8 {
    match code {
        Code::Ok => 0,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 2,
        Code::NotFound => 3,
        Code::AlreadyExists | Code::Aborted => 4,
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted => 5,
        Code::Unauthenticated | Code::PermissionDenied => 6,
        Code::Cancelled | Code::Unknown | Code::Unimplemented | Code::Internal | Code::DataLoss => {
            1
        }
    }
}

/// Prints the failure, if any, to stderr and returns the exit code.
pub(crate) fn report(outcome: Result<(), Failure>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Server(status)) => {
            eprintln!("error: {:?}: {}", status.code(), status.message());
            // A transport failure says why only in its sources (connection refused, TLS, …).
            let mut source = std::error::Error::source(&status);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            for violation in tierline_runtime::status::field_violations(&status) {
                eprintln!("  {}: {}", violation.field, violation.description);
            }
            ExitCode::from(code_of(status.code()))
        }
        Err(Failure::Input(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::NotServing) => ExitCode::from(7),
        Err(Failure::Other(error)) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}
