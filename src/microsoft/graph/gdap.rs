//! GDAP reads in the MSP's own tenant: its delegated admin relationships, each relationship's
//! access assignments, and the signed-in technician's groups (nested included).
//!
//! Built from Microsoft Graph v1.0's references: "List delegatedAdminRelationships" and "List
//! accessAssignments" (`$top` up to 300, `@odata.nextLink` paging, `DelegatedAdminRelationship.Read.All`),
//! and "List a user's memberships (direct and transitive)" (`/me/transitiveMemberOf`, OData cast
//! to `microsoft.graph.group`, pages of up to 999).
//!
//! The request budget (issue 13: at most 12 Graph requests per customer, partner-side reads
//! included) is why every read here is made once per run and the per-relationship reads go in
//! `$batch`es of 20: a partner with 100 customers costs one relationship page, five batches and
//! one group page.
//!
//! No `$filter` on `status`: the list reference says `$filter` is supported without saying on
//! which properties, and a full page of 300 costs the same one request; the caller sorts out
//! active, expired and Microsoft-led relationships itself.

use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{GraphClient, GraphError, GraphRequest};

/// The most the GDAP list APIs return in one page ("`$top` supports up to 300 objects").
const GDAP_PAGE: u32 = 300;
/// The most `transitiveMemberOf` returns in one page ("maximum page size 999").
const MEMBER_OF_PAGE: u32 = 999;
/// Relationships Microsoft's DAP-to-GDAP transition tool made (default roles, read-mostly).
pub const MICROSOFT_LED_PREFIX: &str = "MLT_";

/// A delegated admin relationship (only what partner mode reads).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Relationship {
    pub id: String,
    #[serde(default)]
    pub display_name: String,
    /// `active`, `expired`, `terminated`, `approvalPending`, … (delegatedAdminRelationshipStatus).
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub customer: RelationshipCustomer,
    #[serde(default)]
    pub access_details: AccessDetails,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub end_date_time: Option<OffsetDateTime>,
    /// `PT0S` / `P0D`: expires at `endDateTime`; `P180D`: Microsoft extends it then.
    #[serde(default)]
    pub auto_extend_duration: Option<String>,
}

impl Relationship {
    pub fn is_active(&self) -> bool {
        self.status.eq_ignore_ascii_case("active")
    }
    /// Made by Microsoft's DAP transition (`MLT_…`), not by the partner.
    pub fn is_microsoft_led(&self) -> bool {
        self.display_name
            .get(..MICROSOFT_LED_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(MICROSOFT_LED_PREFIX))
    }
    /// Microsoft extends it at its end date (autoExtendDuration other than zero).
    pub fn auto_extends(&self) -> bool {
        self.auto_extend_duration
            .as_deref()
            .is_some_and(|d| !matches!(d, "" | "PT0S" | "P0D"))
    }
    pub fn role_ids(&self) -> impl Iterator<Item = &str> {
        self.access_details.role_ids()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelationshipCustomer {
    #[serde(default)]
    pub tenant_id: Option<Uuid>,
    #[serde(default)]
    pub display_name: String,
}

/// `accessDetails`: the roles (role definition = template ids) a relationship or an assignment carries.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessDetails {
    #[serde(default)]
    pub unified_roles: Vec<UnifiedRole>,
}

impl AccessDetails {
    pub fn role_ids(&self) -> impl Iterator<Item = &str> {
        self.unified_roles
            .iter()
            .map(|r| r.role_definition_id.as_str())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnifiedRole {
    pub role_definition_id: String,
}

/// One access assignment: a partner security group gets some of the relationship's roles.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessAssignment {
    pub id: String,
    /// `pending`, `active`, `deleting`, `deleted`, `error` (delegatedAdminAccessAssignmentStatus).
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub access_container: AccessContainer,
    #[serde(default)]
    pub access_details: AccessDetails,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessContainer {
    #[serde(default)]
    pub access_container_id: Option<Uuid>,
    /// `securityGroup` (the only type Microsoft documents).
    #[serde(default)]
    pub access_container_type: String,
}

/// A group of the partner tenant.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: Uuid,
    #[serde(default)]
    pub display_name: Option<String>,
}

impl GraphClient {
    /// Every delegated admin relationship of the signed-in partner, all pages, every status
    /// (Microsoft-led `MLT_…` ones included: the caller decides what to leave out).
    /// An account outside the partner's AdminAgents group gets an empty list, not an error.
    pub async fn delegated_admin_relationships(&self) -> Result<Vec<Relationship>, GraphError> {
        let items = self
            .get_all(&format!(
                "tenantRelationships/delegatedAdminRelationships?$top={GDAP_PAGE}"
            ))
            .await?;
        decode(items, "the delegated admin relationships")
    }

    /// One relationship's access assignments, all pages.
    pub async fn access_assignments(
        &self,
        relationship_id: &str,
    ) -> Result<Vec<AccessAssignment>, GraphError> {
        let items = self.get_all(&assignments_path(relationship_id)).await?;
        decode(items, "the access assignments")
    }

