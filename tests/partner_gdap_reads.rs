//! Partner mode's GDAP reads (src/microsoft/graph/gdap.rs) and the customer survey
//! (src/partner/customers.rs) against the sandbox's MSP tenant over HTTPS: paging, the
//! per-relationship reads in `$batch`es, nested groups, the AdminAgents-empty answer, a
//! missing permission, and the verdicts of docs/scenarios/partner.json.

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use hal_onboard::cloud::{Cloud, Endpoints};
use hal_onboard::microsoft::graph::meter::RequestMeter;
use hal_onboard::microsoft::graph::{GraphClient, RetryPolicy};
use hal_onboard::partner::customers::{self, Blocked, GdapError, Verdict};
use hal_sandbox::gdap::{AssignmentScenario, GroupScenario, PartnerScenario, RelationshipScenario};
use hal_sandbox::token::{Claims, now_unix};
use hal_sandbox::{Sandbox, Scenario, TenantScenario};
use uuid::Uuid;

const GA: &str = "62e90394-69f5-4237-9190-012177145e10";
const PRA: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";
const CLOUD_APP_ADMIN: &str = "158c047a-c907-4556-b7ef-446551a6b5f7";
const EXCHANGE_ADMIN: &str = "29232cdf-9323-42fd-ade2-1d097af3e4de";
const ONBOARD: [&str; 3] = [CLOUD_APP_ADMIN, PRA, EXCHANGE_ADMIN];
const SCOPES: &str = "DelegatedAdminRelationship.Read.All GroupMember.Read.All User.Read";

/// A token minted once, as the partner sign-in would hand it over.
#[derive(Debug)]
struct Fixed(String);

#[async_trait::async_trait]
impl TokenCredential for Fixed {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _o: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            self.0.clone(),
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0d0a_0000_0000_4000_8000_0000_0000_0000 + n)
}

fn tenant(n: u128, name: &str) -> TenantScenario {
    TenantScenario {
        id: id(n),
        display_name: name.into(),
        domains: vec![format!("t{n:x}.onmicrosoft.com")],
        ..TenantScenario::default()
    }
}

/// A technician token in the MSP tenant with `scp`.
fn msp_client(sb: &Sandbox, msp: Uuid, tech: Uuid, scp: &str) -> GraphClient {
    let now = now_unix();
    let token = sb.signer().sign(&Claims {
        aud: "https://graph.microsoft.com".into(),
        iss: "sandbox".into(),
        tid: msp.to_string(),
        oid: tech.to_string(),
        appid: "14d82eec-204b-4c2f-b7e8-296a70dab67e".into(),
        upn: Some("tech@northwindmsp.onmicrosoft.com".into()),
        scp: Some(scp.into()),
        iat: now,
        nbf: now,
        exp: now + 3600,
        ..Default::default()
    });
    let http = hal_onboard::http::build_client(Some(&sb.ca_path())).unwrap();
    GraphClient::new(
        http,
        Endpoints::new(Cloud::Global, Some(&sb.login_url()), Some(&sb.graph_url())),
        Arc::new(Fixed(token)),
        vec!["https://graph.microsoft.com/.default".into()],
        RetryPolicy::default().scaled(0.01),
        RequestMeter::new(),
    )
}

async fn start(s: Scenario) -> (Sandbox, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::start(s, dir.path()).await.unwrap();
    (sb, dir)
}

fn documented() -> Scenario {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scenarios/partner.json");
    Scenario::from_file(&path).unwrap()
}

