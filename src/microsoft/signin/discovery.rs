//! Which cloud a tenant lives in, and whether it exists at all, from its OpenID configuration
//! (`{authority}/{tenant}/v2.0/.well-known/openid-configuration`), read once before any
//! sign-in. Microsoft's public authority answers for every tenant of the global and US
//! Government clouds and names the cloud in three fields (docs/clouds.md gives the sources):
//!
//! | cloud | `cloud_instance_name` | `tenant_region_scope` | `tenant_region_sub_scope` |
//! |---|---|---|---|
//! | commercial | `microsoftonline.com` | `NA`, `EU`, `AS`, `OC`, `SA`, `AF`, `WW`, … | — |
//! | GCC | `microsoftonline.com` | `NA` | `GCC` |
//! | GCC High | `microsoftonline.us` | `USGov` (or `USG`) | `DODCON` |
//! | DoD | `microsoftonline.us` | `USGov` (or `USG`) | `DOD` |
//! | 21Vianet | `partner.microsoftonline.cn` | — | — |
//!
//! An unknown tenant is answered `400 invalid_tenant` AADSTS90002.

use serde::Deserialize;
use url::Url;
use uuid::Uuid;

use crate::cloud::Cloud;

/// Microsoft's public authority, where every tenant's discovery starts.
pub const PUBLIC_AUTHORITY: &str = "https://login.microsoftonline.com/";
/// 21Vianet's authority: the public one does not know China's tenants.
pub const CHINA_AUTHORITY: &str = "https://login.chinacloudapi.cn/";

/// What the tenant's OpenID configuration says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantCloud {
    pub tenant_id: Uuid,
    pub cloud: Cloud,
    /// The fields the cloud was read from, for `-v` and for messages.
    pub instance: String,
    pub region_scope: Option<String>,
    pub region_sub_scope: Option<String>,
}

impl TenantCloud {
    /// "GCC (tenant_region_sub_scope GCC)": what was found, in the technician's words.
    pub fn describe(&self) -> String {
        let mut why = vec![format!("cloud_instance_name {}", self.instance)];
        if let Some(r) = &self.region_scope {
            why.push(format!("tenant_region_scope {r}"));
        }
        if let Some(s) = &self.region_sub_scope {
            why.push(format!("tenant_region_sub_scope {s}"));
        }
        // One pair of parentheses: "GCC (US Government Community Cloud; cloud_instance_name …)".
        let name = cloud_name(self.cloud);
        match name.strip_suffix(')') {
            Some(open) => format!("{open}; {})", why.join(", ")),
            None => format!("{name} ({})", why.join(", ")),
        }
    }
}

/// The cloud's name as Microsoft's documents call it.
pub fn cloud_name(c: Cloud) -> &'static str {
    match c {
        Cloud::Global => "the commercial cloud",
        Cloud::Gcc => "GCC (US Government Community Cloud)",
        Cloud::Usgov => "GCC High (Microsoft Cloud for US Government)",
        Cloud::UsgovDod => "DoD (Microsoft Cloud for US Government, DoD)",
        Cloud::China => "Microsoft 365 operated by 21Vianet",
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("Microsoft knows no tenant named {tenant}")]
    NoSuchTenant {
        tenant: String,
        /// A likely intended name (`contoso.onmicrosoft.com` for `contoso.com`).
        suggestion: Option<String>,
    },
    #[error("cannot reach the Microsoft sign-in service at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the OpenID configuration of {tenant} is unreadable: {detail}")]
    Unreadable { tenant: String, detail: String },
    #[error("{tenant} is in a cloud hal-onboard does not know (cloud_instance_name {instance})")]
    UnknownCloud { tenant: String, instance: String },
    #[error("{tenant} is in {found}, not in {asked} as --cloud {flag} says")]
    CloudMismatch {
        tenant: String,
        found: String,
        asked: &'static str,
        flag: Cloud,
        found_cloud: Cloud,
    },
}

