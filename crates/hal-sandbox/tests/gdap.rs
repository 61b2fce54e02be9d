//! Partner mode's far end over real HTTPS: an MSP tenant's GDAP relationships in Microsoft
//! Graph (`/tenantRelationships/...`), its nested security groups, Partner Center's application
//! consent API, and a partner technician's sign-in at a customer's authority (AADSTS50020,
//! 65001, 700016).

use std::time::Duration;

use base64::Engine;
use hal_sandbox::gdap::{AssignmentScenario, GroupScenario, PartnerScenario, RelationshipScenario};
use hal_sandbox::{Sandbox, Scenario, TenantScenario};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

const MSP: u128 = 0x100;
const ACTIVE: u128 = 0x201;
const EXPIRED: u128 = 0x202;
const MLT: u128 = 0x203;
const PENDING: u128 = 0x204;
const TERMINATED: u128 = 0x205;
const APP_ADMIN_ONLY: u128 = 0x206;

const TECH: u128 = 0xAA;
const ADMIN_AGENTS: u128 = 0xA1;
const HELPDESK: u128 = 0xA2;
const ONBOARDERS: u128 = 0xA3;
const TIER2: u128 = 0xA4;
const READERS: u128 = 0xA5;

const GA: &str = "62e90394-69f5-4237-9190-012177145e10";
const PRA: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";
const CLOUD_APP_ADMIN: &str = "158c047a-c907-4556-b7ef-446551a6b5f7";
const APP_ADMIN: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
const EXCHANGE_ADMIN: &str = "29232cdf-9323-42fd-ade2-1d097af3e4de";
const DIRECTORY_READERS: &str = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b";

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn tenant(n: u128, name: &str) -> TenantScenario {
    let mut t = TenantScenario {
        id: id(n),
        display_name: name.into(),
        domains: vec![format!("t{n:x}.onmicrosoft.com")],
        device_code_approve_after_polls: 0,
        device_code_interval: 0,
        ..TenantScenario::default()
    };
    t.signed_in_user.upn = format!("tech@t{n:x}.onmicrosoft.com");
    t
}

fn relationship(
    customer: u128,
    name: &str,
    status: &str,
    roles: &[&str],
    assignments: Vec<AssignmentScenario>,
) -> RelationshipScenario {
    RelationshipScenario {
        id: format!("{}-{}", id(customer), id(customer)),
        display_name: name.into(),
        customer: id(customer),
        status: status.into(),
        unified_roles: roles.iter().map(|r| r.to_string()).collect(),
        ends_in_days: if status == "expired" { -3 } else { 200 },
        access_assignments: assignments,
        ..RelationshipScenario::default()
    }
}

fn assignment(group: u128, roles: &[&str]) -> AssignmentScenario {
    AssignmentScenario {
        group: id(group),
        unified_roles: roles.iter().map(|r| r.to_string()).collect(),
        ..AssignmentScenario::default()
    }
}