#[tokio::test]
async fn the_documented_partner_gets_each_verdict_in_three_requests() {
    let s = documented();
    let msp = s.tenants[0].id;
    let tech = s.tenants[0].signed_in_user.id;
    let (sb, _d) = start(s).await;
    let g = msp_client(&sb, msp, tech, SCOPES);
    let cs = customers::survey(&g, false).await.unwrap();
    let names: Vec<&str> = cs.iter().map(|c| c.display_name.as_str()).collect();
    // Tailspin's only relationship expired: not offered.
    assert_eq!(
        names,
        [
            "Adatum (assignment pending)",
            "Fabrikam (GDAP active)",
            "Litware (Microsoft-led MLT_ only)"
        ]
    );
    let adatum = &cs[0];
    let fabrikam = &cs[1];
    let litware = &cs[2];
    // Fabrikam: the three roles through Onboarders, which the technician is in through Tier 2;
    // its relationship ends in 20 days.
    assert!(
        matches!(fabrikam.verdict, Verdict::Expiring { .. }),
        "{:?}",
        fabrikam.verdict
    );
    assert_eq!(
        fabrikam.role_names(),
        [
            "Cloud Application Administrator",
            "Privileged Role Administrator",
            "Exchange Administrator"
        ]
    );
    assert!(fabrikam.roles.iter().all(|h| h.group == "Onboarders"));
    assert_eq!(fabrikam.relationships[0].display_name, "Onboarding");
    assert_eq!(litware.verdict.code(), Some("GDAP_NO_RELATIONSHIP"));
    assert_eq!(adatum.verdict.code(), Some("GDAP_ASSIGNMENT_PENDING"));
    assert_eq!(adatum.pending.len(), 1);
    // One relationship page, one batch for the three usable relationships' assignments, one
    // group page (the MLT_ and expired relationships cost nothing).
    let st = g.meter().stats();
    assert_eq!(st.requests, 3, "{st:?}");

    // Once Microsoft has applied the pending assignment, Adatum is ready (Global Administrator).
    sb.advance(Duration::from_secs(601));
    let cs = customers::survey(&g, false).await.unwrap();
    assert_eq!(cs[0].verdict, Verdict::Ready);
    assert_eq!(cs[0].role_names(), ["Global Administrator"]);
}

/// An MSP with `n` customers, one relationship each with the three roles, assigned to a group
/// the technician is in through another (nested).
fn many(n: u128, admin_agent: bool) -> Scenario {
    let mut msp = tenant(0x100, "Northwind MSP");
    msp.signed_in_user.id = id(0xAA);
    let rels = (0..n)
        .map(|i| RelationshipScenario {
            display_name: format!("Onboarding {i}"),
            customer: id(0x1000 + i),
            customer_display_name: format!("Customer {i:04}"),
            unified_roles: ONBOARD.iter().map(|r| r.to_string()).collect(),
            access_assignments: vec![AssignmentScenario {
                group: id(0xA3),
                unified_roles: ONBOARD.iter().map(|r| r.to_string()).collect(),
                ..AssignmentScenario::default()
            }],
            ..RelationshipScenario::default()
        })
        .collect();
    Scenario {
        tenants: vec![msp],
        partner: Some(PartnerScenario {
            tenant: id(0x100),
            groups: vec![
                GroupScenario {
                    id: id(0xA1),
                    display_name: "AdminAgents".into(),
                    members: if admin_agent { vec![id(0xA4)] } else { vec![] },
                },
                GroupScenario {
                    id: id(0xA3),
                    display_name: "Onboarders".into(),
                    members: vec![id(0xA4)],
                },
                GroupScenario {
                    id: id(0xA4),
                    display_name: "Tier 2".into(),
                    members: vec![id(0xAA)],
                },
            ],
            relationships: rels,
            ..PartnerScenario::default()
        }),
        ..Scenario::default()
    }
}

#[tokio::test]
async fn every_page_is_read_and_assignments_go_twenty_to_a_batch() {
    let (sb, _d) = start(many(305, true)).await;
    let g = msp_client(&sb, id(0x100), id(0xAA), SCOPES);
    let rels = g.delegated_admin_relationships().await.unwrap();
    assert_eq!(rels.len(), 305, "two pages of up to 300");
    assert_eq!(g.meter().stats().requests, 2);
    let mut ids: Vec<&str> = rels.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 305, "no relationship twice");

    let cs = customers::survey(&g, false).await.unwrap();
    assert_eq!(cs.len(), 305);
    assert!(
        cs.iter().all(|c| c.verdict == Verdict::Ready),
        "{:?}",
        cs[0]
    );
    assert_eq!(cs[0].display_name, "Customer 0000");
    // 2 relationship pages + 16 batches (305 / 20, rounded up) + 1 group page.
    let st = g.meter().stats();
    assert_eq!(st.requests - 2, 2 + 16 + 1, "{st:?}");
    let per_customer = f64::from(st.requests - 2) / 305.0;
    assert!(per_customer < 0.1, "{per_customer} requests per customer");
}