impl DiscoveryError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            DiscoveryError::NoSuchTenant {
                suggestion: Some(s),
                ..
            } => format!(
                "Check the spelling: did you mean {s}? Give a verified domain of the customer's tenant or its tenant ID (GUID)."
            ),
            DiscoveryError::NoSuchTenant { .. } => "Check the spelling: give a verified domain of the customer's tenant (contoso.onmicrosoft.com) or its tenant ID (GUID).".into(),
            DiscoveryError::Unreachable { .. } => "Check the network, HTTPS_PROXY and HAL_ONBOARD_CA_CERT, then run the command again.".into(),
            DiscoveryError::Unreadable { .. } => "Run the command again; if it persists, check HAL_ONBOARD_LOGIN_URL and any proxy in between.".into(),
            DiscoveryError::UnknownCloud { .. } => "Pass --cloud with the tenant's cloud (global, gcc, usgov, usgov-dod, china).".into(),
            DiscoveryError::CloudMismatch { found_cloud, .. } => format!(
                "Drop --cloud (the tenant's own configuration decides), or pass --cloud {found_cloud}."
            ),
        })
    }

    /// Bad usage (exit 2): a name that is not a tenant, a flag that contradicts Microsoft.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            DiscoveryError::NoSuchTenant { .. } | DiscoveryError::CloudMismatch { .. }
        )
    }
}

#[derive(Deserialize)]
struct Document {
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    token_endpoint: Option<String>,
    #[serde(default)]
    cloud_instance_name: Option<String>,
    #[serde(default)]
    tenant_region_scope: Option<String>,
    #[serde(default)]
    tenant_region_sub_scope: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_codes: Vec<u64>,
    #[serde(default)]
    error_description: String,
}

/// The cloud the three fields name; `None` for an instance hal-onboard does not know.
pub fn cloud_from(instance: &str, region: Option<&str>, sub: Option<&str>) -> Option<Cloud> {
    let eq = |a: Option<&str>, b: &str| a.is_some_and(|a| a.eq_ignore_ascii_case(b));
    let instance = instance.trim().to_ascii_lowercase();
    let us = instance == "microsoftonline.us" || eq(region, "USGov") || eq(region, "USG");
    if eq(sub, "DOD") {
        return Some(Cloud::UsgovDod);
    }
    if eq(sub, "DODCON") || us {
        return Some(Cloud::Usgov);
    }
    match instance.as_str() {
        "partner.microsoftonline.cn" | "chinacloudapi.cn" => Some(Cloud::China),
        "microsoftonline.com" | "" if eq(sub, "GCC") => Some(Cloud::Gcc),
        "microsoftonline.com" | "" => Some(Cloud::Global),
        _ => None,
    }
}

/// A likely intended name for one Microsoft does not know: a custom domain's initial
/// `.onmicrosoft.com` domain (the usual first try), nothing for a GUID or an initial domain.
pub fn suggest(tenant: &str) -> Option<String> {
    let t = tenant.trim().to_ascii_lowercase();
    if Uuid::parse_str(&t).is_ok() || t.contains(".onmicrosoft.") || t.ends_with(".onmschina.cn") {
        return None;
    }
    let first = t.split('.').next().filter(|l| !l.is_empty())?;
    Some(format!("{first}.onmicrosoft.com"))
}

/// Reads `tenant`'s OpenID configuration at `authority` (one GET). `fallback_china`: when the
/// public authority does not know the tenant, ask 21Vianet's (a second GET, only then).
pub async fn discover(
    http: &reqwest::Client,
    authority: &Url,
    tenant: &str,
    fallback_china: bool,
) -> Result<TenantCloud, DiscoveryError> {
    match discover_at(http, authority, tenant).await {
        Err(DiscoveryError::NoSuchTenant { .. }) if fallback_china => {
            let china = Url::parse(CHINA_AUTHORITY).expect("built-in authority");
            discover_at(http, &china, tenant).await
        }
        r => r,
    }
}

