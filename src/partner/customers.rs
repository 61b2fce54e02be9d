//! The customers GDAP reaches, the technician's effective roles in each, and a verdict.
//!
//! One survey per run, in the MSP's own tenant ([`survey`]): the relationships (one page of up
//! to 300), the access assignments of every usable one (`$batch`es of 20) and the technician's
//! groups, nested included (one page of up to 999). From those alone, with no request per
//! customer, each customer gets:
//!
//! - its **effective roles**: the roles of the *active* access assignments of its *active*
//!   relationships whose security group the technician is in, directly or nested, limited to the
//!   roles the relationship itself carries (Microsoft grants nothing beyond them); *pending*
//!   assignments are counted apart, as they do not act yet;
//! - a **verdict** ([`verdict`]): READY, EXPIRING (access ends in under 30 days) or BLOCKED with
//!   one of GDAP_NO_RELATIONSHIP, GDAP_NOT_IN_GROUP, GDAP_ROLE_MISSING, GDAP_ASSIGNMENT_PENDING,
//!   each with the one thing to do ([`Blocked::fix`]).
//!
//! Left out: customers reachable only through relationships that are not active (expired,
//! terminated, still awaiting approval) — nothing can be done in them through GDAP. Shown as
//! BLOCKED (GDAP_NO_RELATIONSHIP): customers reachable only through Microsoft-led `MLT_…`
//! relationships, whose default roles hal-onboard never uses, so the technician sees them and
//! learns what to request instead of wondering where they went.
//!
//! The roles onboarding needs ([`missing_roles`]): Application Administrator or Cloud
//! Application Administrator (the app, its service principal, its secret and the Office 365
//! Management grants), Privileged Role Administrator (the Microsoft Graph application
//! permissions), Exchange Administrator (unified audit logging) unless Exchange is skipped;
//! Global Administrator covers all of them. docs/partner.md cites Microsoft for each.

use std::collections::{HashMap, HashSet};

use time::OffsetDateTime;
use uuid::Uuid;

use crate::microsoft::graph::gdap::{AccessAssignment, Group, Relationship};
use crate::microsoft::graph::{GraphClient, GraphError};
use crate::tenant::TenantName;
use crate::wizard::roles;

/// Exchange Administrator's role template id (Microsoft Entra built-in roles).
pub const EXCHANGE_ADMIN: &str = "29232cdf-9323-42fd-ade2-1d097af3e4de";

/// A customer whose access ends in fewer days than this is EXPIRING.
pub const EXPIRING_WITHIN_DAYS: i64 = 30;

/// One requirement: any of `roles` meets it.
struct Need {
    /// How it is named when missing.
    name: &'static str,
    why: &'static str,
    roles: &'static [&'static str],
    exchange: bool,
}

const NEEDS: &[Need] = &[
    Need {
        name: "Cloud Application Administrator",
        why: "creates the app registration, its service principal and client secret, and grants the Office 365 Management API permissions, as Application Administrator also can",
        roles: &[
            roles::GLOBAL_ADMIN,
            roles::CLOUD_APPLICATION_ADMIN,
            roles::APPLICATION_ADMIN,
        ],
        exchange: false,
    },
    Need {
        name: "Privileged Role Administrator",
        why: "grants the 12 Microsoft Graph application permissions",
        roles: &[roles::GLOBAL_ADMIN, roles::PRIVILEGED_ROLE_ADMIN],
        exchange: false,
    },
    Need {
        name: "Exchange Administrator",
        why: "switches on unified audit logging in Exchange Online, unless you use --skip-exchange",
        roles: &[roles::GLOBAL_ADMIN, EXCHANGE_ADMIN],
        exchange: true,
    },
];

/// The roles onboarding still needs, by name, given the role template ids `held`: Application
/// Administrator or Cloud Application Administrator (named "Cloud Application Administrator");
/// Privileged Role Administrator; Exchange Administrator unless `skip_exchange`. Global
/// Administrator covers all.
pub fn missing_roles(held: &[String], skip_exchange: bool) -> Vec<&'static str> {
    unmet(held, skip_exchange).map(|n| n.name).collect()
}

fn unmet(held: &[String], skip_exchange: bool) -> impl Iterator<Item = &'static Need> + '_ {
    let met = move |n: &Need| {
        n.roles
            .iter()
            .any(|r| held.iter().any(|h| h.eq_ignore_ascii_case(r)))
    };
    NEEDS
        .iter()
        .filter(move |n| !(skip_exchange && n.exchange))
        .filter(move |n| !met(n))
}

/// Why onboarding needs a role [`missing_roles`] named.
pub fn why(missing: &str) -> &'static str {
    NEEDS
        .iter()
        .find(|n| n.name == missing)
        .map(|n| n.why)
        .unwrap_or("")
}

/// A role's name from its template id ("the role 1a2b…" for one hal-onboard does not know).
pub fn role_name(template_id: &str) -> String {
    roles::name(template_id)
        .map(str::to_string)
        .unwrap_or_else(|| format!("the role {template_id}"))
}

/// A relationship as the verdict sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationshipView {
    pub id: String,
    pub display_name: String,
    /// `endDateTime`.
    pub ends_at: Option<OffsetDateTime>,
    /// Microsoft extends it at its end (`autoExtendDuration`), so that end is not the end.
    pub auto_extends: bool,
    /// The role template ids it carries.
    pub roles: Vec<String>,
}

/// A role reaching the technician (or, for [`Customer::others`], a group) in a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldRole {
    /// Role template id.
    pub role: String,
    pub relationship_id: String,
    pub relationship: String,
    pub group_id: Uuid,
    /// The group's display name; its id when it could not be read.
    pub group: String,
}

impl HeldRole {
    pub fn role_name(&self) -> String {
        role_name(&self.role)
    }
}

