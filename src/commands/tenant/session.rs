//! What `tenant add`, `tenant remove --delete-app` and `secret rotate` share: a signed-in
//! Graph client for one tenant (device code, browser or Azure CLI), the credential verifier,
//! and the request meter, all on one HTTPS client.

use std::sync::Arc;

use crate::cloud::Endpoints;
use crate::commands::Ctx;
use crate::error::{CommandResult, failed};
use crate::http::build_client;
use crate::microsoft::graph::meter::RequestMeter;
use crate::microsoft::graph::{GraphClient, RetryPolicy};
use crate::microsoft::signin::{
    self, AuthMethod, GRAPH_CLI_CLIENT_ID, SignInObserver, SignInOptions, UserCredential,
};
use crate::secrets::SecretStore;
use crate::store::TenantRecord;
use crate::wizard::verify::AzureVerifier;

/// Scales every retry wait (tests and the benchmark run the same logic faster). For tests and
/// benchmarks (README lists it as such): technicians never need it.
pub(crate) const ENV_RETRY_SCALE: &str = "HAL_ONBOARD_RETRY_SCALE";

/// The retry scale from the environment (1.0 unless set to a positive number).
pub(crate) fn retry_scale() -> f64 {
    std::env::var(ENV_RETRY_SCALE)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|f: &f64| f.is_finite() && *f > 0.0)
        .unwrap_or(1.0)
}

/// The flags that choose how to sign in, shared by every command that signs in.
#[derive(Debug, Clone, clap::Args)]
pub struct SignInArgs {
    /// How to sign in: device code (default, works over SSH), a browser on this machine (for
    /// Conditional Access that blocks device codes), or the Azure CLI's `az login`.
    #[arg(long, value_enum, default_value_t = AuthMethod::DeviceCode, value_name = "METHOD")]
    pub auth: AuthMethod,

    /// The public client to sign in with [default: Microsoft Graph Command Line Tools,
    /// or HAL_ONBOARD_CLIENT_ID].
    #[arg(long, value_name = "GUID")]
    pub client_id: Option<String>,
}

/// A Graph client signed in (on first use) to one tenant, and what goes with it.
pub(crate) struct Session {
    pub http: reqwest::Client,
    pub endpoints: Endpoints,
    pub graph: GraphClient,
    pub verifier: AzureVerifier,
    pub meter: Arc<RequestMeter>,
    /// The technician's credential, to keep the sign-in once the tenant is checked (`None`
    /// with the Azure CLI, which keeps its own).
    pub user_cred: Option<Arc<UserCredential>>,
    pub scale: f64,
}

impl Session {
    /// Builds the clients; nothing is sent until the first Graph request.
    pub(crate) fn open(
        ctx: &Ctx,
        tenant: &str,
        known: Option<&TenantRecord>,
        how: &SignInArgs,
        secrets: Arc<dyn SecretStore>,
        observer: Arc<dyn SignInObserver>,
    ) -> CommandResult<Session> {
        let cloud = ctx
            .global
            .cloud
            .or(known.map(|r| r.cloud))
            .unwrap_or_default();
        let endpoints = ctx.env.endpoints(cloud);
        let http = build_client(ctx.env.ca_cert.as_deref())
            .map_err(|e| failed("cannot set up HTTPS").with_source(e))?;
        let scale = retry_scale();
        let client_id = how
            .client_id
            .clone()
            .or_else(|| ctx.env.client_id.clone())
            .unwrap_or_else(|| GRAPH_CLI_CLIENT_ID.to_string());
        let mut user_cred: Option<Arc<UserCredential>> = None;
        let (credential, scopes): (
            Arc<dyn azure_core::credentials::TokenCredential>,
            Vec<String>,
        ) = match how.auth {
            AuthMethod::AzureCli => (
                signin::azure_cli(tenant).map_err(|e| super::add::sign_in_failed(&e))?,
                vec![format!("{}/.default", endpoints.graph_resource)],
            ),
            method => {
                let mut opts = SignInOptions::graph(
                    endpoints.login.clone(),
                    tenant,
                    &client_id,
                    &endpoints.graph_resource,
                );
                opts.method = method;
                opts.known_tenant = known.map(|r| r.tenant_id);
                let scopes = opts.scopes.clone();
                let c = UserCredential::new(http.clone(), opts, secrets, observer);
                user_cred = Some(c.clone());
                (c, scopes)
            }
        };
        let meter = RequestMeter::new();
        let graph = GraphClient::new(
            http.clone(),
            endpoints.clone(),
            credential,
            scopes,
            RetryPolicy::default().scaled(scale),
            meter.clone(),
        );
        let verifier = AzureVerifier::new(&http, endpoints.login.clone(), meter.clone());
        Ok(Session {
            http,
            endpoints,
            graph,
            verifier,
            meter,
            user_cred,
            scale,
        })
    }
}
