//! `tierline token`: an HS256 bearer token for a deployment whose auth trusts a shared secret
//! (the development mode with `--auth-secret`, smoke tests); minted by the runtime's auth, as the
//! development mode and the tests mint theirs.

use tierline_runtime::auth::{Claims, MIN_HS256_SECRET_BYTES, epoch_seconds};

use crate::{cli::TokenArgs, exit::Failure, output::outln};

/// Prints the token `args` describe.
pub(super) fn run(args: &TokenArgs) -> Result<(), Failure> {
    if args.secret.len() < MIN_HS256_SECRET_BYTES {
        return Err(Failure::Input(format!(
            "--secret: at least {MIN_HS256_SECRET_BYTES} bytes (it has {})",
            args.secret.len()
        )));
    }
    let claims = Claims {
        iss: args.issuer.clone(),
        aud: args.audience.clone().map(Into::into),
        ..Claims::granting(&args.subject, &args.scopes, epoch_seconds() + args.ttl)
    };
    let token = claims
        .sign_hs256(&args.secret)
        .map_err(|error| Failure::Other(anyhow::anyhow!("signing the token: {error}")))?;
    outln!("{token}");
    Ok(())
}