/// "Exchange Administrator (relationship 'Onboarding', group 'Tier 2')", one per role, or
/// "none".
pub fn describe_held(held: &[HeldRole]) -> String {
    if held.is_empty() {
        return "none".into();
    }
    held.iter()
        .map(|h| {
            format!(
                "{} (relationship '{}', group '{}')",
                h.role_name(),
                h.relationship,
                h.group
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A customer GDAP reaches (or one reachable only through Microsoft-led relationships).
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub tenant_id: Uuid,
    pub display_name: String,
    /// Its active relationships that the partner made (the ones hal-onboard uses).
    pub relationships: Vec<RelationshipView>,
    /// Its active Microsoft-led `MLT_…` relationships (never used).
    pub microsoft_led: Vec<RelationshipView>,
    /// The technician's effective roles: active assignments, the technician's groups.
    pub roles: Vec<HeldRole>,
    /// Roles of pending assignments to the technician's groups (not acting yet).
    pub pending: Vec<HeldRole>,
    /// Roles of active assignments to groups the technician is not in (who to ask to join).
    pub others: Vec<HeldRole>,
    /// When onboarding's access ends (READY / EXPIRING), else the latest relationship end.
    pub ends_at: Option<OffsetDateTime>,
    pub verdict: Verdict,
}

impl Customer {
    fn held_ids(&self) -> Vec<String> {
        self.roles.iter().map(|h| h.role.clone()).collect()
    }

    /// When blocked: what is wrong (each missing role and why it is needed) and the roles the
    /// technician has there, with relationship and group names — the skip message of
    /// `tenant add --partner`; [`Blocked::fix`] says what to do.
    pub fn blocked_message(&self) -> Option<String> {
        match &self.verdict {
            Verdict::Blocked(b) => Some(format!(
                "{}; your roles there: {}",
                b.reason(),
                describe_held(&self.roles)
            )),
            _ => None,
        }
    }

    /// The distinct effective role names, in the order of [`Customer::roles`].
    pub fn role_names(&self) -> Vec<String> {
        let mut out: Vec<String> = vec![];
        for h in &self.roles {
            let n = h.role_name();
            if !out.contains(&n) {
                out.push(n);
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Ready,
    /// Ready, but the access ends in under [`EXPIRING_WITHIN_DAYS`] days.
    Expiring {
        ends_at: OffsetDateTime,
    },
    Blocked(Blocked),
}

impl Verdict {
    /// `READY`, `EXPIRING` or `BLOCKED` (the `partner customers --json` `verdict`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Ready => "READY",
            Verdict::Expiring { .. } => "EXPIRING",
            Verdict::Blocked(_) => "BLOCKED",
        }
    }
    /// The blocked code, when blocked.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Verdict::Blocked(b) => Some(b.code()),
            _ => None,
        }
    }
    /// Onboarding may go ahead (READY or EXPIRING).
    pub fn is_ok(&self) -> bool {
        !matches!(self, Verdict::Blocked(_))
    }
}

/// Why a customer cannot be onboarded through GDAP, with what it takes.
#[derive(Debug, Clone, PartialEq)]
pub enum Blocked {
    /// No active relationship the partner made: none at all (or only expired ones), or only
    /// Microsoft-led `MLT_…` ones (their names).
    NoRelationship { microsoft_led: Vec<String> },
    /// Active assignments would give the missing roles, to groups the technician is not in.
    NotInGroup {
        missing: Vec<&'static str>,
        /// The roles those groups get (one entry per role, group and relationship).
        join: Vec<HeldRole>,
    },
    /// No assignment gives the technician (or anyone) the missing roles.
    RoleMissing {
        missing: Vec<&'static str>,
        gaps: Vec<RoleGap>,
    },
    /// Pending assignments will give the missing roles once Microsoft has applied them.
    AssignmentPending {
        missing: Vec<&'static str>,
        pending: Vec<HeldRole>,
    },
}

/// One missing role, and the relationships that carry it without assigning it to a group the
/// technician is in (empty: no relationship carries it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleGap {
    pub role: &'static str,
    pub why: &'static str,
    pub carried_by: Vec<String>,
}

/// What a new relationship request should carry, in words.
const REQUEST_ROLES: &str = "Cloud Application Administrator and Privileged Role Administrator (and Exchange Administrator, unless you onboard with --skip-exchange)";

impl Blocked {
    /// A tenant GDAP does not reach (for `tenant add --partner TENANT`).
    pub fn no_relationship() -> Blocked {
        Blocked::NoRelationship {
            microsoft_led: vec![],
        }
    }

    /// The stable code (`partner customers --json` `code`).
    pub fn code(&self) -> &'static str {
        match self {
            Blocked::NoRelationship { .. } => "GDAP_NO_RELATIONSHIP",
            Blocked::NotInGroup { .. } => "GDAP_NOT_IN_GROUP",
            Blocked::RoleMissing { .. } => "GDAP_ROLE_MISSING",
            Blocked::AssignmentPending { .. } => "GDAP_ASSIGNMENT_PENDING",
        }
    }

    /// The roles still missing (none for GDAP_NO_RELATIONSHIP: everything is).
    pub fn missing(&self) -> &[&'static str] {
        match self {
            Blocked::NoRelationship { .. } => &[],
            Blocked::NotInGroup { missing, .. }
            | Blocked::RoleMissing { missing, .. }
            | Blocked::AssignmentPending { missing, .. } => missing,
        }
    }

    /// What is wrong, in one sentence, with why each missing role is needed.
    pub fn reason(&self) -> String {
        let missing = || {
            self.missing()
                .iter()
                .map(|m| format!("{m} (it {})", why(m)))
                .collect::<Vec<_>>()
                .join("; ")
        };
        match self {
            Blocked::NoRelationship { microsoft_led } if microsoft_led.is_empty() => {
                "no active GDAP relationship reaches this customer".into()
            }
            Blocked::NoRelationship { microsoft_led } => format!(
                "this customer is reachable only through the Microsoft-led relationship {}, whose default roles hal-onboard does not use",
                quoted(microsoft_led)
            ),
            Blocked::NotInGroup { .. } => format!(
                "you are not in the security group that has {} here",
                missing()
            ),
            Blocked::RoleMissing { .. } => format!("you do not have {} here", missing()),
            Blocked::AssignmentPending { .. } => format!(
                "the access assignment that gives you {} here is still pending",
                missing()
            ),
        }
    }

    /// The one thing to do about it: which role to add to which relationship, which group to
    /// join, or to wait for the pending assignment.
    pub fn fix(&self) -> String {
        match self {
            Blocked::NoRelationship { microsoft_led } => {
                let ask = format!(
                    "request a GDAP relationship from this customer in Partner Center (Customers, Request admin relationship) with {REQUEST_ROLES}, have the customer's Global Administrator approve it, then assign those roles to a security group you are in."
                );
                if microsoft_led.is_empty() {
                    capitalize(&ask)
                } else {
                    format!("Microsoft-led relationships are not used: {ask}")
                }
            }
            Blocked::NotInGroup { join, .. } => {
                let mut groups: Vec<(String, Vec<String>, Vec<String>)> = vec![];
                for h in join {
                    match groups.iter_mut().find(|g| g.0 == h.group) {
                        Some(g) => {
                            push_new(&mut g.1, h.role_name());
                            push_new(&mut g.2, format!("'{}'", h.relationship));
                        }
                        None => groups.push((
                            h.group.clone(),
                            vec![h.role_name()],
                            vec![format!("'{}'", h.relationship)],
                        )),
                    }
                }
                let each: Vec<String> = groups
                    .iter()
                    .map(|(g, r, rel)| {
                        format!(
                            "'{g}' (it has {} through relationship {})",
                            r.join(", "),
                            rel.join(", ")
                        )
                    })
                    .collect();
                format!(
                    "Ask an admin of your partner tenant to add you to the security group {} (Entra admin center, Groups), then run the command again.",
                    each.join(" or ")
                )
            }
            Blocked::RoleMissing { gaps, .. } => {
                let each: Vec<String> = gaps
                    .iter()
                    .map(|g| {
                        if g.carried_by.is_empty() {
                            format!(
                                "request a new GDAP relationship from this customer that includes {} (an approved relationship's roles cannot be changed) and assign it to a security group you are in",
                                g.role
                            )
                        } else {
                            format!(
                                "in relationship {}, assign {} to a security group you are in (Partner Center: Customers, the customer, Admin relationships, the relationship, Assign security groups)",
                                quoted(&g.carried_by),
                                g.role
                            )
                        }
                    })
                    .collect();
                format!("{}.", capitalize(&each.join("; ")))
            }
            Blocked::AssignmentPending { pending, .. } => {
                let mut where_: Vec<String> = vec![];
                for h in pending {
                    push_new(
                        &mut where_,
                        format!("relationship '{}', group '{}'", h.relationship, h.group),
                    );
                }
                format!(
                    "Wait until Microsoft has applied the pending access assignment ({}), usually minutes, then run the command again.",
                    where_.join("; ")
                )
            }
        }
    }
}

