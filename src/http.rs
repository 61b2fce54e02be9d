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
        let bytes = rsp
            .bytes()
            .await
            .map_err(|e| Error::with_error(ErrorKind::Io, e, "reading the response failed"))?;
        Ok(AsyncRawResponse::from_bytes(
            status.into(),
            Headers::from(headers),
            bytes,
        ))
    }
}