/// The MSP's technician is in AdminAgents through Helpdesk and in Onboarders through Tier 2;
/// not in Readers.
fn scenario(admin_agent: bool) -> Scenario {
    let mut msp = tenant(MSP, "Northwind MSP");
    msp.signed_in_user.id = id(TECH);
    let onboard_roles = [CLOUD_APP_ADMIN, PRA, EXCHANGE_ADMIN];
    let mut pending = assignment(ONBOARDERS, &onboard_roles);
    pending.status = "pending".into();
    pending.active_after_seconds = Some(3600);
    Scenario {
        tenants: vec![
            msp,
            tenant(ACTIVE, "Active Customer"),
            tenant(EXPIRED, "Expired Customer"),
            tenant(MLT, "MLT Customer"),
            tenant(PENDING, "Pending Customer"),
            tenant(TERMINATED, "Terminated Customer"),
            tenant(APP_ADMIN_ONLY, "App Admin Customer"),
        ],
        partner: Some(PartnerScenario {
            tenant: id(MSP),
            groups: vec![
                GroupScenario {
                    id: id(ADMIN_AGENTS),
                    display_name: "AdminAgents".into(),
                    members: if admin_agent {
                        vec![id(HELPDESK)]
                    } else {
                        vec![]
                    },
                },
                GroupScenario {
                    id: id(HELPDESK),
                    display_name: "Helpdesk".into(),
                    members: vec![id(TECH)],
                },
                GroupScenario {
                    id: id(ONBOARDERS),
                    display_name: "Onboarders".into(),
                    members: vec![id(TIER2)],
                },
                GroupScenario {
                    id: id(TIER2),
                    display_name: "Tier 2".into(),
                    members: vec![id(TECH)],
                },
                GroupScenario {
                    id: id(READERS),
                    display_name: "Readers".into(),
                    members: vec![],
                },
            ],
            relationships: vec![
                relationship(
                    ACTIVE,
                    "Onboarding",
                    "active",
                    &[CLOUD_APP_ADMIN, PRA, EXCHANGE_ADMIN, GA],
                    vec![assignment(ONBOARDERS, &onboard_roles)],
                ),
                relationship(
                    EXPIRED,
                    "Old",
                    "expired",
                    &onboard_roles,
                    vec![assignment(ONBOARDERS, &onboard_roles)],
                ),
                relationship(
                    MLT,
                    "MLT_0123456789",
                    "active",
                    &[DIRECTORY_READERS],
                    vec![assignment(READERS, &[DIRECTORY_READERS])],
                ),
                relationship(PENDING, "Fresh", "active", &onboard_roles, vec![pending]),
                relationship(
                    TERMINATED,
                    "Ended",
                    "terminated",
                    &onboard_roles,
                    vec![assignment(ONBOARDERS, &onboard_roles)],
                ),
                relationship(
                    APP_ADMIN_ONLY,
                    "Apps only",
                    "active",
                    &[APP_ADMIN],
                    vec![assignment(TIER2, &[APP_ADMIN])],
                ),
            ],
            ..PartnerScenario::default()
        }),
        ..Scenario::default()
    }
}

async fn start(admin_agent: bool) -> (Sandbox, Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::start(scenario(admin_agent), dir.path())
        .await
        .unwrap();
    let c = hal_sandbox::contract::client_trusting(&sb.ca_path()).unwrap();
    (sb, c, dir)
}

fn msp_token(sb: &Sandbox, scope: &str) -> String {
    sb.user_access_token(id(MSP), scope).unwrap()
}

async fn get(c: &Client, url: url::Url, token: &str) -> (StatusCode, Value) {
    let r = c.get(url).bearer_auth(token).send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap())
}

fn graph(sb: &Sandbox, rest: &str) -> url::Url {
    sb.graph_url().join(&format!("v1.0/{rest}")).unwrap()
}

const REL_SCOPE: &str = "https://graph.microsoft.com/DelegatedAdminRelationship.Read.All";

