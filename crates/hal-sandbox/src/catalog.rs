//! Well-known first-party applications and their real app role (application permission) IDs.
//!
//! IDs are Microsoft's published values: Microsoft Graph roles from the "Microsoft Graph
//! permissions reference" (learn.microsoft.com/graph/permissions-reference, the `Application`
//! column), which is what `GET /servicePrincipals(appId='00000003-0000-0000-c000-000000000000')`
//! returns in every tenant; Office 365 Management APIs roles from that service principal's
//! `appRoles` as listed in Microsoft's Office 365 Management Activity API getting-started guide
//! and public tenant dumps (ScubaGear's RiskyPermissions.json). A wrong ID here would hide a
//! wrong lookup in the wizard, so they are copied, not invented; a few permissions Hal does
//! *not* need are included on purpose so that a lookup by the wrong name shows.

/// Microsoft Graph's application ID (the same in every tenant).
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// Office 365 Management APIs' application ID.
pub const O365_MANAGEMENT_APP_ID: &str = "c5393580-f805-4401-95e8-94b7a6ef2fc2";
/// Office 365 Exchange Online's application ID.
pub const EXCHANGE_APP_ID: &str = "00000002-0000-0ff1-ce00-000000000000";
/// Windows Azure Service Management API (Azure Resource Manager)'s application ID: the resource
/// `az login` and azure-identity's developer credentials sign in to.
/// Microsoft Partner Center (`https://api.partnercenter.microsoft.com`).
pub const PARTNER_CENTER_APP_ID: &str = "fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbd";
pub const ARM_APP_ID: &str = "797f4846-ba00-4fd7-ba43-dac1f8f63013";
/// The public client ID of Microsoft Graph Command Line Tools (a first-party public client).
pub const GRAPH_CLI_CLIENT_ID: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";

/// (value, id, display name) of Microsoft Graph application permissions.
pub const GRAPH_APP_ROLES: &[(&str, &str, &str)] = &[
    // The 12 Hal needs.
    (
        "Application.Read.All",
        "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
        "Read all applications",
    ),
    (
        "AuditLog.Read.All",
        "b0afded3-3588-46d8-8b3d-9842eff778da",
        "Read all audit log data",
    ),
    (
        "Directory.Read.All",
        "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
        "Read directory data",
    ),
    (
        "IdentityRiskEvent.Read.All",
        "6e472fd1-ad78-48da-a0f0-97ab2c6b769e",
        "Read all identity risk event information",
    ),
    (
        "IdentityRiskyUser.Read.All",
        "dc5007c0-2d7d-4c42-879c-2dab87571379",
        "Read all identity risky user information",
    ),
    (
        "MailboxSettings.Read",
        "40f97065-369a-49f4-947c-6a255697ae91",
        "Read all user mailbox settings",
    ),
    (
        "Policy.Read.All",
        "246dd0d5-5bd0-4def-940b-0421030a5b68",
        "Read your organization's policies",
    ),
    (
        "Reports.Read.All",
        "230c1aed-a721-4c5d-9cb4-a90514e508ef",
        "Read all usage reports",
    ),
    (
        "RoleManagement.Read.Directory",
        "483bed4a-2ad3-4361-a73b-c83ccdbdc53c",
        "Read all directory RBAC settings",
    ),
    (
        "SecurityAlert.Read.All",
        "472e4a4d-bb4a-4026-98d1-0b0d74cb74a5",
        "Read all security alerts",
    ),
    (
        "SecurityIncident.Read.All",
        "45cc0394-e837-488b-a098-1918f48d186c",
        "Read all security incidents",
    ),
    (
        "User.Read.All",
        "df021288-bdef-4463-88db-98f22de89214",
        "Read all users' full profiles",
    ),
    // Others, so that a wrong lookup shows.
    (
        "Application.ReadWrite.All",
        "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
        "Read and write all applications",
    ),
    (
        "AppRoleAssignment.ReadWrite.All",
        "06b708a9-e830-4db3-a914-8e69da51d44f",
        "Manage app permission grants and app role assignments",
    ),
    (
        "Directory.ReadWrite.All",
        "19dbc75e-c2e2-444c-a770-ec69d8559fc7",
        "Read and write directory data",
    ),
    (
        "Group.Read.All",
        "5b567255-7703-4780-807c-7be8301ae99b",
        "Read all groups",
    ),
    (
        "Mail.Read",
        "810c84a8-4a9e-49e6-bf7d-12d183f40d01",
        "Read mail in all mailboxes",
    ),
    (
        "Organization.Read.All",
        "498476ce-e0fe-48b0-b801-37ba7e2685c6",
        "Read organization information",
    ),
    (
        "SecurityEvents.Read.All",
        "bf394140-e372-4bf9-a898-299cfc7564e5",
        "Read your organization's security events",
    ),
    (
        "User.ReadWrite.All",
        "741f803b-c850-494e-b5df-cde7c675a1ca",
        "Read and write all users' full profiles",
    ),
];

