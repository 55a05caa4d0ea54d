//! Verifying bearer tokens.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::{Deserialize, Serialize};

use crate::config::{AuthMode, AuthSettings};

/// Why a call was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No `authorization` metadata, or not `Bearer …`.
    #[error("missing bearer token")]
    Missing,
    /// The token is malformed, expired, not yet valid, wrongly signed, or for another issuer or
    /// audience. The detail is logged, not returned to the caller.
    #[error("invalid token")]
    Invalid,
    /// The token is valid but lacks the scope the method needs.
    #[error("the token lacks scope {0}")]
    MissingScope(&'static str),
    /// The method is not in the service's scope table.
    #[error("method is not callable")]
    UnknownMethod,
}

/// The claims Tierline reads from a token.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Claims {
    /// Who the caller is (a service or operator name).
    #[serde(default)]
    pub sub: String,
    /// Expiry, seconds since the epoch (required).
    pub exp: u64,
    /// Space-separated scopes (OAuth 2 style).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Scopes as a list (alternative form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience: one, or several (the token is for each of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
}

impl Claims {
    /// Claims for `subject` granting `scopes`, expiring at `exp` (seconds since the epoch).
    pub fn granting<S: AsRef<str>>(subject: &str, scopes: &[S], exp: u64) -> Self {
        let scope: Vec<&str> = scopes.iter().map(AsRef::as_ref).collect();
        Self {
            sub: subject.to_owned(),
            exp,
            scope: Some(scope.join(" ")),
            ..Self::default()
        }
    }

    /// The claims signed with HS256 under `secret`: how the development mode, `tierline token`
    /// and the tests mint tokens (production tokens come from the identity provider).
    pub fn sign_hs256(&self, secret: &str) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            self,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
    }
}

/// The shortest HS256 secret a deployment accepts (RFC 7518 asks for a key at least as long as
/// the hash: 256 bits).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// Seconds since the epoch, now (0 before it): the clock token expiries count in.
pub fn epoch_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

/// The `aud` claim, which RFC 7519 (4.1.3) allows as one string or an array of strings. With an
/// audience configured, a token is accepted when its `aud` is that audience or an array holding
/// it (jsonwebtoken checks it; this type only has to read both forms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// `"aud": "tierline"`.
    One(String),
    /// `"aud": ["tierline", "billing"]`.
    Many(Vec<String>),
}

impl From<&str> for Audience {
    fn from(audience: &str) -> Self {
        Self::One(audience.to_owned())
    }
}

impl From<String> for Audience {
    fn from(audience: String) -> Self {
        Self::One(audience)
    }
}

/// The authenticated caller, put in the request extensions for handlers that record who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's subject; `anonymous` when auth is disabled.
    pub subject: String,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// The last instant the token is accepted: its `exp` plus the configured leeway; `None` when
    /// auth is disabled. A streaming call ends with UNAUTHENTICATED when it passes.
    pub valid_until: Option<SystemTime>,
}

impl Principal {
    /// Whether the caller holds `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|held| held == scope)
    }
}

/// Checks tokens against the configured keys.
pub struct Authenticator {
    mode: AuthMode,
    keys: Vec<(Algorithm, DecodingKey)>,
    validation_template: Validation,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("mode", &self.mode)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Authenticator {
    /// Builds the verifier; fails when an RS256 key is not a valid PEM public key.
    pub fn new(settings: &AuthSettings) -> Result<Self, String> {
        let mut keys = Vec::new();
        if let Some(secret) = &settings.hs256_secret {
            keys.push((
                Algorithm::HS256,
                DecodingKey::from_secret(secret.expose().as_bytes()),
            ));
        }
        for pem in &settings.rs256_public_keys_pem {
            let key = DecodingKey::from_rsa_pem(pem.as_bytes())
                .map_err(|error| format!("RS256 public key: {error}"))?;
            keys.push((Algorithm::RS256, key));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = settings.leeway.as_secs();
        validation.validate_nbf = true;
        // jsonwebtoken checks `aud` and `iss` only when present: require them when configured,
        // or a token minted for another system with the same key would pass.
        match &settings.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                validation.required_spec_claims.insert("aud".to_owned());
            }
            None => validation.validate_aud = false,
        }
        if let Some(issuer) = &settings.issuer {
            validation.set_issuer(&[issuer]);
            validation.required_spec_claims.insert("iss".to_owned());
        }
        Ok(Self {
            mode: settings.mode,
            keys,
            validation_template: validation,
        })
    }

    /// An authenticator that lets every call through (auth disabled by setting).
    pub fn disabled() -> Self {
        Self {
            mode: AuthMode::Disabled,
            keys: Vec::new(),
            validation_template: Validation::default(),
        }
    }

    /// Whether tokens are checked at all.
    pub fn is_enabled(&self) -> bool {
        self.mode == AuthMode::Jwt
    }

