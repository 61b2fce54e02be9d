//! The 15 application permissions Hal's collector needs (the guide's Step 4), and how they map
//! onto a tenant: role IDs are looked up by value in the resource service principals'
//! `appRoles` of *this* tenant, never trusted from constants.

use std::collections::BTreeSet;

use crate::microsoft::graph::directory::{GRAPH_APP_ID, Grant, O365_MANAGEMENT_APP_ID};
use crate::microsoft::graph::model::{
    AppRoleAssignment, RequiredResourceAccess, ResourceAccess, ServicePrincipal,
};

/// The APIs Hal reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    /// Office 365 Management APIs (M365 audit logs).
    O365Management,
    /// Microsoft Graph (sign-ins, risk, security alerts, directory audits).
    Graph,
}

impl Resource {
    pub fn app_id(self) -> &'static str {
        match self {
            Resource::O365Management => O365_MANAGEMENT_APP_ID,
            Resource::Graph => GRAPH_APP_ID,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Resource::O365Management => "Office 365 Management APIs",
            Resource::Graph => "Microsoft Graph",
        }
    }
    /// The prefix in `TenantRecord::granted_permissions`.
    pub fn key(self) -> &'static str {
        match self {
            Resource::O365Management => "office365-management",
            Resource::Graph => "graph",
        }
    }
}

/// (resource, permission value) in the guide's order.
pub const REQUIRED: [(Resource, &str); 15] = [
    (Resource::O365Management, "ActivityFeed.Read"),
    (Resource::O365Management, "ActivityFeed.ReadDlp"),
    (Resource::O365Management, "ServiceHealth.Read"),
    (Resource::Graph, "Application.Read.All"),
    (Resource::Graph, "AuditLog.Read.All"),
    (Resource::Graph, "Directory.Read.All"),
    (Resource::Graph, "IdentityRiskEvent.Read.All"),
    (Resource::Graph, "IdentityRiskyUser.Read.All"),
    (Resource::Graph, "MailboxSettings.Read"),
    (Resource::Graph, "Policy.Read.All"),
    (Resource::Graph, "Reports.Read.All"),
    (Resource::Graph, "RoleManagement.Read.Directory"),
    (Resource::Graph, "SecurityAlert.Read.All"),
    (Resource::Graph, "SecurityIncident.Read.All"),
    (Resource::Graph, "User.Read.All"),
];

pub fn required_for(r: Resource) -> impl Iterator<Item = &'static str> {
    REQUIRED
        .iter()
        .filter(move |(res, _)| *res == r)
        .map(|(_, v)| *v)
}

/// A required permission as it exists in this tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPermission {
    pub resource: Resource,
    pub value: &'static str,
    pub app_role_id: String,
    /// The resource's service principal object ID in this tenant.
    pub resource_sp_id: String,
}

impl ResolvedPermission {
    pub fn key(&self) -> String {
        format!("{}/{}", self.resource.key(), self.value)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("the tenant has no service principal for {}", .0.name())]
    NoServicePrincipal(Resource),
    #[error("{} in this tenant offers no application permission {value}", .resource.name())]
    NoRole { resource: Resource, value: String },
}

/// Looks up the 15 role IDs in the resource service principals' `appRoles`.
pub fn resolve(
    graph: Option<&ServicePrincipal>,
    o365: Option<&ServicePrincipal>,
) -> Result<Vec<ResolvedPermission>, ResolveError> {
    REQUIRED
        .iter()
        .map(|&(resource, value)| {
            let sp = match resource {
                Resource::Graph => graph,
                Resource::O365Management => o365,
            }
            .ok_or(ResolveError::NoServicePrincipal(resource))?;
            let role = sp
                .app_roles
                .iter()
                .find(|r| {
                    r.value.as_deref() == Some(value)
                        && r.is_enabled
                        && (r.allowed_member_types.is_empty()
                            || r.allowed_member_types.iter().any(|t| t == "Application"))
                })
                .ok_or_else(|| ResolveError::NoRole {
                    resource,
                    value: value.to_string(),
                })?;
            Ok(ResolvedPermission {
                resource,
                value,
                app_role_id: role.id.clone(),
                resource_sp_id: sp.id.clone(),
            })
        })
        .collect()
}