async fn discover_at(
    http: &reqwest::Client,
    authority: &Url,
    tenant: &str,
) -> Result<TenantCloud, DiscoveryError> {
    let mut base = authority.clone();
    if !base.path().ends_with('/') {
        let p = format!("{}/", base.path());
        base.set_path(&p);
    }
    let url = base
        .join(&format!("{tenant}/v2.0/.well-known/openid-configuration"))
        .map_err(|e| DiscoveryError::Unreadable {
            tenant: tenant.to_string(),
            detail: e.to_string(),
        })?;
    let unreachable = |source| DiscoveryError::Unreachable {
        url: authority.to_string(),
        source,
    };
    let rsp = http.get(url).send().await.map_err(unreachable)?;
    let status = rsp.status();
    let body = rsp.bytes().await.map_err(unreachable)?;
    let unreadable = |detail: String| DiscoveryError::Unreadable {
        tenant: tenant.to_string(),
        detail,
    };
    if !status.is_success() {
        let err: Option<ErrorBody> = serde_json::from_slice(&body).ok();
        let unknown = err.as_ref().is_some_and(|e| {
            e.error == "invalid_tenant"
                || e.error_codes.contains(&90002)
                || e.error_description.contains("AADSTS90002")
        });
        // A 400 (or 404) for a tenant path is Microsoft saying there is no such tenant.
        if unknown || status.as_u16() == 400 || status.as_u16() == 404 {
            return Err(DiscoveryError::NoSuchTenant {
                tenant: tenant.to_string(),
                suggestion: suggest(tenant),
            });
        }
        return Err(unreadable(format!("HTTP {status}")));
    }
    let doc: Document =
        serde_json::from_slice(&body).map_err(|e| unreadable(format!("not JSON: {e}")))?;
    let tenant_id = doc
        .issuer
        .as_deref()
        .or(doc.token_endpoint.as_deref())
        .and_then(|u| Url::parse(u).ok())
        .and_then(|u| {
            u.path_segments()
                .into_iter()
                .flatten()
                .find_map(|s| Uuid::parse_str(s).ok())
        })
        .ok_or_else(|| unreadable("no tenant ID in its issuer".into()))?;
    let instance = doc.cloud_instance_name.unwrap_or_default();
    let region = doc.tenant_region_scope.filter(|s| !s.is_empty());
    let sub = doc.tenant_region_sub_scope.filter(|s| !s.is_empty());
    let cloud = cloud_from(&instance, region.as_deref(), sub.as_deref()).ok_or_else(|| {
        DiscoveryError::UnknownCloud {
            tenant: tenant.to_string(),
            instance: instance.clone(),
        }
    })?;
    Ok(TenantCloud {
        tenant_id,
        cloud,
        instance,
        region_scope: region,
        region_sub_scope: sub,
    })
}

/// The cloud to use: what Microsoft says, and `--cloud` only where it agrees (or where the
/// discovery could not tell, which [`discover`] reports as an error before this).
pub fn reconcile(
    tenant: &str,
    found: &TenantCloud,
    flag: Option<Cloud>,
) -> Result<Cloud, DiscoveryError> {
    match flag {
        Some(f) if f != found.cloud => Err(DiscoveryError::CloudMismatch {
            tenant: tenant.to_string(),
            found: found.describe(),
            asked: cloud_name(f),
            flag: f,
            found_cloud: found.cloud,
        }),
        _ => Ok(found.cloud),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cloud_from_its_documented_fields() {
        let c = |i, r, s| cloud_from(i, r, s);
        assert_eq!(
            c("microsoftonline.com", Some("NA"), None),
            Some(Cloud::Global)
        );
        assert_eq!(
            c("microsoftonline.com", Some("EU"), None),
            Some(Cloud::Global)
        );
        assert_eq!(
            c("microsoftonline.com", Some("NA"), Some("GCC")),
            Some(Cloud::Gcc)
        );
        assert_eq!(
            c("microsoftonline.us", Some("USGov"), Some("DODCON")),
            Some(Cloud::Usgov)
        );
        assert_eq!(
            c("microsoftonline.us", Some("USG"), None),
            Some(Cloud::Usgov)
        );
        assert_eq!(
            c("microsoftonline.us", Some("USGov"), Some("DOD")),
            Some(Cloud::UsgovDod)
        );
        assert_eq!(
            c("partner.microsoftonline.cn", None, None),
            Some(Cloud::China)
        );
        assert_eq!(c("microsoftonline.de", Some("DE"), None), None);
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("contoso.com").as_deref(),
            Some("contoso.onmicrosoft.com")
        );
        assert_eq!(suggest("contoso.onmicrosoft.com"), None);
        assert_eq!(suggest("6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b"), None);
    }

    #[test]
    fn a_flag_that_disagrees_names_both() {
        let found = TenantCloud {
            tenant_id: Uuid::nil(),
            cloud: Cloud::Gcc,
            instance: "microsoftonline.com".into(),
            region_scope: Some("NA".into()),
            region_sub_scope: Some("GCC".into()),
        };
        assert_eq!(reconcile("t", &found, None).unwrap(), Cloud::Gcc);
        assert_eq!(
            reconcile("t", &found, Some(Cloud::Gcc)).unwrap(),
            Cloud::Gcc
        );
        let e = reconcile("t", &found, Some(Cloud::Global)).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("GCC") && text.contains("commercial"),
            "{text}"
        );
        assert!(e.is_usage());
        assert!(e.hint().unwrap().contains("--cloud gcc"));
    }
}