fn push_new(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(" or ")
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The verdict for `c`, from its relationships and roles alone (no request).
pub fn verdict(c: &Customer, skip_exchange: bool, now: OffsetDateTime) -> Verdict {
    if c.relationships.is_empty() {
        return Verdict::Blocked(Blocked::NoRelationship {
            microsoft_led: c
                .microsoft_led
                .iter()
                .map(|r| r.display_name.clone())
                .collect(),
        });
    }
    let held = c.held_ids();
    let missing = missing_roles(&held, skip_exchange);
    if missing.is_empty() {
        return match access_ends(c, skip_exchange) {
            Some(end) if end - now < time::Duration::days(EXPIRING_WITHIN_DAYS) => {
                Verdict::Expiring { ends_at: end }
            }
            _ => Verdict::Ready,
        };
    }
    let needed: Vec<&'static Need> = unmet(&held, skip_exchange).collect();
    let gives = |h: &&HeldRole| {
        needed
            .iter()
            .any(|n| n.roles.iter().any(|r| r.eq_ignore_ascii_case(&h.role)))
    };
    let mut with_pending = held.clone();
    with_pending.extend(c.pending.iter().map(|h| h.role.clone()));
    if missing_roles(&with_pending, skip_exchange).is_empty() {
        return Verdict::Blocked(Blocked::AssignmentPending {
            missing,
            pending: c.pending.iter().filter(gives).cloned().collect(),
        });
    }
    let mut with_others = with_pending;
    with_others.extend(c.others.iter().map(|h| h.role.clone()));
    if missing_roles(&with_others, skip_exchange).is_empty() {
        return Verdict::Blocked(Blocked::NotInGroup {
            missing,
            join: c.others.iter().filter(gives).cloned().collect(),
        });
    }
    let gaps = needed
        .iter()
        .map(|n| RoleGap {
            role: n.name,
            why: n.why,
            carried_by: c
                .relationships
                .iter()
                .filter(|r| {
                    r.roles
                        .iter()
                        .any(|x| n.roles.iter().any(|y| y.eq_ignore_ascii_case(x)))
                })
                .map(|r| r.display_name.clone())
                .collect(),
        })
        .collect();
    Verdict::Blocked(Blocked::RoleMissing { missing, gaps })
}

/// When the roles onboarding needs stop reaching the technician: the first relationship end
/// after which what remains no longer covers them (a relationship Microsoft auto-extends does
/// not end). `None`: not before an auto-extension, or no end known.
pub fn access_ends(c: &Customer, skip_exchange: bool) -> Option<OffsetDateTime> {
    let end_of = |id: &str| {
        c.relationships
            .iter()
            .find(|r| r.id == id)
            .and_then(|r| if r.auto_extends { None } else { r.ends_at })
    };
    let mut ends: Vec<OffsetDateTime> = c
        .roles
        .iter()
        .filter_map(|h| end_of(&h.relationship_id))
        .collect();
    ends.sort();
    ends.dedup();
    ends.into_iter().find(|&d| {
        let left: Vec<String> = c
            .roles
            .iter()
            .filter(|h| end_of(&h.relationship_id).is_none_or(|e| e > d))
            .map(|h| h.role.clone())
            .collect();
        !missing_roles(&left, skip_exchange).is_empty()
    })
}

/// The customer `tenant` names, by tenant ID (a domain must be resolved to its tenant ID
/// first: GDAP lists customers by ID and name only). GDAP_NO_RELATIONSHIP when none.
pub fn find<'a>(customers: &'a [Customer], tenant: &TenantName) -> Result<&'a Customer, Blocked> {
    match tenant.id() {
        Some(id) => find_id(customers, id),
        None => Err(Blocked::no_relationship()),
    }
}

