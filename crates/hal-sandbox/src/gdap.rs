//! GDAP (granular delegated admin privileges): an MSP's partner tenant, its security groups and
//! its delegated admin relationships to customer tenants, as Microsoft Graph serves them under
//! `/tenantRelationships` (resource types delegatedAdminRelationship,
//! delegatedAdminAccessAssignment, delegatedAdminCustomer), and the roles a partner technician
//! gets in a customer through them (the `wids` of a token redeemed at the customer's authority).

use std::collections::{HashMap, HashSet};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::graph::{Caller, GResp, gerr};
use super::odata::{Clause, parse_filter};
use super::state::{Inner, iso};

const CONTEXT: &str = "https://graph.microsoft.com/v1.0/$metadata#";

/// The MSP side of a scenario: which tenant is the partner's, its groups, its relationships.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct PartnerScenario {
    /// The partner (MSP) tenant: one of the scenario's tenants.
    pub tenant: Uuid,
    /// Security groups in the partner tenant. `members` are user ids (the partner tenant's
    /// `signedInUser.id` is the technician) or ids of other groups (nested membership).
    pub groups: Vec<GroupScenario>,
    pub relationships: Vec<RelationshipScenario>,
    /// Seconds of sandbox clock a consent (Partner Center's or an admin's) takes to take
    /// effect: until then the customer sign-in still answers AADSTS65001 (Microsoft: minutes).
    pub consent_delay_seconds: u64,
    /// The first this many Partner Center requests answer `429` with `Retry-After: 1`.
    pub partner_center_throttle: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct GroupScenario {
    pub id: Uuid,
    /// `AdminAgents` is the group whose members may see relationships and use Partner Center.
    pub display_name: String,
    pub members: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RelationshipScenario {
    /// Empty: made up (Microsoft's ids are a GUID, a dash and another GUID).
    pub id: String,
    /// `MLT_…` for Microsoft-led transition (default) relationships.
    pub display_name: String,
    /// The customer tenant (a scenario tenant to sign in to it; any GUID to be only listed).
    pub customer: Uuid,
    /// Empty: the customer tenant's display name.
    pub customer_display_name: String,
    /// `active`, `expired`, `terminated`, `approvalPending`, … (Microsoft's
    /// delegatedAdminRelationshipStatus values).
    pub status: String,
    /// Role definition ids the relationship carries (`accessDetails.unifiedRoles`).
    pub unified_roles: Vec<String>,
    pub duration: String,
    /// Days from the sandbox's start to `endDateTime` (negative: in the past).
    pub ends_in_days: i64,
    pub auto_extend_duration: String,
    pub access_assignments: Vec<AssignmentScenario>,
}

impl Default for RelationshipScenario {
    fn default() -> Self {
        RelationshipScenario {
            id: String::new(),
            display_name: "GDAP relationship".into(),
            customer: Uuid::nil(),
            customer_display_name: String::new(),
            status: "active".into(),
            unified_roles: vec![],
            duration: "P730D".into(),
            ends_in_days: 365,
            auto_extend_duration: "PT0S".into(),
            access_assignments: vec![],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct AssignmentScenario {
    /// Empty: made up.
    pub id: String,
    /// The security group (`accessContainer.accessContainerId`) in the partner tenant.
    pub group: Uuid,
    /// Role definition ids (`accessDetails.unifiedRoles`).
    pub unified_roles: Vec<String>,
    /// `active` or `pending` (or `deleted`, `error`).
    pub status: String,
    /// A `pending` assignment becomes `active` this many seconds after the sandbox starts, by
    /// the sandbox's clock ([`crate::Sandbox::advance`]); none: it stays pending.
    pub active_after_seconds: Option<u64>,
}

impl Default for AssignmentScenario {
    fn default() -> Self {
        AssignmentScenario {
            id: String::new(),
            group: Uuid::nil(),
            unified_roles: vec![],
            status: "active".into(),
            active_after_seconds: None,
        }
    }
}

/// Puts the partner's GDAP state in place, with Partner Center's service principal in the
/// partner tenant (so that a sign-in can ask for a Partner Center token there).
pub(crate) fn install(inner: &mut Inner, scenario: &PartnerScenario, now: i64) {
    if let Some(t) = inner.tenant_mut(scenario.tenant) {
        let pc = super::catalog::PARTNER_CENTER_APP_ID;
        if !t.service_principals.iter().any(|s| s.app_id == pc) {
            t.service_principals.push(super::state::ServicePrincipal {
                id: Uuid::new_v4(),
                app_id: pc.into(),
                display_name: "Microsoft Partner Center".into(),
                app_display_name: "Microsoft Partner Center".into(),
                service_principal_type: "Application".into(),
                account_enabled: true,
                app_owner_organization_id: Some("f8cdef31-a31e-4b4a-93e4-5f571e91255a".into()),
                app_roles: vec![],
                service_principal_names: vec![
                    "https://api.partnercenter.microsoft.com".into(),
                    pc.into(),
                ],
                tags: vec![],
                created_date_time: t.created.clone(),
            });
        }
    }
    inner.partner = Some(Partner::new(scenario.clone(), now));
}

/// The partner's live GDAP state.
#[derive(Debug, Clone)]
pub struct Partner {
    pub scenario: PartnerScenario,
    /// The sandbox clock at start (unix seconds).
    pub started: i64,
    /// Consents created through Partner Center: (customer, the request body).
    pub consents: Vec<(Uuid, Value)>,
    /// When each consent (Partner Center's or an admin's) takes effect, by the sandbox clock.
    pub effective: Vec<KeptConsent>,
    /// Partner Center requests so far (for `partnerCenterThrottle`).
    pub pc_requests: u32,
}

/// A consent of an app in a customer and when it takes effect (kept in a kept cloud).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeptConsent {
    pub customer: Uuid,
    pub app_id: String,
    /// Unix seconds, sandbox clock.
    pub effective_at: i64,
}

impl Partner {
    pub fn new(mut scenario: PartnerScenario, started: i64) -> Partner {
        for (i, r) in scenario.relationships.iter_mut().enumerate() {
            if r.id.is_empty() {
                r.id = format!("{}-{}", Uuid::new_v4(), Uuid::from_u128(i as u128 + 1));
            }
            for a in &mut r.access_assignments {
                if a.id.is_empty() {
                    a.id = Uuid::new_v4().simple().to_string();
                }
            }
        }
        Partner {
            scenario,
            started,
            consents: vec![],
            effective: vec![],
            pc_requests: 0,
        }
    }

    /// Records a consent of `app_id` in `customer`, in effect `consentDelaySeconds` from `now`.
    pub fn record_consent(&mut self, customer: Uuid, app_id: &str, now: i64) {
        self.effective
            .retain(|k| !(k.customer == customer && k.app_id.eq_ignore_ascii_case(app_id)));
        self.effective.push(KeptConsent {
            customer,
            app_id: app_id.to_ascii_lowercase(),
            effective_at: now + self.scenario.consent_delay_seconds as i64,
        });
    }

    /// Whether a consent of `app_id` in `customer` is still taking effect at `now`.
    pub fn consent_pending(&self, customer: Uuid, app_id: &str, now: i64) -> bool {
        self.effective.iter().any(|k| {
            k.customer == customer && k.app_id.eq_ignore_ascii_case(app_id) && now < k.effective_at
        })
    }

    /// Every group `user` is in, directly or through nested groups.
    pub fn groups_of(&self, user: Uuid) -> HashSet<Uuid> {
        let mut found: HashSet<Uuid> = HashSet::new();
        let mut frontier = vec![user];
        while let Some(m) = frontier.pop() {
            for g in &self.scenario.groups {
                if g.members.contains(&m) && found.insert(g.id) {
                    frontier.push(g.id);
                }
            }
        }
        found
    }

    pub fn is_admin_agent(&self, user: Uuid) -> bool {
        let groups = self.groups_of(user);
        self.scenario
            .groups
            .iter()
            .any(|g| g.display_name.eq_ignore_ascii_case("AdminAgents") && groups.contains(&g.id))
    }

    fn assignment_status(&self, a: &AssignmentScenario, now: i64) -> String {
        match a.active_after_seconds {
            Some(after) if a.status == "pending" && now >= self.started + after as i64 => {
                "active".into()
            }
            _ => a.status.clone(),
        }
    }

    /// The role definition ids `user` holds in `customer`: active assignments of active
    /// relationships whose group the user is in (only roles the relationship carries).
    pub fn roles_in(&self, user: Uuid, customer: Uuid, now: i64) -> Vec<String> {
        let groups = self.groups_of(user);
        let mut out: Vec<String> = vec![];
        for r in self
            .scenario
            .relationships
            .iter()
            .filter(|r| r.customer == customer && r.status == "active")
        {
            for a in &r.access_assignments {
                if self.assignment_status(a, now) != "active" || !groups.contains(&a.group) {
                    continue;
                }
                for role in &a.unified_roles {
                    if r.unified_roles.iter().any(|x| x.eq_ignore_ascii_case(role))
                        && !out.contains(role)
                    {
                        out.push(role.clone());
                    }
                }
            }
        }
        out
    }

    fn end(&self, r: &RelationshipScenario) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.started).unwrap_or(OffsetDateTime::UNIX_EPOCH)
            + time::Duration::days(r.ends_in_days)
    }
}

fn roles_json(ids: &[String]) -> Value {
    json!({"unifiedRoles": ids.iter().map(|id| json!({"roleDefinitionId": id})).collect::<Vec<_>>()})
}

fn etag(parts: &str) -> String {
    format!("W/\"{}\"", B64.encode(parts.as_bytes()))
}

fn relationship_json(p: &Partner, inner: &Inner, r: &RelationshipScenario) -> Value {
    let end = p.end(r);
    let created = end - time::Duration::days(730);
    let customer_name = if r.customer_display_name.is_empty() {
        inner
            .tenant(r.customer)
            .map(|t| t.scenario.display_name.clone())
            .unwrap_or_default()
    } else {
        r.customer_display_name.clone()
    };
    json!({
        "@odata.type": "#microsoft.graph.delegatedAdminRelationship",
        "@odata.etag": etag(&format!("{}{}", r.id, r.status)),
        "id": r.id,
        "displayName": r.display_name,
        "duration": r.duration,
        "status": r.status,
        "autoExtendDuration": r.auto_extend_duration,
        "createdDateTime": iso(created),
        "activatedDateTime": iso(created + time::Duration::minutes(5)),
        "lastModifiedDateTime": iso(created + time::Duration::minutes(5)),
        "endDateTime": iso(end),
        "customer": {"tenantId": r.customer, "displayName": customer_name},
        "accessDetails": roles_json(&r.unified_roles),
    })
}

fn assignment_json(
    p: &Partner,
    r: &RelationshipScenario,
    a: &AssignmentScenario,
    now: i64,
) -> Value {
    let created = p.end(r) - time::Duration::days(729);
    json!({
        "@odata.type": "#microsoft.graph.delegatedAdminAccessAssignment",
        "@odata.etag": etag(&format!("{}{}", a.id, p.assignment_status(a, now))),
        "id": a.id,
        "status": p.assignment_status(a, now),
        "createdDateTime": iso(created),
        "lastModifiedDateTime": iso(created),
        "accessContainer": {
            "accessContainerId": a.group,
            "accessContainerType": "securityGroup",
        },
        "accessDetails": roles_json(&a.unified_roles),
    })
}

fn group_json(g: &GroupScenario) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.group",
        "id": g.id,
        "displayName": g.display_name,
        "description": null,
        "groupTypes": [],
        "mailEnabled": false,
        "securityEnabled": true,
        "mail": null,
    })
}