    /// The access assignments of many relationships, in `$batch`es of 20 (a page beyond the
    /// first, rare with 300 a page, is read by itself). One outcome per relationship, in order;
    /// a relationship gone since it was listed (404) has none.
    pub async fn access_assignments_of(
        &self,
        relationship_ids: &[&str],
    ) -> Result<Vec<Result<Vec<AccessAssignment>, GraphError>>, GraphError> {
        let reqs: Vec<GraphRequest> = relationship_ids
            .iter()
            .map(|id| GraphRequest::get(assignments_path(id)))
            .collect();
        let answers = self.batch(&reqs).await?;
        let mut out = Vec::with_capacity(answers.len());
        for answer in answers {
            out.push(match answer {
                Ok(rsp) => match self.rest_of(rsp.body).await {
                    Ok(items) => decode(items, "the access assignments"),
                    Err(e) => Err(e),
                },
                Err(e) if e.is_not_found() => Ok(vec![]),
                Err(e) => Err(e),
            });
        }
        Ok(out)
    }

    /// The signed-in user's groups, directly or through nested groups (id and display name).
    pub async fn my_groups(&self) -> Result<Vec<Group>, GraphError> {
        let items = self
            .get_all(&format!(
                "me/transitiveMemberOf/microsoft.graph.group?$select=id,displayName&$top={MEMBER_OF_PAGE}"
            ))
            .await?;
        decode(items, "the groups you are in")
    }

    /// Display names of groups by id, in `$batch`es (for groups the technician is not in,
    /// to name the one to join). A group that cannot be read is left out.
    pub async fn group_names(&self, ids: &[Uuid]) -> Result<Vec<Group>, GraphError> {
        let reqs: Vec<GraphRequest> = ids
            .iter()
            .map(|id| GraphRequest::get(format!("groups/{id}?$select=id,displayName")))
            .collect();
        let answers = self.batch(&reqs).await?;
        Ok(answers
            .into_iter()
            .filter_map(|a| a.ok())
            .filter_map(|r| serde_json::from_value::<Group>(r.body).ok())
            .collect())
    }

    /// Every item of a collection, following `@odata.nextLink` to the end.
    pub async fn get_all(&self, path: &str) -> Result<Vec<Value>, GraphError> {
        let first = self.get(path).await?;
        self.rest_of(first.body).await
    }

    /// The items of one page and of every page after it.
    async fn rest_of(&self, mut body: Value) -> Result<Vec<Value>, GraphError> {
        let mut items: Vec<Value> = Vec::new();
        loop {
            if let Some(Value::Array(v)) = body.get_mut("value").map(Value::take) {
                items.extend(v);
            }
            let Some(next) = body["@odata.nextLink"].as_str() else {
                return Ok(items);
            };
            let rel = self.next_link(next)?;
            body = self.send(&GraphRequest::get(rel)).await?.body;
        }
    }

    /// A next link, relative to our Graph root: only links back to the Graph this client
    /// talks to are followed (the token is never sent anywhere else).
    fn next_link(&self, link: &str) -> Result<String, GraphError> {
        let root = self.endpoints.graph_url("");
        // Graph behind an override (a proxy) may still write its own host into the link.
        let cloud_root = format!(
            "{}/v1.0/",
            self.endpoints.graph_resource.trim_end_matches('/')
        );
        link.strip_prefix(root.as_str())
            .or_else(|| link.strip_prefix(cloud_root.as_str()))
            .map(str::to_string)
            .ok_or_else(|| GraphError::Decode {
                what: "a page link".into(),
                detail: format!("it leads away from {root}"),
            })
    }
}

fn assignments_path(relationship_id: &str) -> String {
    format!(
        "tenantRelationships/delegatedAdminRelationships/{}/accessAssignments?$top={GDAP_PAGE}",
        relationship_id.trim()
    )
}

fn decode<T: serde::de::DeserializeOwned>(
    items: Vec<Value>,
    what: &str,
) -> Result<Vec<T>, GraphError> {
    items
        .into_iter()
        .map(|v| {
            serde_json::from_value(v).map_err(|e| GraphError::Decode {
                what: what.to_string(),
                detail: e.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_relationship_reads_as_microsoft_documents_it() {
        let r: Relationship = serde_json::from_value(json!({
            "@odata.type": "#microsoft.graph.delegatedAdminRelationship",
            "id": "5d027261-d21f-4aa9-b7db-7fa1f56fb163-8777b240-c6f0-4469-9e98-a3205431b836",
            "displayName": "MLT_0a1b",
            "duration": "P730D",
            "customer": {"tenantId": "52eaad04-13a2-4a2f-9ce8-93a294fadf36", "displayName": "Contoso Inc"},
            "accessDetails": {"unifiedRoles": [{"roleDefinitionId": "29232cdf-9323-42fd-ade2-1d097af3e4de"}]},
            "status": "active",
            "autoExtendDuration": "P180D",
            "endDateTime": "2024-02-10T11:24:42.3148266Z"
        }))
        .unwrap();
        assert!(r.is_active());
        assert!(r.is_microsoft_led());
        assert!(r.auto_extends());
        assert_eq!(r.end_date_time.unwrap().year(), 2024);
        assert_eq!(
            r.role_ids().collect::<Vec<_>>(),
            ["29232cdf-9323-42fd-ade2-1d097af3e4de"]
        );
        // A pending request has no end date yet.
        let p: Relationship = serde_json::from_value(json!({
            "id": "x", "displayName": "Onboarding", "status": "approvalPending",
            "endDateTime": null, "autoExtendDuration": "PT0S"
        }))
        .unwrap();
        assert!(!p.is_active() && !p.is_microsoft_led() && !p.auto_extends());
        assert_eq!(p.end_date_time, None);
    }
}