fn claims(token: &str) -> Value {
    let p = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(p)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn relationships_list_with_documented_shape_filter_and_paging() {
    let (sb, c, _d) = start(true).await;
    let url = graph(&sb, "tenantRelationships/delegatedAdminRelationships");

    // Without DelegatedAdminRelationship.Read.All in scp: refused.
    let (s, v) = get(
        &c,
        url.clone(),
        &msp_token(&sb, "https://graph.microsoft.com/.default"),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["error"]["code"], "Authorization_RequestDenied");

    let token = msp_token(&sb, REL_SCOPE);
    let (s, v) = get(&c, url.clone(), &token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let all = v["value"].as_array().unwrap();
    assert_eq!(all.len(), 6);
    let r = all
        .iter()
        .find(|r| r["customer"]["tenantId"] == json!(id(ACTIVE)))
        .unwrap();
    assert_eq!(
        r["@odata.type"],
        "#microsoft.graph.delegatedAdminRelationship"
    );
    assert_eq!(r["status"], "active");
    assert_eq!(r["displayName"], "Onboarding");
    assert_eq!(r["customer"]["displayName"], "Active Customer");
    assert_eq!(r["duration"], "P730D");
    assert_eq!(r["autoExtendDuration"], "PT0S");
    assert!(r["endDateTime"].as_str().unwrap().ends_with('Z'));
    assert!(r["@odata.etag"].as_str().unwrap().starts_with("W/\""));
    let roles: Vec<&str> = r["accessDetails"]["unifiedRoles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["roleDefinitionId"].as_str().unwrap())
        .collect();
    assert!(roles.contains(&PRA) && roles.contains(&GA), "{roles:?}");

    // $filter on status, as the list API documents it.
    let mut f = url.clone();
    f.query_pairs_mut()
        .append_pair("$filter", "status eq 'active'");
    let (s, v) = get(&c, f, &token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let names: Vec<&str> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Onboarding", "MLT_0123456789", "Fresh", "Apps only"]
    );
    let mut f = url.clone();
    f.query_pairs_mut()
        .append_pair("$filter", "endDateTime eq 'x'");
    let (s, v) = get(&c, f, &token).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    // Paging: $top and @odata.nextLink until the end.
    let mut next = url.clone();
    next.query_pairs_mut().append_pair("$top", "4");
    let mut seen = vec![];
    let mut pages = 0;
    loop {
        let (s, v) = get(&c, next.clone(), &token).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        pages += 1;
        seen.extend(
            v["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].clone()),
        );
        match v["@odata.nextLink"].as_str() {
            Some(n) => next = url::Url::parse(n).unwrap(),
            None => break,
        }
    }
    assert_eq!((pages, seen.len()), (2, 6));
    let mut over = url.clone();
    over.query_pairs_mut().append_pair("$top", "301");
    assert_eq!(get(&c, over, &token).await.0, StatusCode::BAD_REQUEST);
    let mut sel = url.clone();
    sel.query_pairs_mut().append_pair("$select", "id,status");
    let (_, v) = get(&c, sel, &token).await;
    assert!(
        v["value"][0].get("customer").is_none() && v["value"][0]["status"] == "active",
        "{v}"
    );

    // One relationship by id.
    let rid = format!("{}-{}", id(ACTIVE), id(ACTIVE));
    let (s, v) = get(
        &c,
        graph(
            &sb,
            &format!("tenantRelationships/delegatedAdminRelationships/{rid}"),
        ),
        &token,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["id"], rid);
}

#[tokio::test]
async fn relationships_are_visible_only_to_admin_agents() {
    let (sb, c, _d) = start(false).await;
    let token = msp_token(&sb, REL_SCOPE);
    for path in [
        "tenantRelationships/delegatedAdminRelationships",
        "tenantRelationships/delegatedAdminCustomers",
    ] {
        let (s, v) = get(&c, graph(&sb, path), &token).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["value"], json!([]), "{path}");
    }
}

#[tokio::test]
async fn access_assignments_and_pending_becoming_active_by_the_sandbox_clock() {
    let (sb, c, _d) = start(true).await;
    let token = msp_token(&sb, REL_SCOPE);
    let url = |n: u128| {
        graph(
            &sb,
            &format!(
                "tenantRelationships/delegatedAdminRelationships/{}-{}/accessAssignments",
                id(n),
                id(n)
            ),
        )
    };
    let (s, v) = get(&c, url(ACTIVE), &token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let a = &v["value"][0];
    assert_eq!(
        a["@odata.type"],
        "#microsoft.graph.delegatedAdminAccessAssignment"
    );
    assert_eq!(a["status"], "active");
    assert_eq!(a["accessContainer"]["accessContainerType"], "securityGroup");
    assert_eq!(
        a["accessContainer"]["accessContainerId"],
        json!(id(ONBOARDERS))
    );
    assert_eq!(
        a["accessDetails"]["unifiedRoles"][0]["roleDefinitionId"],
        CLOUD_APP_ADMIN
    );

    let (_, v) = get(&c, url(PENDING), &token).await;
    assert_eq!(v["value"][0]["status"], "pending", "{v}");
    sb.advance(Duration::from_secs(3601));
    let token = msp_token(&sb, REL_SCOPE);
    let (_, v) = get(&c, url(PENDING), &token).await;
    assert_eq!(v["value"][0]["status"], "active", "{v}");

    let (s, v) = get(
        &c,
        graph(
            &sb,
            "tenantRelationships/delegatedAdminRelationships/nope/accessAssignments",
        ),
        &token,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
}

#[tokio::test]
async fn delegated_admin_customers_are_those_with_an_active_relationship() {
    let (sb, c, _d) = start(true).await;
    let (s, v) = get(
        &c,
        graph(&sb, "tenantRelationships/delegatedAdminCustomers"),
        &msp_token(&sb, REL_SCOPE),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let ids: Vec<Value> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["tenantId"].clone())
        .collect();
    assert_eq!(
        ids,
        [id(ACTIVE), id(MLT), id(PENDING), id(APP_ADMIN_ONLY)].map(|u| json!(u))
    );
    assert_eq!(v["value"][0]["displayName"], "Active Customer");
}

#[tokio::test]
async fn group_membership_is_transitive() {
    let (sb, c, _d) = start(true).await;
    let token = msp_token(&sb, "https://graph.microsoft.com/GroupMember.Read.All");
    let names = |v: &Value| -> Vec<String> {
        let mut n: Vec<String> = v["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["displayName"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    let (s, v) = get(
        &c,
        graph(&sb, "me/transitiveMemberOf/microsoft.graph.group"),
        &token,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        names(&v),
        ["AdminAgents", "Helpdesk", "Onboarders", "Tier 2"]
    );
    assert_eq!(v["value"][0]["securityEnabled"], true);
    let (_, v) = get(&c, graph(&sb, "me/memberOf/microsoft.graph.group"), &token).await;
    assert_eq!(names(&v), ["Helpdesk", "Tier 2"]);

    let r = c
        .post(graph(&sb, "me/checkMemberGroups"))
        .bearer_auth(&token)
        .json(&json!({"groupIds": [id(ADMIN_AGENTS), id(READERS), id(ONBOARDERS)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["value"], json!([id(ADMIN_AGENTS), id(ONBOARDERS)]));

    let (s, _) = get(
        &c,
        graph(&sb, "me/transitiveMemberOf/microsoft.graph.group"),
        &msp_token(&sb, "https://graph.microsoft.com/User.Read"),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn member_of_pages_up_to_999_and_a_group_reads_by_id() {
    let (sb, c, _d) = start(true).await;
    let token = msp_token(&sb, "https://graph.microsoft.com/GroupMember.Read.All");
    // "The default and maximum page sizes are 100 and 999" (List a user's memberships).
    let (s, v) = get(
        &c,
        graph(
            &sb,
            "me/transitiveMemberOf/microsoft.graph.group?$select=id,displayName&$top=999",
        ),
        &token,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["value"].as_array().unwrap().len(), 4);
    assert!(v["value"][0].get("securityEnabled").is_none(), "$select");
    let (s, _) = get(
        &c,
        graph(&sb, "me/transitiveMemberOf/microsoft.graph.group?$top=1000"),
        &token,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // The GDAP lists stop at 300.
    let (s, _) = get(
        &c,
        graph(
            &sb,
            "tenantRelationships/delegatedAdminRelationships?$top=301",
        ),
        &msp_token(&sb, REL_SCOPE),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Get group: basic properties, also of a group the technician is not in.
    let (s, v) = get(
        &c,
        graph(
            &sb,
            &format!("groups/{}?$select=id,displayName", id(READERS)),
        ),
        &token,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["displayName"], "Readers");
    assert!(v.get("mailEnabled").is_none(), "$select");
    let (s, v) = get(&c, graph(&sb, &format!("groups/{}", id(0x999))), &token).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "Request_ResourceNotFound");
    let (s, _) = get(
        &c,
        graph(&sb, &format!("groups/{}", id(READERS))),
        &msp_token(&sb, "https://graph.microsoft.com/User.Read"),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

/// Registers an application in the MSP tenant through Graph; returns its appId.
async fn register_app(sb: &Sandbox, c: &Client, audience: &str) -> String {
    let r = c
        .post(graph(sb, "applications"))
        .bearer_auth(msp_token(sb, "https://graph.microsoft.com/.default"))
        .json(&json!({"displayName": "Partner onboarding", "signInAudience": audience}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    v["appId"].as_str().unwrap().to_string()
}

fn oauth(sb: &Sandbox, tenant: Uuid, endpoint: &str) -> url::Url {
    sb.login_url()
        .join(&format!("{tenant}/oauth2/v2.0/{endpoint}"))
        .unwrap()
}

async fn form(c: &Client, url: url::Url, f: &[(&str, &str)]) -> (StatusCode, Value) {
    let r = c.post(url).form(f).send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap())
}

/// The technician's device code sign-in in the MSP tenant with `client_id`: a refresh token.
async fn partner_refresh_token(sb: &Sandbox, c: &Client, client_id: &str) -> String {
    let (s, dc) = form(
        c,
        oauth(sb, id(MSP), "devicecode"),
        &[
            ("client_id", client_id),
            (
                "scope",
                "offline_access https://graph.microsoft.com/.default",
            ),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{dc}");
    let (s, v) = form(
        c,
        oauth(sb, id(MSP), "token"),
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", client_id),
            ("device_code", dc["device_code"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        claims(v["access_token"].as_str().unwrap())["tid"],
        json!(id(MSP))
    );
    v["refresh_token"].as_str().unwrap().to_string()
}

async fn redeem_at(
    sb: &Sandbox,
    c: &Client,
    customer: u128,
    client_id: &str,
    rt: &str,
) -> (StatusCode, Value) {
    form(
        c,
        oauth(sb, id(customer), "token"),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("refresh_token", rt),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await
}

fn aadsts(v: &Value) -> u64 {
    v["error_codes"][0].as_u64().unwrap_or(0)
}

async fn consent(
    sb: &Sandbox,
    c: &Client,
    customer: u128,
    app: &str,
    token: &str,
) -> (StatusCode, Value) {
    let r = c
        .post(
            sb.partner_center_url()
                .join(&format!(
                    "v1/customers/{}/applicationconsents",
                    id(customer)
                ))
                .unwrap(),
        )
        .bearer_auth(token)
        .header("Accept", "application/json")
        .json(&json!({
            "applicationId": app,
            "applicationGrants": [
                {"enterpriseApplicationId": "00000003-0000-0000-c000-000000000000",
                 "scope": "Application.ReadWrite.All,AppRoleAssignment.ReadWrite.All"},
                {"enterpriseApplicationId": "00000002-0000-0ff1-ce00-000000000000",
                 "scope": "Exchange.Manage"}
            ],
            "displayName": "Partner onboarding"
        }))
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn partner_center_consent_answers_as_documented() {
    let (sb, c, _d) = start(true).await;
    let app = register_app(&sb, &c, "AzureADMultipleOrgs").await;
    let pc = msp_token(
        &sb,
        "https://api.partnercenter.microsoft.com/user_impersonation",
    );
    assert_eq!(
        claims(&pc)["aud"],
        "https://api.partnercenter.microsoft.com"
    );

    // A Graph token is not for Partner Center.
    let (s, _) = consent(&sb, &c, ACTIVE, &app, &msp_token(&sb, REL_SCOPE)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let (s, v) = consent(&sb, &c, ACTIVE, &app, &pc).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["applicationId"], app);
    assert_eq!(v["applicationGrants"][1]["scope"], "Exchange.Manage");
    assert!(
        sb.with_tenant(id(ACTIVE), |t| t
            .service_principals
            .iter()
            .any(|s| s.app_id == app)),
        "consent puts the app's service principal in the customer"
    );
    let (s, v) = consent(&sb, &c, ACTIVE, &app, &pc).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["description"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );

    // Application Administrator is not enough; an expired relationship reaches nobody.
    let (s, v) = consent(&sb, &c, APP_ADMIN_ONLY, &app, &pc).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, _) = consent(&sb, &c, EXPIRED, &app, &pc).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A single-tenant application cannot be consented elsewhere.
    let single = register_app(&sb, &c, "AzureADMyOrg").await;
    let (s, _) = consent(&sb, &c, ACTIVE, &single, &pc).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // A pending access assignment gives no role yet.
    let (s, _) = consent(&sb, &c, PENDING, &app, &pc).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn partner_center_consent_needs_an_admin_agent() {
    let (sb, c, _d) = start(false).await;
    let app = register_app(&sb, &c, "AzureADMultipleOrgs").await;
    let pc = msp_token(
        &sb,
        "https://api.partnercenter.microsoft.com/user_impersonation",
    );
    let (s, v) = consent(&sb, &c, ACTIVE, &app, &pc).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(v["description"].as_str().unwrap().contains("AdminAgents"));
}

#[tokio::test]
async fn gdap_sign_in_at_a_customer() {
    let (sb, c, _d) = start(true).await;
    let app = register_app(&sb, &c, "AzureADMultipleOrgs").await;
    let rt = partner_refresh_token(&sb, &c, &app).await;

    // Not consented in the customer yet: AADSTS65001.
    let (s, v) = redeem_at(&sb, &c, ACTIVE, &app, &rt).await;
    assert_eq!((s, aadsts(&v)), (StatusCode::BAD_REQUEST, 65001), "{v}");

    let pc = msp_token(
        &sb,
        "https://api.partnercenter.microsoft.com/user_impersonation",
    );
    assert_eq!(
        consent(&sb, &c, ACTIVE, &app, &pc).await.0,
        StatusCode::CREATED
    );
    let (s, v) = redeem_at(&sb, &c, ACTIVE, &app, &rt).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let at = v["access_token"].as_str().unwrap();
    let cl = claims(at);
    assert_eq!(cl["tid"], json!(id(ACTIVE)));
    assert_eq!(cl["idp"], format!("https://sts.windows.net/{}/", id(MSP)));
    assert!(cl.get("oid").is_none() && cl.get("upn").is_none(), "{cl}");
    let mut wids: Vec<&str> = cl["wids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    wids.sort();
    let mut want = vec![CLOUD_APP_ADMIN, PRA, EXCHANGE_ADMIN];
    want.sort();
    assert_eq!(
        wids, want,
        "roles of the assignment, not the relationship's GA"
    );

    // The token works in the customer's Graph, but /me does not resolve there.
    let (s, v) = get(&c, graph(&sb, "organization"), at).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["value"][0]["id"], json!(id(ACTIVE)));
    let (s, _) = get(&c, graph(&sb, "me"), at).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Only an MLT_ relationship whose group the technician is not in: AADSTS50020.
    let (s, v) = redeem_at(&sb, &c, MLT, catalog_cli(), &rt_for_cli(&sb, &c).await).await;
    assert_eq!((s, aadsts(&v)), (StatusCode::BAD_REQUEST, 50020), "{v}");
    // Expired and terminated relationships give nothing either.
    for n in [EXPIRED, TERMINATED] {
        let (_, v) = redeem_at(&sb, &c, n, &app, &rt).await;
        assert_eq!(aadsts(&v), 50020, "{v}");
    }
}

fn catalog_cli() -> &'static str {
    "14d82eec-204b-4c2f-b7e8-296a70dab67e"
}

/// A refresh token for Microsoft's own public client (present in every tenant).
async fn rt_for_cli(sb: &Sandbox, c: &Client) -> String {
    partner_refresh_token(sb, c, catalog_cli()).await
}

#[tokio::test]
async fn pending_assignment_refuses_until_active_and_unknown_app_is_700016() {
    let (sb, c, _d) = start(true).await;
    let rt = rt_for_cli(&sb, &c).await;
    let (s, v) = redeem_at(&sb, &c, PENDING, catalog_cli(), &rt).await;
    assert_eq!((s, aadsts(&v)), (StatusCode::BAD_REQUEST, 50020), "{v}");
    sb.advance(Duration::from_secs(3601));
    let (s, v) = redeem_at(&sb, &c, PENDING, catalog_cli(), &rt).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        claims(v["access_token"].as_str().unwrap())["tid"],
        json!(id(PENDING))
    );

    // A single-tenant app of the MSP's is unknown in the customer's directory.
    let single = register_app(&sb, &c, "AzureADMyOrg").await;
    let rt = partner_refresh_token(&sb, &c, &single).await;
    let (s, v) = redeem_at(&sb, &c, ACTIVE, &single, &rt).await;
    assert_eq!((s, aadsts(&v)), (StatusCode::BAD_REQUEST, 700016), "{v}");
}

#[tokio::test]
async fn a_kept_partner_cloud_keeps_its_relationships_and_consents() {
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::start_kept(scenario(true), dir.path())
        .await
        .unwrap();
    let c = hal_sandbox::contract::client_trusting(&sb.ca_path()).unwrap();
    let app = register_app(&sb, &c, "AzureADMultipleOrgs").await;
    let pc = msp_token(
        &sb,
        "https://api.partnercenter.microsoft.com/user_impersonation",
    );
    assert_eq!(
        consent(&sb, &c, ACTIVE, &app, &pc).await.0,
        StatusCode::CREATED
    );
    sb.shutdown().await;

    let sb = Sandbox::start_kept(Scenario::default(), dir.path())
        .await
        .unwrap();
    let c = hal_sandbox::contract::client_trusting(&sb.ca_path()).unwrap();
    let (s, v) = get(
        &c,
        graph(&sb, "tenantRelationships/delegatedAdminRelationships"),
        &msp_token(&sb, REL_SCOPE),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["value"].as_array().unwrap().len(), 6);
    let pc = msp_token(
        &sb,
        "https://api.partnercenter.microsoft.com/user_impersonation",
    );
    assert_eq!(
        consent(&sb, &c, ACTIVE, &app, &pc).await.0,
        StatusCode::CONFLICT
    );
}

/// A GDAP token's `wids` are what the customer's Graph enforces: a Microsoft Graph app-role
/// grant needs Privileged Role Administrator there, Application Administrator is refused.
#[tokio::test]
async fn customer_graph_enforces_the_gdap_roles() {
    let (sb, c, _d) = start(true).await;
    let rt = rt_for_cli(&sb, &c).await;
    let mut outcomes = vec![];
    for customer in [APP_ADMIN_ONLY, ACTIVE] {
        let (s, v) = redeem_at(&sb, &c, customer, catalog_cli(), &rt).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let at = v["access_token"].as_str().unwrap().to_string();
        let post =
            |path: &str, body: Value| c.post(graph(&sb, path)).bearer_auth(&at).json(&body).send();
        let r = post("applications", json!({"displayName": "Hal"}))
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "both roles may create apps"
        );
        let app: Value = r.json().await.unwrap();
        let r = post("servicePrincipals", json!({"appId": app["appId"]}))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let sp: Value = r.json().await.unwrap();
        let mut q = graph(&sb, "servicePrincipals");
        q.query_pairs_mut()
            .append_pair("$filter", "appId eq '00000003-0000-0000-c000-000000000000'");
        let (_, list) = get(&c, q, &at).await;
        let graph_sp = list["value"][0]["id"].as_str().unwrap().to_string();
        let r = post(
            &format!("servicePrincipals/{graph_sp}/appRoleAssignedTo"),
            json!({"principalId": sp["id"], "resourceId": graph_sp,
                   "appRoleId": "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30"}),
        )
        .await
        .unwrap();
        outcomes.push(r.status());
    }
    assert_eq!(outcomes, [StatusCode::FORBIDDEN, StatusCode::CREATED]);
}

/// `consentDelaySeconds`: a consent made through Partner Center or the admin consent page
/// takes that long (sandbox clock) to reach the customer's sign-in; a kept cloud keeps both
/// the consent and when it takes effect.
#[tokio::test]
async fn a_consent_takes_effect_after_the_delay_and_a_kept_cloud_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = scenario(true);
    s.partner.as_mut().unwrap().consent_delay_seconds = 600;
    let sb = Sandbox::start_kept(s, dir.path()).await.unwrap();
    let c = hal_sandbox::contract::client_trusting(&sb.ca_path()).unwrap();
    let app = register_app(&sb, &c, "AzureADMultipleOrgs").await;
    let rt = partner_refresh_token(&sb, &c, &app).await;
    let pc = msp_token(
        &sb,
        "https://api.partnercenter.microsoft.com/user_impersonation",
    );
    assert_eq!(
        consent(&sb, &c, ACTIVE, &app, &pc).await.0,
        StatusCode::CREATED
    );
    let (s, v) = redeem_at(&sb, &c, ACTIVE, &app, &rt).await;
    assert_eq!((s, aadsts(&v)), (StatusCode::BAD_REQUEST, 65001), "{v}");
    sb.advance(Duration::from_secs(300));
    sb.shutdown().await;

    let sb = Sandbox::start_kept(Scenario::default(), dir.path())
        .await
        .unwrap();
    let c = hal_sandbox::contract::client_trusting(&sb.ca_path()).unwrap();
    let (s, v) = redeem_at(&sb, &c, ACTIVE, &app, &rt).await;
    assert_eq!(
        (s, aadsts(&v)),
        (StatusCode::BAD_REQUEST, 65001),
        "still taking effect: {v}"
    );
    sb.advance(Duration::from_secs(601));
    let (s, v) = redeem_at(&sb, &c, ACTIVE, &app, &rt).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// The v2.0 admin consent endpoint: the customer's admin approves in one request; the
/// app's principal appears there and the browser goes back with `admin_consent=True`.
#[tokio::test]
async fn the_admin_consent_page_consents_for_the_customer() {
    let (sb, c, _d) = start(true).await;
    let app = register_app(&sb, &c, "AzureADMultipleOrgs").await;
    let rt = partner_refresh_token(&sb, &c, &app).await;
    let (_, v) = redeem_at(&sb, &c, APP_ADMIN_ONLY, &app, &rt).await;
    assert_eq!(aadsts(&v), 65001, "{v}");
    let mut u = sb
        .login_url()
        .join(&format!("{}/v2.0/adminconsent", id(APP_ADMIN_ONLY)))
        .unwrap();
    u.query_pairs_mut()
        .append_pair("client_id", &app)
        .append_pair("scope", "https://graph.microsoft.com/Directory.Read.All")
        .append_pair("redirect_uri", "http://localhost")
        .append_pair("state", "s1");
    let r = c.get(u).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        to.starts_with("http://localhost/?admin_consent=True"),
        "{to}"
    );
    assert!(
        to.contains(&format!("tenant={}", id(APP_ADMIN_ONLY))),
        "{to}"
    );
    assert!(to.contains("state=s1"), "{to}");
    let (s, v) = redeem_at(&sb, &c, APP_ADMIN_ONLY, &app, &rt).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // A single-tenant app cannot be consented elsewhere.
    let single = register_app(&sb, &c, "AzureADMyOrg").await;
    let mut u = sb
        .login_url()
        .join(&format!("{}/v2.0/adminconsent", id(ACTIVE)))
        .unwrap();
    u.query_pairs_mut()
        .append_pair("client_id", &single)
        .append_pair("scope", "https://graph.microsoft.com/Directory.Read.All")
        .append_pair("redirect_uri", "http://localhost");
    let r = c.get(u).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert_eq!(aadsts(&v), 700016, "{v}");
}

/// `partnerCenterThrottle`: the first requests answer 429 with `Retry-After`.
#[tokio::test]
async fn partner_center_throttles_as_told() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = scenario(true);
    s.partner.as_mut().unwrap().partner_center_throttle = 1;
    let sb = Sandbox::start(s, dir.path()).await.unwrap();
    let c = hal_sandbox::contract::client_trusting(&sb.ca_path()).unwrap();
    let app = register_app(&sb, &c, "AzureADMultipleOrgs").await;
    let pc = msp_token(
        &sb,
        "https://api.partnercenter.microsoft.com/user_impersonation",
    );
    let r = c
        .post(
            sb.partner_center_url()
                .join(&format!("v1/customers/{}/applicationconsents", id(ACTIVE)))
                .unwrap(),
        )
        .bearer_auth(&pc)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(
        consent(&sb, &c, ACTIVE, &app, &pc).await.0,
        StatusCode::CREATED
    );
}

/// Microsoft's `amr` claim: `["pwd", "mfa"]` after a multi-factor sign-in, kept through a
/// customer's authority (the partner sign-in's MFA is what the customer token rests on);
/// `signedInUser.mfa: false` signs in with a password only.
#[tokio::test]
async fn user_tokens_say_how_the_technician_authenticated() {
    let (sb, c, _d) = start(true).await;
    let rt = rt_for_cli(&sb, &c).await;
    let (s, v) = redeem_at(&sb, &c, ACTIVE, catalog_cli(), &rt).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        claims(v["access_token"].as_str().unwrap())["amr"],
        json!(["pwd", "mfa"])
    );
    assert_eq!(
        claims(&msp_token(&sb, "https://graph.microsoft.com/.default"))["amr"],
        json!(["pwd", "mfa"])
    );

    let mut s = scenario(true);
    s.tenants[0].signed_in_user.mfa = false;
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::start(s, dir.path()).await.unwrap();
    assert_eq!(
        claims(
            &sb.user_access_token(id(MSP), "https://graph.microsoft.com/.default")
                .unwrap()
        )["amr"],
        json!(["pwd"])
    );
    let parsed: Scenario =
        serde_json::from_value(json!({"tenants": [{"signedInUser": {"mfa": false}}]})).unwrap();
    assert!(!parsed.tenants[0].signed_in_user.mfa);
}

/// A refresh token rotated at a customer's authority is still the partner technician's: it
/// signs in at the MSP's authority (tid the MSP's, with its oid) and at another customer.
#[tokio::test]
async fn a_refresh_token_rotated_at_a_customer_still_names_the_technician() {
    let (sb, c, _d) = start(true).await;
    let rt = rt_for_cli(&sb, &c).await;
    let (s, v) = redeem_at(&sb, &c, ACTIVE, catalog_cli(), &rt).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let rotated = v["refresh_token"].as_str().unwrap().to_string();
    let (s, v) = redeem_at(&sb, &c, MSP, catalog_cli(), &rotated).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let cl = claims(v["access_token"].as_str().unwrap());
    assert_eq!(cl["tid"], json!(id(MSP)), "{cl}");
    assert_eq!(cl["oid"], json!(id(TECH)), "{cl}");
    let (s, v) = redeem_at(&sb, &c, ACTIVE, catalog_cli(), &rotated).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        claims(v["access_token"].as_str().unwrap())["tid"],
        json!(id(ACTIVE))
    );
}