fn ok(status: u16, body: Value) -> GResp {
    GResp {
        status,
        body: Some(body),
        headers: vec![],
    }
}

/// The GDAP list APIs' largest page ("`$top` supports up to 300 objects").
const GDAP_MAX_TOP: usize = 300;
/// `memberOf` / `transitiveMemberOf`: "The default and maximum page sizes are 100 and 999".
const MEMBER_OF_MAX_TOP: usize = 999;

/// `$top` (1 to `max_top`; 100 a page without it), an opaque `$skiptoken` with
/// `@odata.nextLink` carrying the rest of the query, and `$select`.
fn page(
    graph_base: &url::Url,
    path: &str,
    q: &HashMap<String, String>,
    query: &str,
    context: &str,
    items: Vec<Value>,
    max_top: usize,
) -> GResp {
    let top = match q.get("$top") {
        None => 100,
        Some(t) => match t.parse::<usize>() {
            Ok(n) if (1..=max_top).contains(&n) => n,
            _ => {
                return gerr(
                    400,
                    "BadRequest",
                    &format!(
                        "Invalid page size specified: '{t}'. Must be between 1 and {max_top} inclusive."
                    ),
                );
            }
        },
    };
    let skip = q
        .get("$skiptoken")
        .and_then(|s| B64.decode(s).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.strip_prefix("gdap:")
                .and_then(|n| n.parse::<usize>().ok())
        })
        .unwrap_or(0);
    let total = items.len();
    let select: Vec<String> = q
        .get("$select")
        .map(|s| {
            s.split(',')
                .map(|p| p.trim().to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    let value: Vec<Value> = items
        .into_iter()
        .skip(skip)
        .take(top)
        .map(|v| match v {
            Value::Object(m) if !select.is_empty() => Value::Object(
                m.into_iter()
                    .filter(|(k, _)| {
                        k.starts_with("@odata") || select.contains(&k.to_ascii_lowercase())
                    })
                    .collect(),
            ),
            v => v,
        })
        .collect();
    let mut body = json!({"@odata.context": format!("{CONTEXT}{context}"), "value": value});
    if skip + top < total {
        let mut next = graph_base.join(&format!("v1.0{path}")).expect("joins");
        {
            let mut qp = next.query_pairs_mut();
            for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
                if k != "$skiptoken" {
                    qp.append_pair(&k, &v);
                }
            }
            qp.append_pair("$skiptoken", &B64.encode(format!("gdap:{}", skip + top)));
        }
        body["@odata.nextLink"] = json!(next.as_str());
    }
    ok(200, body)
}

/// `$filter` on a relationship, as the list API documents it (`status`, `displayName`,
/// `customer/tenantId`, with `eq` / `in` / `startswith`).
fn relationship_filter(filter: &str) -> Result<Vec<Clause>, GResp> {
    let clauses = parse_filter(filter).map_err(|_| {
        gerr(
            400,
            "BadRequest",
            &format!("Invalid filter clause: '{filter}'."),
        )
    })?;
    for c in &clauses {
        let prop = match c {
            Clause::Eq(p, _) | Clause::StartsWith(p, _) | Clause::In(p, _) => p,
            Clause::AnyEq(p, _) => p,
        };
        if !["status", "displayName", "customer/tenantId"]
            .iter()
            .any(|x| x.eq_ignore_ascii_case(prop))
            || matches!(c, Clause::AnyEq(..))
        {
            return Err(gerr(
                400,
                "BadRequest",
                &format!("The $filter on property '{prop}' is not supported."),
            ));
        }
    }
    Ok(clauses)
}

fn passes(clauses: &[Clause], r: &RelationshipScenario) -> bool {
    let get = |p: &str| -> String {
        match p.to_ascii_lowercase().as_str() {
            "status" => r.status.clone(),
            "displayname" => r.display_name.clone(),
            _ => r.customer.to_string(),
        }
    };
    clauses.iter().all(|c| match c {
        Clause::Eq(p, v) => get(p).eq_ignore_ascii_case(v),
        Clause::In(p, vs) => vs.iter().any(|v| get(p).eq_ignore_ascii_case(v)),
        Clause::StartsWith(p, v) => get(p)
            .to_ascii_lowercase()
            .starts_with(&v.to_ascii_lowercase()),
        Clause::AnyEq(..) => false,
    })
}

fn forbidden(scope: &str) -> GResp {
    gerr(
        403,
        "Authorization_RequestDenied",
        &format!("Insufficient privileges to complete the operation. The token needs {scope}."),
    )
}

/// The sandbox's GDAP routes in Graph, or None when the request is not one of them.
/// `now` is the sandbox's clock (unix seconds).
#[allow(clippy::too_many_arguments)]
pub(crate) fn graph(
    inner: &Inner,
    caller: &Caller,
    method: &str,
    path: &str,
    query: &str,
    body: Option<&Value>,
    graph_base: &url::Url,
    now: i64,
) -> Option<GResp> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let first = *segs.first()?;
    // A partner technician's token in a customer (`idp` = the partner's tenant): no user object
    // of the customer stands behind it, so `/me` does not resolve there.
    if first == "me"
        && let Some(idp) = caller.claims.idp.as_deref()
    {
        return Some(gerr(
            404,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{}' does not exist or one of its queried reference-property objects are not present. The signed-in user is a foreign principal from {idp}.",
                caller.claims.oid
            ),
        ));
    }
    let partner = inner.partner.as_ref()?;
    let q: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let user = Uuid::parse_str(&caller.claims.oid).unwrap_or_default();
    let in_partner = caller.tenant == partner.scenario.tenant;
    let rel_scopes = [
        "DelegatedAdminRelationship.Read.All",
        "DelegatedAdminRelationship.ReadWrite.All",
    ];
    let has_scope = |names: &[&str]| {
        let scp = caller.claims.scp.as_deref().unwrap_or("");
        scp.split_whitespace()
            .chain(caller.claims.roles.iter().map(String::as_str))
            .any(|s| names.iter().any(|n| n.eq_ignore_ascii_case(s)))
    };
    // Only the partner's AdminAgents see its relationships; anyone else gets none.
    let shown = in_partner && (caller.claims.scp.is_none() || partner.is_admin_agent(user));
    let visible = |_: &&RelationshipScenario| shown;
    match (segs.as_slice(), method) {
        (["tenantRelationships", "delegatedAdminRelationships"], "GET") => {
            if !has_scope(&rel_scopes) {
                return Some(forbidden("DelegatedAdminRelationship.Read.All"));
            }
            let clauses = match q.get("$filter") {
                Some(f) => match relationship_filter(f) {
                    Ok(c) => c,
                    Err(e) => return Some(e),
                },
                None => vec![],
            };
            let items = partner
                .scenario
                .relationships
                .iter()
                .filter(visible)
                .filter(|r| passes(&clauses, r))
                .map(|r| relationship_json(partner, inner, r))
                .collect();
            Some(page(
                graph_base,
                path,
                &q,
                query,
                "tenantRelationships/delegatedAdminRelationships",
                items,
                GDAP_MAX_TOP,
            ))
        }
        (["tenantRelationships", "delegatedAdminRelationships", id], "GET")
        | (
            [
                "tenantRelationships",
                "delegatedAdminRelationships",
                id,
                "accessAssignments",
            ],
            "GET",
        ) => {
            if !has_scope(&rel_scopes) {
                return Some(forbidden("DelegatedAdminRelationship.Read.All"));
            }
            let Some(r) = partner
                .scenario
                .relationships
                .iter()
                .filter(visible)
                .find(|r| r.id.eq_ignore_ascii_case(id))
            else {
                return Some(gerr(
                    404,
                    "ResourceNotFound",
                    &format!("The delegated admin relationship with id '{id}' was not found."),
                ));
            };
            if segs.len() == 3 {
                let mut v = relationship_json(partner, inner, r);
                v["@odata.context"] = json!(format!(
                    "{CONTEXT}tenantRelationships/delegatedAdminRelationships/$entity"
                ));
                return Some(ok(200, v));
            }
            let items = r
                .access_assignments
                .iter()
                .map(|a| assignment_json(partner, r, a, now))
                .collect();
            Some(page(
                graph_base,
                path,
                &q,
                query,
                &format!(
                    "tenantRelationships/delegatedAdminRelationships('{id}')/accessAssignments"
                ),
                items,
                GDAP_MAX_TOP,
            ))
        }
        (["tenantRelationships", "delegatedAdminCustomers"], "GET") => {
            if !has_scope(&rel_scopes) {
                return Some(forbidden("DelegatedAdminRelationship.Read.All"));
            }
            let mut seen = HashSet::new();
            let items = partner
                .scenario
                .relationships
                .iter()
                .filter(visible)
                .filter(|r| r.status == "active" && seen.insert(r.customer))
                .map(|r| {
                    let v = relationship_json(partner, inner, r);
                    json!({
                        "@odata.type": "#microsoft.graph.delegatedAdminCustomer",
                        "@odata.etag": etag(&r.customer.to_string()),
                        "id": r.customer,
                        "tenantId": r.customer,
                        "displayName": v["customer"]["displayName"],
                    })
                })
                .collect();
            Some(page(
                graph_base,
                path,
                &q,
                query,
                "tenantRelationships/delegatedAdminCustomers",
                items,
                GDAP_MAX_TOP,
            ))
        }
        (
            [
                "me",
                "memberOf" | "transitiveMemberOf",
                "microsoft.graph.group",
            ],
            "GET",
        ) if in_partner => {
            if !has_scope(&[
                "GroupMember.Read.All",
                "Group.Read.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
            ]) {
                return Some(forbidden("GroupMember.Read.All"));
            }
            let groups: HashSet<Uuid> = if segs[1] == "memberOf" {
                partner
                    .scenario
                    .groups
                    .iter()
                    .filter(|g| g.members.contains(&user))
                    .map(|g| g.id)
                    .collect()
            } else {
                partner.groups_of(user)
            };
            let items = partner
                .scenario
                .groups
                .iter()
                .filter(|g| groups.contains(&g.id))
                .map(group_json)
                .collect();
            Some(page(
                graph_base,
                path,
                &q,
                query,
                "groups",
                items,
                MEMBER_OF_MAX_TOP,
            ))
        }
        // A group's basic properties (GroupMember.Read.All reads them: "Get group").
        (["groups", id], "GET") if in_partner => {
            if !has_scope(&[
                "GroupMember.Read.All",
                "Group.Read.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
            ]) {
                return Some(forbidden("GroupMember.Read.All"));
            }
            let Some(g) = partner
                .scenario
                .groups
                .iter()
                .find(|g| g.id.to_string().eq_ignore_ascii_case(id))
            else {
                return Some(gerr(
                    404,
                    "Request_ResourceNotFound",
                    &format!(
                        "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
                    ),
                ));
            };
            let select: Vec<String> = q
                .get("$select")
                .map(|s| {
                    s.split(',')
                        .map(|p| p.trim().to_ascii_lowercase())
                        .collect()
                })
                .unwrap_or_default();
            let mut v = group_json(g);
            if let Value::Object(m) = &mut v
                && !select.is_empty()
            {
                m.retain(|k, _| {
                    k.starts_with("@odata") || select.contains(&k.to_ascii_lowercase())
                });
            }
            v["@odata.context"] = json!(format!("{CONTEXT}groups/$entity"));
            Some(ok(200, v))
        }
        (["me", "checkMemberGroups"], "POST") if in_partner => {
            if !has_scope(&[
                "GroupMember.Read.All",
                "Group.Read.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
            ]) {
                return Some(forbidden("GroupMember.Read.All"));
            }
            let Some(ids) = body
                .and_then(|b| b.get("groupIds"))
                .and_then(Value::as_array)
            else {
                return Some(gerr(
                    400,
                    "Request_BadRequest",
                    "A value is required for property 'groupIds' of resource 'checkMemberGroups'.",
                ));
            };
            if ids.len() > 20 {
                return Some(gerr(
                    400,
                    "Request_BadRequest",
                    "The number of group ids exceeds the limit of 20.",
                ));
            }
            let mine = partner.groups_of(user);
            let value: Vec<Value> = ids
                .iter()
                .filter_map(Value::as_str)
                .filter(|s| Uuid::parse_str(s).is_ok_and(|g| mine.contains(&g)))
                .map(|s| json!(s))
                .collect();
            Some(ok(
                200,
                json!({"@odata.context": format!("{CONTEXT}Collection(Edm.String)"), "value": value}),
            ))
        }
        _ => None,
    }
}