/// The customer with tenant ID `id`; GDAP_NO_RELATIONSHIP when none.
pub fn find_id(customers: &[Customer], id: Uuid) -> Result<&Customer, Blocked> {
    customers
        .iter()
        .find(|c| c.tenant_id == id)
        .ok_or_else(Blocked::no_relationship)
}

/// Reading the partner's GDAP state failed.
#[derive(Debug, thiserror::Error)]
pub enum GdapError {
    /// Microsoft answers an empty list, not an error, to anyone outside AdminAgents.
    #[error("your partner tenant shows you no GDAP relationship")]
    NoneVisible,
    #[error("Microsoft Graph refused to read {what} in your partner tenant (HTTP 403)")]
    Forbidden {
        what: &'static str,
        /// The delegated permission the partner app needs for it.
        permission: &'static str,
        #[source]
        source: GraphError,
    },
    #[error("cannot read {what} in your partner tenant")]
    Graph {
        what: &'static str,
        #[source]
        source: GraphError,
    },
}

impl GdapError {
    fn graph(what: &'static str, permission: &'static str) -> impl Fn(GraphError) -> GdapError {
        move |source| {
            if source.status() == Some(403) {
                GdapError::Forbidden {
                    what,
                    permission,
                    source,
                }
            } else {
                GdapError::Graph { what, source }
            }
        }
    }

    /// What to do next.
    pub fn hint(&self) -> String {
        match self {
            GdapError::NoneVisible => "Only members of your partner tenant's AdminAgents security group see its GDAP relationships: ask an admin of your partner tenant to add you to AdminAgents (Partner Center, Account settings, User management, Admin agent), then run `hal-onboard partner customers` again. A partner with no relationship yet requests one in Partner Center (Customers, Request admin relationship).".into(),
            GdapError::Forbidden { permission, .. } => format!(
                "The partner app has no consent for {permission} in your partner tenant: an admin of it runs `hal-onboard partner setup --tenant <your MSP domain>` (it repairs the app and grants consent), then you run `hal-onboard partner login`."
            ),
            GdapError::Graph { source, .. } => match source {
                GraphError::Token(_) | GraphError::Api { status: 401, .. } => source
                    .sign_in()
                    .and_then(|e| e.hint())
                    .unwrap_or_else(|| "Run `hal-onboard partner login`, then the same command again.".into()),
                _ => source.hint().unwrap_or_else(|| "Run the same command again in a few minutes.".into()),
            },
        }
    }
}

const RELATIONSHIPS: (&str, &str) = (
    "the GDAP relationships",
    "DelegatedAdminRelationship.Read.All",
);
const GROUPS: (&str, &str) = ("the groups you are in", "GroupMember.Read.All");

