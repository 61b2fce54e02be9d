//! The Graph calls `partner setup` needs in the MSP's own tenant: the partner app (a
//! multi-tenant public client), resource service principals with their delegated permissions
//! (`oauth2PermissionScopes`), and delegated permission grants (`/oauth2PermissionGrants`,
//! "Create oAuth2PermissionGrant" / "Update a delegated permission grant", Microsoft Graph
//! v1.0 reference).

use serde::Deserialize;
use serde_json::{Value, json};

use super::model::{Collection, RequiredResourceAccess};
use super::{GraphClient, GraphError, GraphRequest};

/// An app registration with what makes it a public client.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicApp {
    pub id: String,
    pub app_id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub sign_in_audience: Option<String>,
    #[serde(default)]
    pub is_fallback_public_client: Option<bool>,
    #[serde(default)]
    pub public_client: Option<PublicClient>,
    #[serde(default)]
    pub required_resource_access: Vec<RequiredResourceAccess>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicClient {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
}

/// One delegated permission a resource exposes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionScope {
    pub id: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default = "yes")]
    pub is_enabled: bool,
}

fn yes() -> bool {
    true
}

/// A service principal with its delegated permissions.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopedPrincipal {
    pub id: String,
    pub app_id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub oauth2_permission_scopes: Vec<PermissionScope>,
}

impl ScopedPrincipal {
    /// The id of the enabled delegated permission named `value`.
    pub fn scope_id(&self, value: &str) -> Option<&str> {
        self.oauth2_permission_scopes
            .iter()
            .find(|s| s.is_enabled && s.value.as_deref() == Some(value))
            .map(|s| s.id.as_str())
    }
}

/// An `oAuth2PermissionGrant`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DelegatedGrant {
    pub id: String,
    pub client_id: String,
    pub consent_type: String,
    #[serde(default)]
    pub principal_id: Option<String>,
    pub resource_id: String,
    #[serde(default)]
    pub scope: Option<String>,
}

impl DelegatedGrant {
    pub fn scopes(&self) -> Vec<&str> {
        self.scope
            .as_deref()
            .unwrap_or("")
            .split_whitespace()
            .collect()
    }
}

const PUBLIC_APP_SELECT: &str = "id,appId,displayName,tags,signInAudience,isFallbackPublicClient,publicClient,requiredResourceAccess";

fn quote(s: &str) -> String {
    s.replace('\'', "''")
}

impl GraphClient {
    /// The app registrations named `name`.
    pub async fn public_apps_named(&self, name: &str) -> Result<Vec<PublicApp>, GraphError> {
        Ok(self
            .get(&format!(
                "applications?$filter=displayName eq '{}'&$select={PUBLIC_APP_SELECT}",
                quote(name)
            ))
            .await?
            .parse::<Collection<PublicApp>>("applications")?
            .value)
    }

    /// The service principal of `app_id` in this tenant, with its delegated permissions.
    pub async fn scoped_principal(
        &self,
        app_id: &str,
    ) -> Result<Option<ScopedPrincipal>, GraphError> {
        Ok(self
            .get(&format!(
                "servicePrincipals?$filter=appId eq '{}'&$select=id,appId,displayName,oauth2PermissionScopes",
                quote(app_id)
            ))
            .await?
            .parse::<Collection<ScopedPrincipal>>("servicePrincipals")?
            .value
            .into_iter()
            .next())
    }

    /// Every delegated permission grant whose client is `client_id` (a service principal).
    pub async fn delegated_grants(
        &self,
        client_id: &str,
    ) -> Result<Vec<DelegatedGrant>, GraphError> {
        Ok(self
            .get(&format!(
                "oauth2PermissionGrants?$filter=clientId eq '{}'",
                quote(client_id)
            ))
            .await?
            .parse::<Collection<DelegatedGrant>>("oauth2PermissionGrants")?
            .value)
    }

    /// Admin consent for every user (`AllPrincipals`): `scope` of `resource_id` to `client_id`.
    /// A new client principal may not have replicated yet: that is waited out.
    pub async fn grant_delegated(
        &self,
        client_id: &str,
        resource_id: &str,
        scope: &str,
    ) -> Result<DelegatedGrant, GraphError> {
        let body = json!({
            "clientId": client_id,
            "consentType": "AllPrincipals",
            "resourceId": resource_id,
            "scope": scope,
        });
        self.send(
            &GraphRequest::post("oauth2PermissionGrants", body)
                .replicating("the new service principal"),
        )
        .await?
        .parse("the new delegated permission grant")
    }

    /// Replaces a grant's scopes.
    pub async fn set_grant_scope(&self, grant_id: &str, scope: &str) -> Result<(), GraphError> {
        self.send(&GraphRequest::patch(
            format!("oauth2PermissionGrants/{grant_id}"),
            json!({ "scope": scope }),
        ))
        .await
        .map(|_| ())
    }

    /// Creates an application from `body` (POST /applications).
    pub async fn create_public_app(&self, body: &Value) -> Result<PublicApp, GraphError> {
        self.send(&GraphRequest::post("applications", body.clone()))
            .await?
            .parse("the new application")
    }
}