/// Why a partner technician's sign-in at a customer's authority is refused (an AADSTS code).
pub(crate) fn customer_sign_in(
    inner: &Inner,
    partner: &Partner,
    user: Uuid,
    customer: Uuid,
    client_id: &str,
    now: i64,
) -> Result<Vec<String>, u32> {
    let roles = partner.roles_in(user, customer, now);
    if roles.is_empty() {
        return Err(50020);
    }
    let first_party = super::catalog::FIRST_PARTY_PUBLIC_CLIENTS
        .iter()
        .any(|c| c.eq_ignore_ascii_case(client_id));
    let consented = inner.tenant(customer).is_some_and(|t| {
        t.service_principals
            .iter()
            .any(|s| s.app_id.eq_ignore_ascii_case(client_id))
    });
    if !first_party && (!consented || partner.consent_pending(customer, client_id, now)) {
        return Err(65001);
    }
    Ok(roles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_partner_scenario_parses() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs/scenarios/partner.json");
        let s = crate::Scenario::from_file(&path).unwrap();
        let p = Partner::new(s.partner.expect("partner section"), 0);
        let tech = s.tenants[0].signed_in_user.id;
        assert!(p.is_admin_agent(tech), "AdminAgents through Helpdesk");
        let fabrikam = s.tenants[1].id;
        assert_eq!(p.roles_in(tech, fabrikam, 0).len(), 3);
        let adatum = s.tenants[4].id;
        assert!(p.roles_in(tech, adatum, 599).is_empty(), "still pending");
        assert_eq!(p.roles_in(tech, adatum, 600).len(), 1);
        let litware = s.tenants[3].id;
        assert!(p.roles_in(tech, litware, 0).is_empty(), "not in Readers");
    }

    #[test]
    fn a_partner_tenant_must_be_a_tenant() {
        let e = serde_json::from_str::<crate::Scenario>(
            r#"{"partner":{"tenant":"00000000-0000-0000-0000-000000000009"}}"#,
        )
        .unwrap()
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("partner tenant"), "{e}");
    }
}
