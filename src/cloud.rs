//! The national clouds and their endpoints.
//!
//! Each Microsoft 365 tenant lives in exactly one cloud, and a token from one cloud's sign-in
//! service is useless in another, so every far end is derived from one `Cloud` value recorded
//! per tenant. Hosts come from Microsoft's "national cloud deployments" pages for Microsoft
//! Graph, Exchange Online PowerShell and the Office 365 Management Activity API; GCC's own
//! Management Activity API root is in that API's reference (docs/clouds.md lists the sources).

use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use url::Url;

/// A Microsoft cloud instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cloud {
    /// Microsoft's global service (commercial).
    #[default]
    Global,
    /// US Government Community Cloud (moderate): the global service's sign-in, Graph and
    /// Exchange, but its own Office 365 Management Activity API root.
    Gcc,
    /// Microsoft Cloud for US Government, GCC High.
    Usgov,
    /// Microsoft Cloud for US Government, DoD.
    UsgovDod,
    /// Microsoft 365 operated by 21Vianet in China.
    China,
}

impl Cloud {
    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Global => "global",
            Cloud::Gcc => "gcc",
            Cloud::Usgov => "usgov",
            Cloud::UsgovDod => "usgov-dod",
            Cloud::China => "china",
        }
    }

    /// Microsoft Entra ID sign-in host.
    pub fn login_host(self) -> &'static str {
        match self {
            Cloud::Global | Cloud::Gcc => "https://login.microsoftonline.com",
            Cloud::Usgov | Cloud::UsgovDod => "https://login.microsoftonline.us",
            Cloud::China => "https://login.chinacloudapi.cn",
        }
    }

    /// Microsoft Graph service root (without the version segment).
    pub fn graph_host(self) -> &'static str {
        match self {
            Cloud::Global | Cloud::Gcc => "https://graph.microsoft.com",
            Cloud::Usgov => "https://graph.microsoft.us",
            Cloud::UsgovDod => "https://dod-graph.microsoft.us",
            Cloud::China => "https://microsoftgraph.chinacloudapi.cn",
        }
    }

    /// Exchange Online resource, the audience of the token `Connect-ExchangeOnline -AccessToken` takes.
    pub fn exchange_resource(self) -> &'static str {
        match self {
            Cloud::Global | Cloud::Gcc => "https://outlook.office365.com",
            Cloud::Usgov => "https://outlook.office365.us",
            Cloud::UsgovDod => "https://webmail.apps.mil",
            Cloud::China => "https://partner.outlook.cn",
        }
    }

    /// `-ExchangeEnvironmentName` for Connect-ExchangeOnline.
    pub fn exchange_environment(self) -> &'static str {
        match self {
            Cloud::Global | Cloud::Gcc => "O365Default",
            Cloud::Usgov => "O365USGovGCCHigh",
            Cloud::UsgovDod => "O365USGovDoD",
            Cloud::China => "O365China",
        }
    }

    /// Office 365 Management APIs resource, the audience Hal's collector asks tokens for, and
    /// the Activity API's root (`{root}/api/v1.0/{tenant}/activity/feed/...`): Microsoft names
    /// the same host for both in every plan.
    pub fn manage_resource(self) -> &'static str {
        match self {
            Cloud::Global => "https://manage.office.com",
            Cloud::Gcc => "https://manage-gcc.office.com",
            Cloud::Usgov => "https://manage.office365.us",
            Cloud::UsgovDod => "https://manage.protection.apps.mil",
            Cloud::China => "https://manage.office365.cn",
        }
    }
}

impl std::fmt::Display for Cloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where this run talks to: the cloud's hosts, unless an override says otherwise.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub cloud: Cloud,
    /// Sign-in authority host, e.g. `https://login.microsoftonline.com/`.
    pub login: Url,
    /// Graph service root, e.g. `https://graph.microsoft.com/`. Paths are joined as `v1.0/...`.
    pub graph: Url,
    /// Token audience for Microsoft Graph (`{graph}/.default` scopes use the cloud's Graph host
    /// even when the requests go to an override, as tokens are minted for the real resource).
    pub graph_resource: String,
    pub exchange_resource: String,
    pub manage_resource: String,
    /// Office 365 Management Activity API root: the cloud's (`manage_resource`) unless
    /// `HAL_ONBOARD_MANAGE_URL` says otherwise; tokens keep the cloud's audience.
    pub manage: Url,
}

