//! The one HTTPS client every far end shares.
//!
//! Built once per run so the extra trusted roots from `HAL_ONBOARD_CA_CERT` (TLS-inspecting
//! proxies, the sandbox's own CA) and `HTTPS_PROXY` apply to Graph, sign-in and the portal
//! alike, and, through [`AzureTransport`], to azure_identity's pipeline too.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use azure_core::http::headers::{HeaderName, HeaderValue, Headers};
use azure_core::http::{AsyncRawResponse, Body, HttpClient, Method, Request};

#[derive(Debug, thiserror::Error)]
pub enum HttpSetupError {
    #[error("cannot read the CA file {path}")]
    ReadCa {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the CA file {path} holds no PEM certificate")]
    BadCa {
        path: String,
        #[source]
        source: Option<reqwest::Error>,
    },
    #[error("cannot set up the HTTPS client")]
    Build(#[source] reqwest::Error),
}

/// Installs ring as rustls' process-wide provider; harmless when already done.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds the shared client: the platform's and Mozilla's roots plus `extra_ca`.
pub fn build_client(extra_ca: Option<&Path>) -> Result<reqwest::Client, HttpSetupError> {
    install_crypto_provider();
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .user_agent(concat!("hal-onboard/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(90))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = extra_ca {
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|source| HttpSetupError::ReadCa {
            path: shown.clone(),
            source,
        })?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| HttpSetupError::BadCa {
                path: shown.clone(),
                source: Some(e),
            })?;
        if certs.is_empty() {
            return Err(HttpSetupError::BadCa {
                path: shown,
                source: None,
            });
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(HttpSetupError::Build)
}

/// Lets azure_identity's credentials send their requests through our client.
#[derive(Debug, Clone)]
pub struct AzureTransport(pub reqwest::Client);

impl AzureTransport {
    pub fn transport(client: &reqwest::Client) -> azure_core::http::Transport {
        azure_core::http::Transport::new(Arc::new(AzureTransport(client.clone())))
    }
}

#[async_trait::async_trait]
impl HttpClient for AzureTransport {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        use azure_core::error::{Error, ErrorKind};
        let method = match request.method() {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
            Method::Head => reqwest::Method::HEAD,
            other => {
                return Err(Error::with_message(
                    ErrorKind::Other,
                    format!("unsupported method {other:?}"),
                ));
            }
        };
        let mut req = self.0.request(method, request.url().clone());
        for (name, value) in request.headers().iter() {
            req = req.header(name.as_str(), value.as_str());
        }
        let req = match request.body() {
            Body::Bytes(bytes) => req.body(bytes.clone()),
            #[allow(unreachable_patterns)]
            _ => {
                return Err(Error::with_message(
                    ErrorKind::Other,
                    "streamed request bodies are not supported",
                ));
            }
        };
        let rsp = req.send().await.map_err(|e| {
            let kind = if e.is_connect() {
                ErrorKind::Connection
            } else {
                ErrorKind::Io
            };
            Error::with_error(kind, e, "request failed")
        })?;
        let status = rsp.status().as_u16();
        let headers: HashMap<HeaderName, HeaderValue> = rsp
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                v.to_str().ok().map(|v| {
                    (
                        HeaderName::from(k.as_str().to_owned()),
                        HeaderValue::from(v.to_owned()),
                    )
                })
            })
            .collect();
        let bytes = read_body(rsp, MAX_BODY).await.map_err(|e| match e {
            BodyError::Read(e) => {
                Error::with_error(ErrorKind::Io, e, "reading the response failed")
            }
            e @ BodyError::TooLarge => {
                Error::with_error(ErrorKind::Io, e, "the answer is too large")
            }
        })?;
        Ok(AsyncRawResponse::from_bytes(
            status.into(),
            Headers::from(headers),
            bytes,
        ))
    }
}

/// The most a far end may answer in one body. Graph pages, token answers and the portal's
/// records are a few KiB; anything this large is a fault or a hostile server.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// The longest `Retry-After` taken as given; longer asks are waited this long (and the caller's
/// own budget decides whether to wait at all).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// A body larger than [`MAX_BODY`], or a transport failure while reading it.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the answer is larger than {} MiB", MAX_BODY / (1024 * 1024))]
    TooLarge,
    #[error("reading the answer failed")]
    Read(#[source] reqwest::Error),
}

/// Reads a response body, refusing one larger than `limit` bytes without buffering it whole.
pub async fn read_body(mut rsp: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if rsp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut out = Vec::new();
    while let Some(chunk) = rsp.chunk().await.map_err(BodyError::Read)? {
        if out.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// `Retry-After` (RFC 9110 §10.2.3): whole seconds or an HTTP date, clamped to
/// [`MAX_RETRY_AFTER`]. Anything else (fractions, exponents, negative) is ignored, never a panic.
pub fn retry_after(value: Option<&str>) -> Option<Duration> {
    let v = value?.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        let secs = v.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    let wait = at
        .duration_since(std::time::SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod retry_after_tests {
    use super::*;

    #[test]
    fn seconds_dates_and_nonsense() {
        assert_eq!(retry_after(Some("2")), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(Some(" 10 ")), Some(Duration::from_secs(10)));
        // Once a panic (exit 101): a float this large overflowed Duration.
        assert_eq!(retry_after(Some("1e20")), None);
        assert_eq!(
            retry_after(Some("99999999999999999999999")),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(retry_after(Some("-1")), None);
        assert_eq!(retry_after(Some("1.5")), None);
        assert_eq!(retry_after(Some("soon")), None);
        assert_eq!(retry_after(None), None);
        assert_eq!(
            retry_after(Some("Sun, 06 Nov 1994 08:49:37 GMT")),
            Some(Duration::ZERO)
        );
        let later =
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(120));
        let d = retry_after(Some(&later)).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        let far =
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(10 * 86400));
        assert_eq!(retry_after(Some(&far)), Some(MAX_RETRY_AFTER));
    }
}

#[cfg(test)]
mod body_tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers every request with `body`, chunked (no Content-Length to trust)
    /// or with its length.
    async fn serve(body: Vec<u8>, chunked: bool) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let body = body.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    if chunked {
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                            .await;
                        for c in body.chunks(64 * 1024) {
                            let _ = s.write_all(format!("{:x}\r\n", c.len()).as_bytes()).await;
                            let _ = s.write_all(c).await;
                            let _ = s.write_all(b"\r\n").await;
                        }
                        let _ = s.write_all(b"0\r\n\r\n").await;
                    } else {
                        let head =
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                        let _ = s.write_all(head.as_bytes()).await;
                        let _ = s.write_all(&body).await;
                    }
                });
            }
        });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_refused_chunked_or_not() {
        let c = reqwest::Client::new();
        for chunked in [true, false] {
            let url = serve(vec![b'x'; MAX_BODY + 1], chunked).await;
            let rsp = c.get(&url).send().await.unwrap();
            assert!(
                matches!(read_body(rsp, MAX_BODY).await, Err(BodyError::TooLarge)),
                "chunked: {chunked}"
            );
            let url = serve(vec![b'y'; 1000], chunked).await;
            let rsp = c.get(&url).send().await.unwrap();
            assert_eq!(read_body(rsp, MAX_BODY).await.unwrap().len(), 1000);
        }
    }
}