/// (value, id, display name) of Office 365 Management APIs application permissions.
pub const O365_MANAGEMENT_APP_ROLES: &[(&str, &str, &str)] = &[
    (
        "ActivityFeed.Read",
        "594c1fb6-4f81-4475-ae41-0c394909246c",
        "Read activity data for your organization",
    ),
    (
        "ActivityFeed.ReadDlp",
        "4807a72c-ad38-4250-94c9-4eabfe26cd55",
        "Read DLP policy events including detected sensitive data",
    ),
    (
        "ServiceHealth.Read",
        "e2cea78f-e743-4d8f-a16a-75b629a038ae",
        "Read service health information for your organization",
    ),
    (
        "ThreatIntelligence.Read",
        "17f1c501-83cd-414c-9064-cd10f7aef836",
        "Read threat intelligence data for your organization",
    ),
    (
        "ActivityReports.Read",
        "b3b78c39-cb1d-4d17-820a-25d9196a800e",
        "Read activity reports for your organization",
    ),
];

/// Microsoft's first-party public clients, present in every tenant: Microsoft Graph Command Line
/// Tools, Exchange Online PowerShell, Azure CLI, Azure PowerShell, Microsoft Office.
pub const FIRST_PARTY_PUBLIC_CLIENTS: &[&str] = &[
    GRAPH_CLI_CLIENT_ID,
    "fb78d390-0c51-40cd-8e17-fdbfab77341b",
    "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
    "1950a258-227b-4e31-a9cf-717495945fc2",
    "d3590ed6-52b3-4102-aeff-aad2292ab01c",
];

/// Microsoft Graph app roles Hal's collector needs (by value).
pub const HAL_GRAPH_ROLES: &[&str] = &[
    "Application.Read.All",
    "AuditLog.Read.All",
    "Directory.Read.All",
    "IdentityRiskEvent.Read.All",
    "IdentityRiskyUser.Read.All",
    "MailboxSettings.Read",
    "Policy.Read.All",
    "Reports.Read.All",
    "RoleManagement.Read.Directory",
    "SecurityAlert.Read.All",
    "SecurityIncident.Read.All",
    "User.Read.All",
];

/// Office 365 Management APIs app roles Hal's collector needs (by value).
pub const HAL_O365_ROLES: &[&str] = &[
    "ActivityFeed.Read",
    "ActivityFeed.ReadDlp",
    "ServiceHealth.Read",
];

/// Directory role template IDs (Microsoft Entra built-in roles reference).
pub const DIRECTORY_ROLES: &[(&str, &str)] = &[
    (
        "Global Administrator",
        "62e90394-69f5-4237-9190-012177145e10",
    ),
    (
        "Application Administrator",
        "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
    ),
    (
        "Cloud Application Administrator",
        "158c047a-c907-4556-b7ef-446551a6b5f7",
    ),
    (
        "Privileged Role Administrator",
        "e8611ab8-c189-46e8-94e1-60213ab1f814",
    ),
    ("Global Reader", "f2ef992c-3afb-46b9-b7cf-a126ee74c451"),
    (
        "Exchange Administrator",
        "29232cdf-9323-42fd-ade2-1d097af3e4de",
    ),
    ("Security Reader", "5d6b6bb7-de71-4623-b4af-96380a352509"),
    (
        "Compliance Administrator",
        "17315797-102d-40b4-93e0-432062caca18",
    ),
];