impl Endpoints {
    /// The cloud's own hosts, with the `HAL_ONBOARD_LOGIN_URL` / `HAL_ONBOARD_GRAPH_URL` overrides applied.
    pub fn new(cloud: Cloud, login_override: Option<&Url>, graph_override: Option<&Url>) -> Self {
        let parse = |s: &str| Url::parse(&format!("{s}/")).expect("built-in host is a URL");
        Endpoints {
            cloud,
            login: login_override
                .map(with_trailing_slash)
                .unwrap_or_else(|| parse(cloud.login_host())),
            graph: graph_override
                .map(with_trailing_slash)
                .unwrap_or_else(|| parse(cloud.graph_host())),
            graph_resource: cloud.graph_host().to_string(),
            exchange_resource: cloud.exchange_resource().to_string(),
            manage_resource: cloud.manage_resource().to_string(),
            manage: parse(cloud.manage_resource()),
        }
    }

    /// With the `HAL_ONBOARD_MANAGE_URL` override applied.
    pub fn with_manage(mut self, manage_override: Option<&Url>) -> Self {
        if let Some(m) = manage_override {
            self.manage = with_trailing_slash(m);
        }
        self
    }

    /// `{manage}/api/v1.0/{tenant_id}/activity/feed/{operation}`.
    pub fn manage_url(&self, tenant_id: &str, operation: &str) -> Url {
        self.manage
            .join(&format!("api/v1.0/{tenant_id}/activity/feed/{operation}"))
            .expect("manage path joins")
    }

    /// `{graph}/v1.0/{path}`.
    pub fn graph_url(&self, path: &str) -> Url {
        self.graph
            .join(&format!("v1.0/{}", path.trim_start_matches('/')))
            .expect("graph path joins")
    }

    /// `{login}/{tenant}/oauth2/v2.0/{endpoint}`.
    pub fn oauth_url(&self, tenant: &str, endpoint: &str) -> Url {
        self.login
            .join(&format!("{tenant}/oauth2/v2.0/{endpoint}"))
            .expect("oauth path joins")
    }
}

/// `Url::join` drops the last path segment without it, and overrides often carry a path.
fn with_trailing_slash(u: &Url) -> Url {
    let mut u = u.clone();
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_with_path_keeps_it() {
        let g = Url::parse("https://127.0.0.1:8443/graph").unwrap();
        let e = Endpoints::new(Cloud::Global, None, Some(&g));
        assert_eq!(
            e.graph_url("/organization").as_str(),
            "https://127.0.0.1:8443/graph/v1.0/organization"
        );
        assert_eq!(e.graph_resource, "https://graph.microsoft.com");
    }

    #[test]
    fn national_clouds_have_their_own_hosts() {
        let e = Endpoints::new(Cloud::UsgovDod, None, None);
        assert_eq!(
            e.oauth_url("contoso.onmicrosoft.us", "token").as_str(),
            "https://login.microsoftonline.us/contoso.onmicrosoft.us/oauth2/v2.0/token"
        );
        assert_eq!(
            e.graph_url("applications").as_str(),
            "https://dod-graph.microsoft.us/v1.0/applications"
        );
        assert_eq!(
            Cloud::China.manage_resource(),
            "https://manage.office365.cn"
        );
    }

    #[test]
    fn gcc_signs_in_publicly_but_has_its_own_management_root() {
        let e = Endpoints::new(Cloud::Gcc, None, None);
        assert_eq!(e.login.as_str(), "https://login.microsoftonline.com/");
        assert_eq!(e.graph_resource, "https://graph.microsoft.com");
        assert_eq!(e.exchange_resource, "https://outlook.office365.com");
        assert_eq!(Cloud::Gcc.exchange_environment(), "O365Default");
        assert_eq!(e.manage_resource, "https://manage-gcc.office.com");
        assert_eq!(
            e.manage_url("t1", "subscriptions/list").as_str(),
            "https://manage-gcc.office.com/api/v1.0/t1/activity/feed/subscriptions/list"
        );
        let o = Url::parse("https://127.0.0.1:9/manage").unwrap();
        let e = e.with_manage(Some(&o));
        assert_eq!(
            e.manage_url("t1", "subscriptions/list").as_str(),
            "https://127.0.0.1:9/manage/api/v1.0/t1/activity/feed/subscriptions/list"
        );
        assert_eq!(e.manage_resource, "https://manage-gcc.office.com");
        assert_eq!(Cloud::Gcc.as_str(), "gcc");
        assert_eq!(serde_json::to_string(&Cloud::Gcc).unwrap(), "\"gcc\"");
    }
}