    /// Checks the `authorization` header value and that it grants `scope`.
    pub fn authorize(
        &self,
        authorization: Option<&str>,
        scope: &'static str,
    ) -> Result<Principal, AuthError> {
        if !self.is_enabled() {
            return Ok(Principal {
                subject: "anonymous".to_owned(),
                scopes: vec![scope.to_owned()],
                valid_until: None,
            });
        }
        let token = authorization
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(AuthError::Missing)?;
        let principal = self.verify(token)?;
        if principal.has_scope(scope) {
            Ok(principal)
        } else {
            Err(AuthError::MissingScope(scope))
        }
    }

    fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = decode_header(token).map_err(|error| {
            tracing::debug!(%error, "malformed token");
            AuthError::Invalid
        })?;
        let mut last_error = None;
        for (algorithm, key) in self
            .keys
            .iter()
            .filter(|(algorithm, _)| *algorithm == header.alg)
        {
            let mut validation = self.validation_template.clone();
            validation.algorithms = vec![*algorithm];
            match decode::<Claims>(token, key, &validation) {
                Ok(data) => {
                    let claims = data.claims;
                    let mut scopes: Vec<String> = claims
                        .scope
                        .as_deref()
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect();
                    scopes.extend(claims.scopes.unwrap_or_default());
                    // Accepted while `now - leeway <= exp` (jsonwebtoken's rule), so until
                    // `exp + leeway`; an instant too far to represent means "never".
                    let valid_until = UNIX_EPOCH.checked_add(Duration::from_secs(
                        claims.exp.saturating_add(validation.leeway),
                    ));
                    return Ok(Principal {
                        subject: claims.sub,
                        scopes,
                        valid_until,
                    });
                }
                Err(error) => last_error = Some(error),
            }
        }
        tracing::debug!(error = ?last_error, algorithm = ?header.alg, "token rejected");
        Err(AuthError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header, encode};

    use super::*;
    use crate::config::Secret;

    const SECRET: &str = "an-hs256-secret-of-at-least-32-bytes!";

    fn settings() -> AuthSettings {
        AuthSettings {
            mode: AuthMode::Jwt,
            hs256_secret: Some(Secret::new(SECRET)),
            rs256_public_keys_pem: Vec::new(),
            issuer: None,
            audience: None,
            leeway: Duration::from_secs(0),
        }
    }