pub const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
pub const APPLICATION_ADMINISTRATOR: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
pub const CLOUD_APPLICATION_ADMINISTRATOR: &str = "158c047a-c907-4556-b7ef-446551a6b5f7";
pub const PRIVILEGED_ROLE_ADMINISTRATOR: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";

/// The template ID of a directory role by display name (case-insensitive).
pub fn role_template_id(name: &str) -> Option<&'static str> {
    DIRECTORY_ROLES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, id)| *id)
}

/// (skuPartNumber, skuId, service plan names) of the licences a scenario may list.
pub const SKUS: &[(&str, &str, &[&str])] = &[
    (
        "AAD_PREMIUM",
        "078d2b04-f1bd-4111-bbd4-b4b1b354cef4",
        &["AAD_PREMIUM", "MFA_PREMIUM"],
    ),
    (
        "AAD_PREMIUM_P2",
        "84a661c4-e949-4bd2-a560-ed7766fcaf2b",
        &["AAD_PREMIUM", "AAD_PREMIUM_P2", "MFA_PREMIUM"],
    ),
    (
        "ENTERPRISEPREMIUM",
        "c7df2760-2c81-4ef7-b578-5b5392b571df",
        &[
            "AAD_PREMIUM",
            "AAD_PREMIUM_P2",
            "EXCHANGE_S_ENTERPRISE",
            "M365_ADVANCED_AUDITING",
        ],
    ),
    (
        "SPE_E3",
        "05e9a617-0261-4cee-bb44-138d3ef5d965",
        &["AAD_PREMIUM", "EXCHANGE_S_ENTERPRISE", "MFA_PREMIUM"],
    ),
    (
        "SPE_E5",
        "06ebc4ee-1bb5-47dd-8120-11324bc54e06",
        &["AAD_PREMIUM", "AAD_PREMIUM_P2", "EXCHANGE_S_ENTERPRISE"],
    ),
    (
        "O365_BUSINESS_PREMIUM",
        "f245ecc8-75af-4f8e-b61f-27d8114de5f3",
        &["EXCHANGE_S_STANDARD"],
    ),
    (
        "SPB",
        "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46",
        &["AAD_PREMIUM", "EXCHANGE_S_STANDARD", "INTUNE_A"],
    ),
    (
        "EXCHANGESTANDARD",
        "4b9405b0-7788-4568-add1-99614e613b69",
        &["EXCHANGE_S_STANDARD"],
    ),
];

/// Resource URI → the first-party application ID that owns it (any national cloud host).
pub fn resource_app_id(resource: &str) -> Option<&'static str> {
    let r = resource.trim_end_matches('/').to_ascii_lowercase();
    match r.as_str() {
        "https://graph.microsoft.com"
        | "https://graph.microsoft.us"
        | "https://dod-graph.microsoft.us"
        | "https://microsoftgraph.chinacloudapi.cn"
        | GRAPH_APP_ID => Some(GRAPH_APP_ID),
        "https://manage.office.com"
        | "https://manage-gcc.office.com"
        | "https://manage.office365.us"
        | "https://manage.protection.apps.mil"
        | "https://manage.office365.cn"
        | O365_MANAGEMENT_APP_ID => Some(O365_MANAGEMENT_APP_ID),
        "https://outlook.office365.com"
        | "https://outlook.office365.us"
        | "https://webmail.apps.mil"
        | "https://partner.outlook.cn"
        | "https://outlook.office.com"
        | EXCHANGE_APP_ID => Some(EXCHANGE_APP_ID),
        "https://management.core.windows.net"
        | "https://management.azure.com"
        | "https://management.core.usgovcloudapi.net"
        | "https://management.usgovcloudapi.net"
        | "https://management.core.chinacloudapi.cn"
        | "https://management.chinacloudapi.cn"
        | ARM_APP_ID => Some(ARM_APP_ID),
        "https://api.partnercenter.microsoft.com" | PARTNER_CENTER_APP_ID => {
            Some(PARTNER_CENTER_APP_ID)
        }
        _ => None,
    }
}

/// Whether a token audience is Microsoft Graph.
pub fn is_graph_audience(aud: &str) -> bool {
    resource_app_id(aud) == Some(GRAPH_APP_ID)
}