#[tokio::test]
async fn one_relationships_assignments_follow_their_next_link() {
    let mut s = many(1, true);
    let rel = &mut s.partner.as_mut().unwrap().relationships[0];
    let a = rel.access_assignments[0].clone();
    // 301 assignments (all to the technician's group): two pages at 300.
    rel.access_assignments = (0..301).map(|_| a.clone()).collect();
    rel.id = format!("{}-{}", id(0x1000), id(0x1000));
    let rid = rel.id.clone();
    let (sb, _d) = start(s).await;
    let g = msp_client(&sb, id(0x100), id(0xAA), SCOPES);
    assert_eq!(g.access_assignments(&rid).await.unwrap().len(), 301);
    // Through the batch too (its item's next link is read by itself).
    let both = g.access_assignments_of(&[&rid, &rid]).await.unwrap();
    assert!(both.iter().all(|r| r.as_ref().unwrap().len() == 301));
}

#[tokio::test]
async fn groups_are_read_transitively() {
    let (sb, _d) = start(many(1, true)).await;
    let g = msp_client(&sb, id(0x100), id(0xAA), SCOPES);
    let mut names: Vec<String> = g
        .my_groups()
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.display_name.unwrap())
        .collect();
    names.sort();
    // Tier 2 directly; Onboarders and AdminAgents through Tier 2.
    assert_eq!(names, ["AdminAgents", "Onboarders", "Tier 2"]);
}

#[tokio::test]
async fn outside_admin_agents_the_empty_list_is_the_admin_agents_hint() {
    let (sb, _d) = start(many(3, false)).await;
    let g = msp_client(&sb, id(0x100), id(0xAA), SCOPES);
    assert!(g.delegated_admin_relationships().await.unwrap().is_empty());
    let e = customers::survey(&g, false).await.unwrap_err();
    assert!(matches!(e, GdapError::NoneVisible), "{e:?}");
    assert!(e.hint().contains("AdminAgents"), "{}", e.hint());
}

#[tokio::test]
async fn without_the_relationship_permission_the_hint_names_it() {
    let (sb, _d) = start(many(1, true)).await;
    let g = msp_client(&sb, id(0x100), id(0xAA), "GroupMember.Read.All User.Read");
    let e = customers::survey(&g, false).await.unwrap_err();
    assert!(matches!(e, GdapError::Forbidden { .. }), "{e:?}");
    assert!(
        e.hint().contains("DelegatedAdminRelationship.Read.All"),
        "{}",
        e.hint()
    );
    let g = msp_client(
        &sb,
        id(0x100),
        id(0xAA),
        "DelegatedAdminRelationship.Read.All",
    );
    let e = customers::survey(&g, false).await.unwrap_err();
    assert!(
        e.hint().contains("GroupMember.Read.All"),
        "the group read's permission: {}",
        e.hint()
    );
}

#[tokio::test]
async fn not_in_the_group_names_the_group_by_its_display_name() {
    let mut s = many(2, true);
    let p = s.partner.as_mut().unwrap();
    p.groups.push(GroupScenario {
        id: id(0xA7),
        display_name: "Tier 3 onboarding".into(),
        members: vec![],
    });
    p.relationships[1].access_assignments[0].group = id(0xA7);
    p.relationships[0].unified_roles = vec![GA.into()];
    p.relationships[0].access_assignments[0].unified_roles = vec![GA.into()];
    let (sb, _d) = start(s).await;
    let g = msp_client(&sb, id(0x100), id(0xAA), SCOPES);
    let cs = customers::survey(&g, false).await.unwrap();
    assert_eq!(cs[0].verdict, Verdict::Ready);
    let Verdict::Blocked(b @ Blocked::NotInGroup { .. }) = &cs[1].verdict else {
        panic!("{:?}", cs[1].verdict);
    };
    assert!(b.fix().contains("'Tier 3 onboarding'"), "{}", b.fix());
    assert!(
        b.fix().contains("relationship 'Onboarding 1'"),
        "{}",
        b.fix()
    );
}