/// The app registration's `requiredResourceAccess` for exactly these permissions.
pub fn required_resource_access(perms: &[ResolvedPermission]) -> Vec<RequiredResourceAccess> {
    [Resource::O365Management, Resource::Graph]
        .into_iter()
        .map(|r| RequiredResourceAccess {
            resource_app_id: r.app_id().to_string(),
            resource_access: perms
                .iter()
                .filter(|p| p.resource == r)
                .map(|p| ResourceAccess {
                    id: p.app_role_id.clone(),
                    kind: "Role".into(),
                })
                .collect(),
        })
        .collect()
}

fn rra_set(rra: &[RequiredResourceAccess]) -> BTreeSet<(String, String, String)> {
    rra.iter()
        .flat_map(|r| {
            r.resource_access.iter().map(move |a| {
                (
                    r.resource_app_id.to_lowercase(),
                    a.id.to_lowercase(),
                    a.kind.clone(),
                )
            })
        })
        .collect()
}

/// How an app's `requiredResourceAccess` differs from the wanted one, in words
/// (empty when it matches exactly).
pub fn rra_drift(have: &[RequiredResourceAccess], perms: &[ResolvedPermission]) -> Vec<String> {
    let want = rra_set(&required_resource_access(perms));
    let got = rra_set(have);
    let mut out = Vec::new();
    for p in perms {
        let k = (
            p.resource.app_id().to_lowercase(),
            p.app_role_id.to_lowercase(),
            "Role".to_string(),
        );
        if !got.contains(&k) {
            out.push(format!("add {} {}", p.resource.name(), p.value));
        }
    }
    let extra = got.difference(&want).count();
    if extra > 0 {
        out.push(format!("remove {extra} permission(s) Hal does not use"));
    }
    out
}

/// The permissions not yet granted to the principal.
pub fn missing_grants<'a>(
    perms: &'a [ResolvedPermission],
    have: &[AppRoleAssignment],
) -> Vec<&'a ResolvedPermission> {
    perms
        .iter()
        .filter(|p| {
            !have.iter().any(|a| {
                a.app_role_id.eq_ignore_ascii_case(&p.app_role_id)
                    && a.resource_id.eq_ignore_ascii_case(&p.resource_sp_id)
            })
        })
        .collect()
}

pub fn grant(p: &ResolvedPermission) -> Grant {
    Grant {
        resource_id: p.resource_sp_id.clone(),
        app_role_id: p.app_role_id.clone(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::microsoft::graph::model::AppRole;

    /// Resource service principals with made-up role IDs (lookups must go by value).
    pub fn resource_sps() -> (ServicePrincipal, ServicePrincipal) {
        let sp = |id: &str, app: &str, r: Resource, extra: &[&'static str]| ServicePrincipal {
            id: id.into(),
            app_id: app.into(),
            display_name: Some(r.name().into()),
            app_roles: required_for(r)
                .chain(extra.iter().copied())
                .enumerate()
                .map(|(i, v)| AppRole {
                    id: format!("{}-role-{i}", r.key()),
                    value: Some(v.into()),
                    allowed_member_types: vec!["Application".into()],
                    is_enabled: true,
                })
                .collect(),
        };
        (
            sp("sp-graph", GRAPH_APP_ID, Resource::Graph, &["Mail.Read"]),
            sp(
                "sp-o365",
                O365_MANAGEMENT_APP_ID,
                Resource::O365Management,
                &[],
            ),
        )
    }

    #[test]
    fn resolves_by_value_and_detects_drift() {
        let (g, o) = resource_sps();
        let perms = resolve(Some(&g), Some(&o)).unwrap();
        assert_eq!(perms.len(), 15);
        assert_eq!(
            perms
                .iter()
                .filter(|p| p.resource == Resource::Graph)
                .count(),
            12
        );
        let rra = required_resource_access(&perms);
        assert!(rra_drift(&rra, &perms).is_empty());
        let mut drifted = rra.clone();
        drifted[1].resource_access.remove(0);
        drifted[0].resource_access.push(ResourceAccess {
            id: "x".into(),
            kind: "Scope".into(),
        });
        let d = rra_drift(&drifted, &perms);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].contains("Application.Read.All"));
        assert_eq!(
            resolve(Some(&g), None).unwrap_err(),
            ResolveError::NoServicePrincipal(Resource::O365Management)
        );
    }
}