/// Every customer GDAP reaches, with the technician's roles and the verdict (sorted by name),
/// read in one survey of the partner tenant. An empty relationship list is
/// [`GdapError::NoneVisible`] (the AdminAgents hint), not "no customers".
pub async fn survey(
    msp_graph: &GraphClient,
    skip_exchange: bool,
) -> Result<Vec<Customer>, GdapError> {
    let now = OffsetDateTime::now_utc();
    let rels = msp_graph
        .delegated_admin_relationships()
        .await
        .map_err(GdapError::graph(RELATIONSHIPS.0, RELATIONSHIPS.1))?;
    if rels.is_empty() {
        return Err(GdapError::NoneVisible);
    }
    let used: Vec<&str> = rels
        .iter()
        .filter(|r| usable(r, now) && !r.is_microsoft_led())
        .map(|r| r.id.as_str())
        .collect();
    // Independent reads: at the same time.
    let (assignments, groups) = futures::join!(
        msp_graph.access_assignments_of(&used),
        msp_graph.my_groups()
    );
    let groups = groups.map_err(GdapError::graph(GROUPS.0, GROUPS.1))?;
    let assignments = assignments.map_err(GdapError::graph(RELATIONSHIPS.0, RELATIONSHIPS.1))?;
    let mut by_rel: HashMap<String, Vec<AccessAssignment>> = HashMap::new();
    for (id, a) in used.iter().zip(assignments) {
        let a = a.map_err(GdapError::graph(RELATIONSHIPS.0, RELATIONSHIPS.1))?;
        by_rel.insert(id.to_string(), a);
    }
    let mut customers = assemble(&rels, &by_rel, &groups, skip_exchange, now);
    // Name the groups to join (only for those who need it: no request otherwise).
    let unnamed: Vec<Uuid> = customers
        .iter()
        .filter_map(|c| match &c.verdict {
            Verdict::Blocked(Blocked::NotInGroup { join, .. }) => Some(join),
            _ => None,
        })
        .flatten()
        .map(|h| h.group_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if !unnamed.is_empty()
        && let Ok(names) = msp_graph.group_names(&unnamed).await
    {
        for c in &mut customers {
            for h in c.others.iter_mut() {
                if let Some(n) = names
                    .iter()
                    .find(|g| g.id == h.group_id)
                    .and_then(|g| g.display_name.clone())
                {
                    h.group = n;
                }
            }
            c.verdict = verdict(c, skip_exchange, now);
        }
    }
    Ok(customers)
}

/// Active and not past its end (Microsoft may flip the status a little after the end).
fn usable(r: &Relationship, now: OffsetDateTime) -> bool {
    r.is_active() && r.end_date_time.is_none_or(|e| e > now)
}

/// The customers from what the survey read: `assignments` by relationship id, `my_groups` the
/// technician's groups (nested included). Pure, for the tests.
pub fn assemble(
    relationships: &[Relationship],
    assignments: &HashMap<String, Vec<AccessAssignment>>,
    my_groups: &[Group],
    skip_exchange: bool,
    now: OffsetDateTime,
) -> Vec<Customer> {
    let mine: HashMap<Uuid, &Group> = my_groups.iter().map(|g| (g.id, g)).collect();
    let mut customers: Vec<Customer> = vec![];
    for r in relationships.iter().filter(|r| usable(r, now)) {
        let Some(tenant_id) = r.customer.tenant_id else {
            continue;
        };
        let idx = match customers.iter().position(|c| c.tenant_id == tenant_id) {
            Some(i) => i,
            None => {
                customers.push(Customer {
                    tenant_id,
                    display_name: r.customer.display_name.clone(),
                    relationships: vec![],
                    microsoft_led: vec![],
                    roles: vec![],
                    pending: vec![],
                    others: vec![],
                    ends_at: None,
                    verdict: Verdict::Ready,
                });
                customers.len() - 1
            }
        };
        let c = &mut customers[idx];
        if c.display_name.is_empty() {
            c.display_name = r.customer.display_name.clone();
        }
        let view = RelationshipView {
            id: r.id.clone(),
            display_name: r.display_name.clone(),
            ends_at: r.end_date_time,
            auto_extends: r.auto_extends(),
            roles: r.role_ids().map(str::to_string).collect(),
        };
        if r.is_microsoft_led() {
            c.microsoft_led.push(view);
            continue;
        }
        for a in assignments.get(&r.id).into_iter().flatten() {
            let Some(group_id) = a.access_container.access_container_id else {
                continue;
            };
            let member = mine.get(&group_id);
            let list = match (a.status.as_str(), member) {
                ("active", Some(_)) => &mut c.roles,
                ("pending", Some(_)) => &mut c.pending,
                ("active", None) => &mut c.others,
                _ => continue,
            };
            let group = member
                .and_then(|g| g.display_name.clone())
                .unwrap_or_else(|| group_id.to_string());
            // Only what the relationship itself carries is granted.
            for role in a
                .access_details
                .role_ids()
                .filter(|x| view.roles.iter().any(|y| y.eq_ignore_ascii_case(x)))
            {
                let h = HeldRole {
                    role: role.to_string(),
                    relationship_id: r.id.clone(),
                    relationship: r.display_name.clone(),
                    group_id,
                    group: group.clone(),
                };
                if !list.contains(&h) {
                    list.push(h);
                }
            }
        }
        c.relationships.push(view);
    }
    for c in &mut customers {
        c.verdict = verdict(c, skip_exchange, now);
        c.ends_at = match &c.verdict {
            Verdict::Expiring { ends_at } => Some(*ends_at),
            Verdict::Ready => access_ends(c, skip_exchange),
            Verdict::Blocked(_) => c
                .relationships
                .iter()
                .chain(&c.microsoft_led)
                .filter_map(|r| r.ends_at)
                .max(),
        };
    }
    customers.sort_by(|a, b| {
        a.display_name
            .to_lowercase()
            .cmp(&b.display_name.to_lowercase())
            .then(a.tenant_id.cmp(&b.tenant_id))
    });
    customers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::microsoft::graph::gdap::{
        AccessContainer, AccessDetails, RelationshipCustomer, UnifiedRole,
    };

    const GA: &str = roles::GLOBAL_ADMIN;
    const APP: &str = roles::APPLICATION_ADMIN;
    const CLOUD_APP: &str = roles::CLOUD_APPLICATION_ADMIN;
    const PRA: &str = roles::PRIVILEGED_ROLE_ADMIN;
    const EXO: &str = EXCHANGE_ADMIN;
    const READERS: &str = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b";
    const ONBOARD: [&str; 3] = [CLOUD_APP, PRA, EXO];

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-12-04 03:00 UTC)
    }

    fn gid(n: u128) -> Uuid {
        Uuid::from_u128(0xA000 + n)
    }

    fn details(roles: &[&str]) -> AccessDetails {
        AccessDetails {
            unified_roles: roles
                .iter()
                .map(|r| UnifiedRole {
                    role_definition_id: r.to_string(),
                })
                .collect(),
        }
    }

    fn rel(
        id: &str,
        customer: u128,
        name: &str,
        status: &str,
        roles: &[&str],
        days: i64,
    ) -> Relationship {
        Relationship {
            id: id.into(),
            display_name: name.into(),
            status: status.into(),
            customer: RelationshipCustomer {
                tenant_id: Some(Uuid::from_u128(customer)),
                display_name: format!("Customer {customer}"),
            },
            access_details: details(roles),
            end_date_time: Some(now() + time::Duration::days(days)),
            auto_extend_duration: Some("PT0S".into()),
        }
    }

    fn asg(group: u128, status: &str, roles: &[&str]) -> AccessAssignment {
        AccessAssignment {
            id: format!("a{group}"),
            status: status.into(),
            access_container: AccessContainer {
                access_container_id: Some(gid(group)),
                access_container_type: "securityGroup".into(),
            },
            access_details: details(roles),
        }
    }

    /// The technician is in groups 1 ("Tier 2") and 2 ("Onboarders", through nesting: the
    /// transitive read lists it like a direct one).
    fn mine() -> Vec<Group> {
        vec![
            Group {
                id: gid(1),
                display_name: Some("Tier 2".into()),
            },
            Group {
                id: gid(2),
                display_name: Some("Onboarders".into()),
            },
        ]
    }

    fn run(
        rels: &[Relationship],
        asgs: &[(&str, Vec<AccessAssignment>)],
        skip: bool,
    ) -> Vec<Customer> {
        let by: HashMap<String, Vec<AccessAssignment>> = asgs
            .iter()
            .map(|(id, a)| (id.to_string(), a.clone()))
            .collect();
        assemble(rels, &by, &mine(), skip, now())
    }

    fn one(rels: &[Relationship], asgs: &[(&str, Vec<AccessAssignment>)], skip: bool) -> Customer {
        let c = run(rels, asgs, skip);
        assert_eq!(c.len(), 1, "{c:#?}");
        c.into_iter().next().unwrap()
    }

    fn blocked(c: &Customer) -> &Blocked {
        match &c.verdict {
            Verdict::Blocked(b) => b,
            v => panic!("not blocked: {v:?}"),
        }
    }

    #[test]
    fn the_three_roles_through_a_nested_group_are_ready() {
        let c = one(
            &[rel("r1", 1, "Onboarding", "active", &ONBOARD, 200)],
            &[("r1", vec![asg(2, "active", &ONBOARD)])],
            false,
        );
        assert_eq!(c.verdict, Verdict::Ready);
        assert_eq!(c.verdict.as_str(), "READY");
        assert_eq!(c.verdict.code(), None);
        assert_eq!(c.blocked_message(), None);
        assert_eq!(
            c.role_names(),
            [
                "Cloud Application Administrator",
                "Privileged Role Administrator",
                "Exchange Administrator"
            ]
        );
        assert_eq!(c.roles[0].group, "Onboarders");
        assert_eq!(c.roles[0].relationship, "Onboarding");
        assert_eq!(c.ends_at, Some(now() + time::Duration::days(200)));
        assert!(describe_held(&c.roles).contains(
            "Privileged Role Administrator (relationship 'Onboarding', group 'Onboarders')"
        ));
    }

    #[test]
    fn global_administrator_covers_every_role() {
        assert!(missing_roles(&[GA.to_string()], false).is_empty());
        let c = one(
            &[rel("r1", 1, "GA", "active", &[GA], 200)],
            &[("r1", vec![asg(1, "active", &[GA])])],
            false,
        );
        assert_eq!(c.verdict, Verdict::Ready);
    }

    #[test]
    fn missing_roles_names_each_requirement_and_skip_exchange_drops_one() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            missing_roles(&[], false),
            [
                "Cloud Application Administrator",
                "Privileged Role Administrator",
                "Exchange Administrator"
            ]
        );
        assert_eq!(
            missing_roles(&[], true),
            [
                "Cloud Application Administrator",
                "Privileged Role Administrator"
            ]
        );
        // Application Administrator serves as well as Cloud Application Administrator.
        assert!(missing_roles(&s(&[APP, PRA, EXO]), false).is_empty());
        assert!(missing_roles(&s(&[CLOUD_APP, PRA]), true).is_empty());
        assert_eq!(
            missing_roles(&s(&[CLOUD_APP, PRA]), false),
            ["Exchange Administrator"]
        );
        assert_eq!(
            missing_roles(&s(&[APP, EXO]), false),
            ["Privileged Role Administrator"]
        );
        // Role ids compare case-insensitively (Graph does not promise a case).
        assert!(missing_roles(&[GA.to_uppercase()], false).is_empty());
        assert!(
            why("Privileged Role Administrator")
                .contains("Microsoft Graph application permissions")
        );
        // skip_exchange turns a customer without Exchange Administrator READY.
        let rels = [rel("r1", 1, "Onboarding", "active", &[CLOUD_APP, PRA], 200)];
        let asgs = [("r1", vec![asg(1, "active", &[CLOUD_APP, PRA])])];
        assert_eq!(one(&rels, &asgs, true).verdict, Verdict::Ready);
        let b = one(&rels, &asgs, false);
        assert_eq!(blocked(&b).code(), "GDAP_ROLE_MISSING");
        assert_eq!(blocked(&b).missing(), ["Exchange Administrator"]);
    }

    #[test]
    fn expiring_is_under_thirty_days() {
        let at = |days| {
            one(
                &[rel("r1", 1, "Onboarding", "active", &ONBOARD, days)],
                &[("r1", vec![asg(1, "active", &ONBOARD)])],
                false,
            )
            .verdict
        };
        assert_eq!(
            at(29),
            Verdict::Expiring {
                ends_at: now() + time::Duration::days(29)
            }
        );
        assert_eq!(at(29).as_str(), "EXPIRING");
        assert!(at(29).is_ok());
        assert_eq!(at(31), Verdict::Ready);
        assert_eq!(at(30), Verdict::Ready, "30 days is not under 30 days");
        // A relationship Microsoft extends at its end is not expiring.
        let mut r = rel("r1", 1, "Onboarding", "active", &ONBOARD, 5);
        r.auto_extend_duration = Some("P180D".into());
        let c = one(&[r], &[("r1", vec![asg(1, "active", &ONBOARD)])], false);
        assert_eq!(c.verdict, Verdict::Ready);
    }

    #[test]
    fn access_ends_when_a_needed_role_goes_not_at_the_first_end() {
        // Exchange Administrator comes from a relationship ending in 10 days, the rest from one
        // ending in 300: access ends in 10 days, unless Exchange is skipped.
        let rels = [
            rel("r1", 1, "Apps", "active", &[CLOUD_APP, PRA], 300),
            rel("r2", 1, "Exchange", "active", &[EXO], 10),
        ];
        let asgs = [
            ("r1", vec![asg(1, "active", &[CLOUD_APP, PRA])]),
            ("r2", vec![asg(1, "active", &[EXO])]),
        ];
        let c = one(&rels, &asgs, false);
        assert_eq!(
            c.verdict,
            Verdict::Expiring {
                ends_at: now() + time::Duration::days(10)
            }
        );
        let c = one(&rels, &asgs, true);
        assert_eq!(c.verdict, Verdict::Ready);
        assert_eq!(c.ends_at, Some(now() + time::Duration::days(300)));
        // The same roles twice: the later end decides.
        let rels = [
            rel("r1", 1, "Old", "active", &ONBOARD, 10),
            rel("r2", 1, "New", "active", &ONBOARD, 400),
        ];
        let asgs = [
            ("r1", vec![asg(1, "active", &ONBOARD)]),
            ("r2", vec![asg(1, "active", &ONBOARD)]),
        ];
        let c = one(&rels, &asgs, false);
        assert_eq!(c.verdict, Verdict::Ready);
        assert_eq!(c.ends_at, Some(now() + time::Duration::days(400)));
        assert_eq!(c.relationships.len(), 2);
    }

    #[test]
    fn an_expired_or_terminated_relationship_offers_nothing() {
        let rels = [
            rel("r1", 1, "Onboarding 2023", "expired", &ONBOARD, -30),
            rel("r2", 2, "Old", "terminated", &ONBOARD, -1),
            // Still `active` a moment after its end: Microsoft flips the status later.
            rel("r3", 3, "Just ended", "active", &ONBOARD, -1),
            rel("r4", 4, "Awaiting", "approvalPending", &ONBOARD, 700),
        ];
        let asgs = [
            ("r1", vec![asg(1, "active", &ONBOARD)]),
            ("r2", vec![asg(1, "active", &ONBOARD)]),
            ("r3", vec![asg(1, "active", &ONBOARD)]),
        ];
        let cs = run(&rels, &asgs, false);
        assert!(cs.is_empty(), "{cs:#?}");
        let name: TenantName = Uuid::from_u128(1).to_string().parse().unwrap();
        let e = find(&cs, &name).unwrap_err();
        assert_eq!(e.code(), "GDAP_NO_RELATIONSHIP");
        assert!(
            e.fix().starts_with("Request a GDAP relationship"),
            "{}",
            e.fix()
        );
    }

    #[test]
    fn a_customer_reachable_only_through_mlt_is_blocked_with_the_fix() {
        let c = one(
            &[rel(
                "r1",
                1,
                "MLT_7f3c9b1e0a4d4e2b",
                "active",
                &[READERS, PRA],
                200,
            )],
            &[("r1", vec![asg(1, "active", &[READERS, PRA])])],
            false,
        );
        let b = blocked(&c);
        assert_eq!(b.code(), "GDAP_NO_RELATIONSHIP");
        assert!(c.roles.is_empty(), "MLT_ roles are never counted");
        assert_eq!(c.microsoft_led[0].display_name, "MLT_7f3c9b1e0a4d4e2b");
        assert!(
            b.reason().contains("'MLT_7f3c9b1e0a4d4e2b'"),
            "{}",
            b.reason()
        );
        let fix = b.fix();
        assert!(
            fix.starts_with(
                "Microsoft-led relationships are not used: request a GDAP relationship"
            ),
            "{fix}"
        );
        assert!(fix.contains("Privileged Role Administrator"), "{fix}");
        // Beside a relationship the partner made, MLT_ changes nothing.
        let c = one(
            &[
                rel("r1", 1, "MLT_1", "active", &[READERS], 200),
                rel("r2", 1, "Onboarding", "active", &ONBOARD, 200),
            ],
            &[("r2", vec![asg(1, "active", &ONBOARD)])],
            false,
        );
        assert_eq!(c.verdict, Verdict::Ready);
        assert_eq!(c.microsoft_led.len(), 1);
    }

    #[test]
    fn not_in_the_group_names_the_group_to_join() {
        let c = one(
            &[rel("r1", 1, "Onboarding", "active", &ONBOARD, 200)],
            &[(
                "r1",
                vec![asg(9, "active", &ONBOARD), asg(1, "active", &[EXO])],
            )],
            false,
        );
        let b = blocked(&c);
        assert_eq!(b.code(), "GDAP_NOT_IN_GROUP");
        assert_eq!(
            b.missing(),
            [
                "Cloud Application Administrator",
                "Privileged Role Administrator"
            ]
        );
        assert_eq!(
            c.role_names(),
            ["Exchange Administrator"],
            "what the technician has"
        );
        let fix = b.fix();
        assert!(
            fix.contains(&format!("'{}'", gid(9))),
            "unnamed group by id: {fix}"
        );
        assert!(fix.contains("through relationship 'Onboarding'"), "{fix}");
        assert!(
            fix.contains("Cloud Application Administrator, Privileged Role Administrator"),
            "{fix}"
        );
        assert!(
            !fix.contains("Exchange Administrator"),
            "only the missing roles: {fix}"
        );
        let m = c.blocked_message().unwrap();
        assert!(
            m.starts_with("you are not in the security group that has Cloud Application Administrator (it creates")
                && m.ends_with("; your roles there: Exchange Administrator (relationship 'Onboarding', group 'Tier 2')"),
            "{m}"
        );
    }

    #[test]
    fn roles_missing_say_which_relationship_to_assign_them_in_or_to_request() {
        // The relationship carries PRA but assigns it to nobody; Exchange it does not carry.
        let c = one(
            &[rel("r1", 1, "Onboarding", "active", &[CLOUD_APP, PRA], 200)],
            &[("r1", vec![asg(1, "active", &[CLOUD_APP])])],
            false,
        );
        let b = blocked(&c);
        assert_eq!(b.code(), "GDAP_ROLE_MISSING");
        assert_eq!(
            b.missing(),
            ["Privileged Role Administrator", "Exchange Administrator"]
        );
        let fix = b.fix();
        assert!(
            fix.starts_with("In relationship 'Onboarding', assign Privileged Role Administrator to a security group you are in"),
            "{fix}"
        );
        assert!(fix.contains("request a new GDAP relationship from this customer that includes Exchange Administrator"), "{fix}");
        assert!(
            b.reason()
                .contains("Privileged Role Administrator (it grants the 12 Microsoft Graph"),
            "{}",
            b.reason()
        );
    }

    #[test]
    fn an_assignment_beyond_the_relationships_roles_grants_nothing() {
        // Microsoft grants only what the relationship carries.
        let c = one(
            &[rel("r1", 1, "Onboarding", "active", &[CLOUD_APP, EXO], 200)],
            &[("r1", vec![asg(1, "active", &[CLOUD_APP, PRA, EXO])])],
            false,
        );
        assert_eq!(
            c.role_names(),
            ["Cloud Application Administrator", "Exchange Administrator"]
        );
        let b = blocked(&c);
        assert_eq!(b.code(), "GDAP_ROLE_MISSING");
        assert!(
            b.fix().starts_with("Request a new GDAP relationship"),
            "{}",
            b.fix()
        );
    }

    #[test]
    fn pending_assignments_are_counted_apart_and_waited_for() {
        let c = one(
            &[rel("r1", 1, "Onboarding (new)", "active", &ONBOARD, 200)],
            &[(
                "r1",
                vec![asg(2, "pending", &ONBOARD), asg(1, "deleted", &ONBOARD)],
            )],
            false,
        );
        assert!(c.roles.is_empty());
        assert_eq!(c.pending.len(), 3);
        let b = blocked(&c);
        assert_eq!(b.code(), "GDAP_ASSIGNMENT_PENDING");
        assert!(
            b.fix()
                .contains("relationship 'Onboarding (new)', group 'Onboarders'")
                && b.fix().starts_with("Wait"),
            "{}",
            b.fix()
        );
        // Pending that would not be enough is not a reason to wait.
        let c = one(
            &[rel("r1", 1, "Onboarding (new)", "active", &ONBOARD, 200)],
            &[("r1", vec![asg(2, "pending", &[EXO])])],
            false,
        );
        assert_eq!(blocked(&c).code(), "GDAP_ROLE_MISSING");
    }

    #[test]
    fn customers_are_one_each_sorted_and_found_by_id() {
        let mut a = rel("r1", 2, "A", "active", &ONBOARD, 200);
        a.customer.display_name = "zeta".into();
        let mut b = rel("r2", 1, "B", "active", &ONBOARD, 200);
        b.customer.display_name = "Alpha".into();
        let mut b2 = rel("r3", 1, "B2", "active", &[GA], 200);
        b2.customer.display_name = "Alpha".into();
        let cs = run(&[a, b, b2], &[("r3", vec![asg(1, "active", &[GA])])], false);
        assert_eq!(
            cs.iter()
                .map(|c| c.display_name.as_str())
                .collect::<Vec<_>>(),
            ["Alpha", "zeta"]
        );
        assert_eq!(cs[0].relationships.len(), 2);
        assert_eq!(cs[0].verdict, Verdict::Ready);
        assert_eq!(blocked(&cs[1]).code(), "GDAP_ROLE_MISSING");
        assert_eq!(
            find_id(&cs, Uuid::from_u128(2)).unwrap().display_name,
            "zeta"
        );
        let domain: TenantName = "alpha.onmicrosoft.com".parse().unwrap();
        assert_eq!(find(&cs, &domain).unwrap_err(), Blocked::no_relationship());
    }

    #[test]
    fn the_codes_are_the_issues_strings() {
        let all = [
            Blocked::no_relationship(),
            Blocked::NotInGroup {
                missing: vec![],
                join: vec![],
            },
            Blocked::RoleMissing {
                missing: vec![],
                gaps: vec![],
            },
            Blocked::AssignmentPending {
                missing: vec![],
                pending: vec![],
            },
        ];
        assert_eq!(
            all.iter().map(Blocked::code).collect::<Vec<_>>(),
            [
                "GDAP_NO_RELATIONSHIP",
                "GDAP_NOT_IN_GROUP",
                "GDAP_ROLE_MISSING",
                "GDAP_ASSIGNMENT_PENDING"
            ]
        );
        for b in &all {
            assert!(
                !b.fix().is_empty() && b.fix().ends_with('.'),
                "{b:?}: {}",
                b.fix()
            );
        }
    }

    #[test]
    fn gdap_errors_hint_the_way_out() {
        assert!(GdapError::NoneVisible.hint().contains("AdminAgents"));
        let forbidden = GdapError::graph(RELATIONSHIPS.0, RELATIONSHIPS.1)(GraphError::Api {
            method: reqwest::Method::GET,
            path: "tenantRelationships/delegatedAdminRelationships".into(),
            status: 403,
            code: "Authorization_RequestDenied".into(),
            message: "Insufficient privileges".into(),
            request_id: None,
            retried: 0,
        });
        assert!(matches!(forbidden, GdapError::Forbidden { .. }));
        assert!(
            forbidden
                .hint()
                .contains("DelegatedAdminRelationship.Read.All"),
            "{}",
            forbidden.hint()
        );
        assert!(
            forbidden
                .hint()
                .contains("`hal-onboard partner setup --tenant <your MSP domain>`"),
            "{}",
            forbidden.hint()
        );
        let c = crate::error::CommandError::from(GdapError::NoneVisible);
        assert_eq!(c.status, crate::error::ExitStatus::Failed);
        assert!(c.hints[0].contains("AdminAgents"));
    }
}