    fn token(secret: &str, scope: &str, expires_in: i64) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let exp = u64::try_from(i64::try_from(now).expect("now") + expires_in).expect("exp");
        let claims = Claims {
            sub: "pos".into(),
            exp,
            scope: Some(scope.into()),
            ..Claims::default()
        };
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("encode")
    }

    #[test]
    fn a_valid_token_with_the_scope_is_accepted() {
        let auth = Authenticator::new(&settings()).expect("builds");
        let bearer = format!("Bearer {}", token(SECRET, "customers:read feed:read", 60));
        let principal = auth
            .authorize(Some(&bearer), "feed:read")
            .expect("authorized");
        assert_eq!(principal.subject, "pos");
        // Valid until `exp` plus the leeway (0 here): 59 to 60 s from now.
        let left = principal
            .valid_until
            .expect("an expiry")
            .duration_since(SystemTime::now())
            .expect("in the future");
        assert!(left <= Duration::from_secs(60) && left > Duration::from_secs(58));
        let lenient = Authenticator::new(&AuthSettings {
            leeway: Duration::from_secs(30),
            ..settings()
        })
        .expect("builds")
        .authorize(Some(&bearer), "feed:read")
        .expect("authorized");
        assert_eq!(
            lenient
                .valid_until
                .and_then(|t| t.checked_sub(Duration::from_secs(30))),
            principal.valid_until
        );
        assert_eq!(
            Authenticator::disabled()
                .authorize(None, "feed:read")
                .map(|p| p.valid_until),
            Ok(None)
        );
    }

    #[test]
    fn refusals_are_told_apart() {
        let auth = Authenticator::new(&settings()).expect("builds");
        assert_eq!(
            auth.authorize(None, "customers:read"),
            Err(AuthError::Missing)
        );
        assert_eq!(
            auth.authorize(Some("Basic abc"), "customers:read"),
            Err(AuthError::Missing)
        );
        assert_eq!(
            auth.authorize(Some("Bearer not.a.jwt"), "customers:read"),
            Err(AuthError::Invalid)
        );
        let wrong_key = format!(
            "Bearer {}",
            token(
                "another-secret-that-is-also-32-bytes-long",
                "customers:read",
                60
            )
        );
        assert_eq!(
            auth.authorize(Some(&wrong_key), "customers:read"),
            Err(AuthError::Invalid)
        );
        let expired = format!("Bearer {}", token(SECRET, "customers:read", -120));
        assert_eq!(
            auth.authorize(Some(&expired), "customers:read"),
            Err(AuthError::Invalid)
        );
        let other_scope = format!("Bearer {}", token(SECRET, "customers:read", 60));
        assert_eq!(
            auth.authorize(Some(&other_scope), "activity:write"),
            Err(AuthError::MissingScope("activity:write"))
        );
    }

    #[test]
    fn a_configured_audience_and_issuer_are_required() {
        let auth = Authenticator::new(&AuthSettings {
            audience: Some("tierline".into()),
            issuer: Some("https://idp.example.com".into()),
            ..settings()
        })
        .expect("builds");
        let without = format!("Bearer {}", token(SECRET, "customers:read", 60));
        assert_eq!(
            auth.authorize(Some(&without), "customers:read"),
            Err(AuthError::Invalid)
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let claims = Claims {
            sub: "pos".into(),
            exp: now + 60,
            scope: Some("customers:read".into()),
            iss: Some("https://idp.example.com".into()),
            aud: Some("tierline".into()),
            ..Claims::default()
        };
        let with = encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("encode");
        assert!(
            auth.authorize(Some(&format!("Bearer {with}")), "customers:read")
                .is_ok()
        );
    }

    #[test]
    fn an_audience_array_is_accepted_when_it_holds_ours() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        // As an identity provider mints it: raw JSON, `aud` an array.
        let with_aud = |aud: serde_json::Value| {
            let claims = serde_json::json!({
                "sub": "pos",
                "exp": now + 60,
                "scope": "customers:read",
                "aud": aud,
            });
            let token = encode(
                &Header::default(),
                &claims,
                &EncodingKey::from_secret(SECRET.as_bytes()),
            )
            .expect("encode");
            format!("Bearer {token}")
        };
        let auth = Authenticator::new(&AuthSettings {
            audience: Some("tierline".into()),
            ..settings()
        })
        .expect("builds");
        for accepted in [
            serde_json::json!(["billing", "tierline"]),
            serde_json::json!(["tierline"]),
            serde_json::json!("tierline"),
        ] {
            assert!(
                auth.authorize(Some(&with_aud(accepted.clone())), "customers:read")
                    .is_ok(),
                "aud {accepted}"
            );
        }
        for refused in [
            serde_json::json!(["billing", "crm"]),
            serde_json::json!([]),
            serde_json::json!("billing"),
            serde_json::json!(42),
        ] {
            assert_eq!(
                auth.authorize(Some(&with_aud(refused.clone())), "customers:read"),
                Err(AuthError::Invalid),
                "aud {refused}"
            );
        }
        // Without a configured audience the claim is not checked, in either form.
        let open = Authenticator::new(&settings()).expect("builds");
        assert!(
            open.authorize(
                Some(&with_aud(serde_json::json!(["billing"]))),
                "customers:read"
            )
            .is_ok()
        );
        // Both forms round-trip through `Claims`.
        for aud in [
            Audience::from("tierline"),
            Audience::Many(vec!["billing".into(), "tierline".into()]),
        ] {
            let claims = Claims {
                sub: "pos".into(),
                exp: now + 60,
                scope: Some("customers:read".into()),
                aud: Some(aud.clone()),
                ..Claims::default()
            };
            let token = encode(
                &Header::default(),
                &claims,
                &EncodingKey::from_secret(SECRET.as_bytes()),
            )
            .expect("encode");
            assert!(
                auth.authorize(Some(&format!("Bearer {token}")), "customers:read")
                    .is_ok(),
                "{aud:?}"
            );
        }
    }

    #[test]
    fn rs256_tokens_are_checked_against_the_configured_public_keys() {
        let auth = Authenticator::new(&AuthSettings {
            hs256_secret: None,
            rs256_public_keys_pem: vec![include_str!("testdata/rs256-test-public.pem").to_owned()],
            ..settings()
        })
        .expect("builds");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let claims = Claims {
            sub: "campaign".into(),
            exp: now + 60,
            scope: Some("feed:read".into()),
            ..Claims::default()
        };
        let sign = |pem: &str| {
            let key = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("private key");
            format!(
                "Bearer {}",
                encode(&Header::new(jsonwebtoken::Algorithm::RS256), &claims, &key)
                    .expect("encode")
            )
        };
        let trusted = sign(include_str!("testdata/rs256-test-private.pem"));
        assert_eq!(
            auth.authorize(Some(&trusted), "feed:read")
                .expect("valid")
                .subject,
            "campaign"
        );
        let untrusted = sign(include_str!("testdata/rs256-untrusted-private.pem"));
        assert_eq!(
            auth.authorize(Some(&untrusted), "feed:read"),
            Err(AuthError::Invalid)
        );
        // Algorithm confusion: an HS256 token "signed" with the public key must not pass.
        let public = include_str!("testdata/rs256-test-public.pem");
        let confused = format!(
            "Bearer {}",
            encode(
                &Header::default(),
                &claims,
                &EncodingKey::from_secret(public.as_bytes())
            )
            .expect("encode")
        );
        assert_eq!(
            auth.authorize(Some(&confused), "feed:read"),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn disabled_auth_lets_calls_through() {
        let auth = Authenticator::disabled();
        assert!(auth.authorize(None, "customers:write").is_ok());
    }
}