/// (value, id) of delegated permissions (`oauth2PermissionScopes`) on the first-party
/// resources partner mode asks for. Microsoft's published ids: the Microsoft Graph permissions
/// reference (delegated column) and the resources' service principals as exported in public
/// tenant dumps (Office 365 Exchange Online's `Exchange.Manage`, Partner Center's
/// `user_impersonation`). What an `oauth2PermissionGrant`'s `scope` may name.
pub const GRAPH_DELEGATED_SCOPES: &[(&str, &str)] = &[
    (
        "Application.ReadWrite.All",
        "bdfbf15f-ee85-4955-8675-146e8e5296b5",
    ),
    (
        "AppRoleAssignment.ReadWrite.All",
        "84bccea3-f856-4a8a-967b-dbe0a3d53a64",
    ),
    (
        "DelegatedAdminRelationship.Read.All",
        "0c0064ea-477b-4130-82a5-4c2cc4ff68aa",
    ),
    (
        "DelegatedPermissionGrant.ReadWrite.All",
        "41ce6ca6-6826-4807-84f1-1c82854f7ee5",
    ),
    ("Directory.Read.All", "06da0dbc-49e2-44d2-8312-53f166ab848a"),
    (
        "GroupMember.Read.All",
        "bc024368-1153-4739-b217-4326f2e966d0",
    ),
    ("User.Read", "e1fe6dd8-ba31-4d61-89e7-88639da4683d"),
    ("offline_access", "7427e0e9-2fba-42fe-b0c0-848c9e6a8182"),
    ("openid", "37f7f235-527c-4136-accd-4a02d197296e"),
    ("profile", "14dad69e-099b-42c9-810b-d002981feec1"),
];
pub const EXCHANGE_DELEGATED_SCOPES: &[(&str, &str)] = &[
    ("Exchange.Manage", "ab4f2b77-0b06-4fc1-a9de-02113fc2ab7c"),
    (
        "EWS.AccessAsUser.All",
        "3b5f3d61-589b-4a3c-a359-5dd4b5ee5bd5",
    ),
];
pub const PARTNER_CENTER_DELEGATED_SCOPES: &[(&str, &str)] =
    &[("user_impersonation", "1cebfa2a-fb4d-419e-b5f9-839b4383e05a")];

/// The delegated permissions a first-party resource exposes (empty for others).
pub fn delegated_scopes(app_id: &str) -> &'static [(&'static str, &'static str)] {
    match app_id.to_ascii_lowercase().as_str() {
        GRAPH_APP_ID => GRAPH_DELEGATED_SCOPES,
        EXCHANGE_APP_ID => EXCHANGE_DELEGATED_SCOPES,
        PARTNER_CENTER_APP_ID => PARTNER_CENTER_DELEGATED_SCOPES,
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hal_roles_are_all_in_the_catalog() {
        for r in HAL_GRAPH_ROLES {
            assert!(GRAPH_APP_ROLES.iter().any(|(v, _, _)| v == r), "{r}");
        }
        for r in HAL_O365_ROLES {
            assert!(
                O365_MANAGEMENT_APP_ROLES.iter().any(|(v, _, _)| v == r),
                "{r}"
            );
        }
        let user_read_all = GRAPH_APP_ROLES
            .iter()
            .find(|r| r.0 == "User.Read.All")
            .unwrap();
        assert_eq!(user_read_all.1, "df021288-bdef-4463-88db-98f22de89214");
        let mut ids: Vec<_> = GRAPH_APP_ROLES.iter().map(|r| r.1).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), GRAPH_APP_ROLES.len(), "role ids are unique");
    }

    #[test]
    fn resources_map_to_first_party_apps() {
        assert_eq!(
            resource_app_id("https://graph.microsoft.com/"),
            Some(GRAPH_APP_ID)
        );
        assert_eq!(
            resource_app_id("https://manage.office.com"),
            Some(O365_MANAGEMENT_APP_ID)
        );
        assert_eq!(
            resource_app_id("https://outlook.office365.com"),
            Some(EXCHANGE_APP_ID)
        );
        assert_eq!(
            resource_app_id("https://management.core.windows.net/"),
            Some(ARM_APP_ID)
        );
        assert_eq!(resource_app_id("https://example.com"), None);
        assert_eq!(
            role_template_id("global administrator"),
            Some(GLOBAL_ADMINISTRATOR)
        );
    }
}
