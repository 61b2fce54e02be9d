//! The sandbox's tokens: JWTs signed HS256 with a key made at start.
//!
//! Real Microsoft access tokens are RS256 JWTs whose claims clients may read but not verify;
//! hal-onboard reads `tid`, `oid`, `upn`, `roles` and `scp` from the payload only, so the same
//! client code works against both. Every sandbox far end (sign-in, Graph, Exchange, the stand-in
//! PowerShell) checks signatures with [`Signer::verify`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Claims the sandbox puts in its tokens (a subset of Microsoft's v1/v2 access token claims).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Claims {
    /// Audience: the resource, e.g. `https://graph.microsoft.com`.
    pub aud: String,
    pub iss: String,
    /// Tenant the token was issued in.
    pub tid: String,
    /// Object ID of the user or service principal; absent from a partner technician's GDAP
    /// token in a customer.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub oid: String,
    /// The client application's ID.
    pub appid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    /// The identity provider of a user from another tenant: `https://sts.windows.net/{partner
    /// tenant}/` in a GDAP token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<String>,
    /// Delegated scopes, space separated (user tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
    /// Application roles (app-only tokens).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Directory role template IDs of the signed-in user (Microsoft's `wids` claim).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wids: Vec<String>,
    /// How the user authenticated (Microsoft's `amr` claim in user tokens): `["pwd", "mfa"]`
    /// after a multi-factor sign-in, `["pwd"]` without (scenario `signedInUser.mfa`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// OpenID subject (id tokens): pairwise, see [`pairwise_sub`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The user's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The user's sign-in name (id tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// Token format version: `1.0` for the sandbox's (v1-shaped) access tokens, `2.0` for id
    /// tokens from the v2.0 endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ver: Option<String>,
    /// The `nonce` of the authorization request, echoed in the id token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
    clock: Clock,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    /// A fresh random key, with a clock of its own.
    pub fn random() -> Signer {
        let key: [u8; 32] = rand::random();
        Signer {
            key: key.to_vec(),
            clock: Clock::default(),
        }
    }

    pub fn from_key(key: &[u8]) -> Signer {
        Signer {
            key: key.to_vec(),
            clock: Clock::default(),
        }
    }

    /// The clock this authority issues and checks tokens by (shared by its clones).
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn key(&self) -> &[u8] {
        &self.key
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = B64.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let input = format!("{header}.{payload}");
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(input.as_bytes());
        let sig = B64.encode(mac.finalize().into_bytes());
        format!("{input}.{sig}")
    }

    /// The claims of a token this signer made, if its signature holds and it has not expired.
    pub fn verify(&self, token: &str, now_unix: i64) -> Option<Claims> {
        let mut parts = token.split('.');
        let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).ok()?;
        mac.update(format!("{h}.{p}").as_bytes());
        mac.verify_slice(&B64.decode(s).ok()?).ok()?;
        let claims: Claims = serde_json::from_slice(&B64.decode(p).ok()?).ok()?;
        (claims.exp > now_unix).then_some(claims)
    }

    /// The claims of a token this signer made, if its signature holds, expired or not (so a
    /// far end can tell "expired" from "forged").
    pub fn verify_signature(&self, token: &str) -> Option<Claims> {
        self.verify(token, i64::MIN)
    }
}

/// The OpenID `sub` of a user for one application: Microsoft's is pairwise (the same user has a
/// different `sub` in each app, and always the same in one), base64url, 43 characters.
pub fn pairwise_sub(oid: &str, client_id: &str) -> String {
    use sha2::Digest;
    let digest = Sha256::new()
        .chain_update(oid.to_ascii_lowercase().as_bytes())
        .chain_update([0])
        .chain_update(client_id.to_ascii_lowercase().as_bytes())
        .finalize();
    B64.encode(digest)
}

/// Seconds since the Unix epoch, by the wall clock (what a client outside the sandbox sees).
pub fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The sandbox's own clock: the wall clock plus however far a test advanced it. Everything
/// that expires in the sandbox (tokens, refresh tokens, device and authorization codes) expires
/// by this clock, so a test waits for an hour-long token to run out with
/// [`crate::Sandbox::advance`] instead of an hour.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_secs: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl Clock {
    pub fn now_unix(&self) -> i64 {
        now_unix() + self.offset_secs.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn now(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
            + time::Duration::seconds(self.offset_secs.load(std::sync::atomic::Ordering::SeqCst))
    }

    pub fn advance(&self, by: std::time::Duration) {
        self.offset_secs.fetch_add(
            i64::try_from(by.as_secs()).unwrap_or(i64::MAX / 4),
            std::sync::atomic::Ordering::SeqCst,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_tamper_expire() {
        let s = Signer::random();
        let c = Claims {
            aud: "https://graph.microsoft.com".into(),
            tid: "t".into(),
            exp: 100,
            ..Default::default()
        };
        let t = s.sign(&c);
        assert_eq!(s.verify(&t, 50), Some(c.clone()));
        assert_eq!(s.verify(&t, 100), None, "expired");
        assert_eq!(Signer::random().verify(&t, 50), None, "other key");
        let mut bad = t.clone();
        bad.insert(t.find('.').unwrap() + 3, 'x');
        assert_eq!(s.verify(&bad, 50), None, "tampered");
    }
}
