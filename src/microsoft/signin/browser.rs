//! Authorization code + PKCE (RFC 7636) with a one-shot loopback redirect (RFC 8252 §7.3).
//!
//! For tenants whose Conditional Access blocks the device code flow. We listen on
//! `127.0.0.1:<free port>`, hand the technician (through the observer) the authorize URL with
//! `redirect_uri=http://localhost:<port>` (Microsoft's public clients accept any port on
//! localhost), take exactly one redirect, check `state`, and redeem the code with the verifier.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

use super::{SignInError, SignInObserver, SignInOptions, TokenResponse, post_form};

fn random_b64(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
    B64.encode(bytes)
}

pub(crate) fn challenge(verifier: &str) -> String {
    B64.encode(Sha256::digest(verifier.as_bytes()))
}

pub(crate) async fn sign_in(
    http: &reqwest::Client,
    opts: &SignInOptions,
    scopes: &[String],
    observer: &dyn SignInObserver,
) -> Result<TokenResponse, SignInError> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| SignInError::Browser(format!("cannot listen on 127.0.0.1 ({e})")))?;
    let port = listener
        .local_addr()
        .map_err(|e| SignInError::Browser(e.to_string()))?
        .port();
    let redirect = format!("http://localhost:{port}");
    let verifier = random_b64(32);
    let state = random_b64(16);
    let scope = opts.scope_param(scopes);
    let mut url = opts.endpoint("authorize");
    url.query_pairs_mut()
        .append_pair("client_id", &opts.client_id)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", &redirect)
        .append_pair("response_mode", "query")
        .append_pair("scope", &scope)
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge(&verifier))
        .append_pair("code_challenge_method", "S256")
        .append_pair("prompt", "select_account");
    observer.browser_url(&url);
    let wait = opts.browser_wait;
    observer.browser_waiting(wait);

    let (code, got_state) = tokio::time::timeout(wait, accept_one(&listener))
        .await
        .map_err(|_| SignInError::BrowserTimeout(wait))??;
    if got_state != state {
        return Err(SignInError::Browser(
            "the redirect's state did not match (another sign-in interfered)".into(),
        ));
    }
    post_form::<TokenResponse>(
        http,
        &opts.endpoint("token"),
        &[
            ("grant_type", "authorization_code"),
            ("client_id", opts.client_id.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("code_verifier", verifier.as_str()),
            ("scope", scope.as_str()),
        ],
    )
    .await?
    .map_err(|e| e.into_error())
}

/// Takes one redirect; ignores stray requests (favicon) until the one with `code` or `error`.
async fn accept_one(listener: &TcpListener) -> Result<(String, String), SignInError> {
    loop {
        let (mut sock, _) = listener
            .accept()
            .await
            .map_err(|e| SignInError::Browser(e.to_string()))?;
        let mut buf = vec![0u8; 16 * 1024];
        let n = sock.read(&mut buf).await.unwrap_or(0);
        let head = String::from_utf8_lossy(&buf[..n]);
        let target = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("/");
        let url = Url::parse(&format!("http://localhost{target}"))
            .map_err(|e| SignInError::Browser(e.to_string()))?;
        let get = |k: &str| {
            url.query_pairs()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.into_owned())
        };
        let (code, error) = (get("code"), get("error"));
        if code.is_none() && error.is_none() {
            let _ = sock
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
            continue;
        }
        let body = if code.is_some() {
            "Signed in. You can close this tab and return to hal-onboard."
        } else {
            "The sign-in did not finish. Return to hal-onboard for details."
        };
        let rsp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = sock.write_all(rsp.as_bytes()).await;
        let _ = sock.shutdown().await;
        if let Some(err) = error {
            let desc = get("error_description").unwrap_or_default();
            return Err(super::OAuthError {
                error: err,
                error_description: Some(desc),
                error_codes: vec![],
            }
            .into_error());
        }
        return Ok((code.unwrap_or_default(), get("state").unwrap_or_default()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_is_base64url_sha256_without_padding() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K1uQrppLpUUBXN6Y0gt6cMwoAw"),
            "DPU3EbfoTHJE-603lfw5lAe5VEvaBVC9aSRuEtCk9Q4"
        );
    }

    #[tokio::test]
    async fn loopback_takes_the_redirect_and_ignores_strays() {
        let l = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = l.local_addr().unwrap().port();
        let client = tokio::spawn(async move {
            for path in ["/favicon.ico", "/?code=abc&state=xyz"] {
                let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap();
                s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
                    .await
                    .unwrap();
                let mut out = String::new();
                let _ = s.read_to_string(&mut out).await;
            }
        });
        let (code, state) = accept_one(&l).await.unwrap();
        assert_eq!((code.as_str(), state.as_str()), ("abc", "xyz"));
        client.await.unwrap();
    }
}
