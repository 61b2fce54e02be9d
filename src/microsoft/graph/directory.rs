//! The directory operations the wizard needs, behind a trait so the engine can be tested with
//! a fake while integration tests drive the real client against the sandbox.

use std::time::Duration;

use crate::secrets::SecretText;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::model::*;
use super::{GraphClient, GraphError, GraphRequest, GraphResponse};
use crate::microsoft::signin::TokenClaims;

/// Office 365 Management APIs' application ID (the same in every tenant).
pub const O365_MANAGEMENT_APP_ID: &str = "c5393580-f805-4401-95e8-94b7a6ef2fc2";
/// Microsoft Graph's application ID.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// What to look for in the first, read-only round trip.
#[derive(Debug, Clone, Default)]
pub struct SurveyQuery {
    pub app_name: String,
    /// Our application's object ID, if recorded.
    pub app_object_id: Option<String>,
    /// Our application's appId, if recorded (finds its service principal).
    pub app_id: Option<String>,
    /// Our service principal's ID, if recorded (reads its app role assignments).
    pub service_principal_id: Option<String>,
    /// Read `/me/memberOf` (when the token carries no `wids`).
    pub member_of: bool,
}

/// The tenant as the first round trip found it.
#[derive(Debug, Clone, Default)]
pub struct Survey {
    pub organization: Organization,
    /// `None` when the SKUs could not be read (licence unknown).
    pub skus: Option<Vec<SubscribedSku>>,
    /// Directory role template IDs of the signed-in user, when asked for and readable.
    pub role_template_ids: Option<Vec<String>>,
    pub graph_sp: Option<ServicePrincipal>,
    pub o365_sp: Option<ServicePrincipal>,
    /// The recorded application, if it still exists.
    pub app_by_id: Option<Application>,
    /// Applications with our display name.
    pub apps_by_name: Vec<Application>,
    /// Our service principal (by recorded appId).
    pub our_sp: Option<ServicePrincipal>,
    /// Its app role assignments (when its ID was recorded and it exists).
    pub assignments: Option<Vec<AppRoleAssignment>>,
}

/// A new client secret. Its text is a [`SecretText`]: zeroed on drop, never printed by Debug.
#[derive(Debug, Clone)]
pub struct NewSecret {
    pub key_id: String,
    pub hint: String,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    pub text: SecretText,
}

/// One application permission to grant to a service principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The resource's service principal object ID.
    pub resource_id: String,
    pub app_role_id: String,
}

/// The directory operations onboarding needs.
#[async_trait::async_trait]
pub trait DirectoryApi: Send + Sync {
    /// The signed-in user's Graph token claims (signs in on first use).
    async fn signed_in(&self) -> Result<TokenClaims, GraphError>;
    /// Everything the plan needs, read in one round trip.
    async fn survey(&self, q: &SurveyQuery) -> Result<Survey, GraphError>;
    /// An application's service principal (by appId) and that principal's assignments.
    async fn app_details(
        &self,
        app_id: &str,
    ) -> Result<(Option<ServicePrincipal>, Vec<AppRoleAssignment>), GraphError>;
    /// One application by object ID, asking up to `attempts` times while it may still be
    /// replicating; `None` when it is not there.
    async fn application(
        &self,
        object_id: &str,
        attempts: u32,
    ) -> Result<Option<Application>, GraphError>;
    async fn create_application(&self, body: &Value) -> Result<Application, GraphError>;
    async fn update_application(&self, object_id: &str, patch: &Value) -> Result<(), GraphError>;
    /// Creates the service principal of `app_id`, waiting out replication of a new app.
    async fn create_service_principal(&self, app_id: &str) -> Result<ServicePrincipal, GraphError>;
    async fn add_password(
        &self,
        object_id: &str,
        description: &str,
        end: OffsetDateTime,
    ) -> Result<NewSecret, GraphError>;
    async fn remove_password(&self, object_id: &str, key_id: &str) -> Result<(), GraphError>;
    /// Deletes an application (its service principal and grants go with it). Already gone is
    /// not an error.
    async fn delete_application(&self, object_id: &str) -> Result<(), GraphError>;
    /// The longest client secret lifetime the tenant's default app management policy allows,
    /// in days, when it can be read and sets one.
    async fn max_secret_lifetime_days(&self) -> Result<Option<u32>, GraphError>;
    /// Grants each permission to `principal_id` in one `$batch` (an "already exists" counts as
    /// granted); returns the assignments Graph confirmed.
    async fn grant_app_roles(
        &self,
        principal_id: &str,
        grants: &[Grant],
    ) -> Result<Vec<AppRoleAssignment>, GraphError>;
    /// Every app role assignment the principal holds (the read-back).
    async fn app_role_assignments(
        &self,
        principal_id: &str,
    ) -> Result<Vec<AppRoleAssignment>, GraphError>;
    /// The applications named `name` (with their credentials), to find the one a create made
    /// when its answer was lost.
    async fn applications_named(&self, _name: &str) -> Result<Vec<Application>, GraphError> {
        Ok(Vec::new())
    }
    /// The owners of an application (`GET /applications/{id}/owners`), to show who made an app
    /// that is not ours. Read only for such apps.
    async fn app_owners(&self, _object_id: &str) -> Result<Vec<Owner>, GraphError> {
        Ok(Vec::new())
    }
    /// The directory role template IDs `principal_id` is only eligible for (Privileged
    /// Identity Management), or `None` when that cannot be read here. Asked only when the
    /// signed-in user cannot onboard, to say which role to activate.
    async fn eligible_roles(&self, _principal_id: &str) -> Result<Option<Vec<String>>, GraphError> {
        Ok(None)
    }
}

/// One owner of an application (a user or a service principal).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    pub id: String,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
}

pub const APP_SELECT: &str = "id,appId,displayName,tags,notes,signInAudience,requiredResourceAccess,passwordCredentials,keyCredentials";

fn quote(s: &str) -> String {
    s.replace('\'', "''")
}

fn sp_by_app_id(app_id: &str, select: &str) -> GraphRequest {
    GraphRequest::get(format!(
        "servicePrincipals?$filter=appId eq '{}'&$select={select}",
        quote(app_id)
    ))
}

fn first<T: serde::de::DeserializeOwned>(
    r: &GraphResponse,
    what: &str,
) -> Result<Option<T>, GraphError> {
    Ok(r.parse::<Collection<T>>(what)?.value.into_iter().next())
}

fn assignments_path(principal_id: &str) -> String {
    format!("servicePrincipals/{principal_id}/appRoleAssignments")
}

#[async_trait::async_trait]
impl DirectoryApi for GraphClient {
    async fn signed_in(&self) -> Result<TokenClaims, GraphError> {
        let t = self.token().await?;
        TokenClaims::decode(t.expose()).map_err(|e| GraphError::Decode {
            what: "the sign-in token".into(),
            detail: e.to_string(),
        })
    }

    async fn survey(&self, q: &SurveyQuery) -> Result<Survey, GraphError> {
        let mut reqs = vec![
            GraphRequest::get("organization?$select=id,displayName,verifiedDomains"),
            GraphRequest::get("subscribedSkus"),
            sp_by_app_id(GRAPH_APP_ID, "id,appId,displayName,appRoles"),
            sp_by_app_id(O365_MANAGEMENT_APP_ID, "id,appId,displayName,appRoles"),
            GraphRequest::get(format!(
                "applications?$filter=displayName eq '{}'&$select={APP_SELECT}",
                quote(&q.app_name)
            )),
        ];
        let at = |r: GraphRequest, reqs: &mut Vec<GraphRequest>| {
            reqs.push(r);
            Some(reqs.len() - 1)
        };
        let member_of = if q.member_of {
            at(
                // Roles held directly or through role-assignable groups.
                GraphRequest::get(
                    "me/transitiveMemberOf/microsoft.graph.directoryRole?$select=id,displayName,roleTemplateId",
                ),
                &mut reqs,
            )
        } else {
            None
        };
        let by_id = match &q.app_object_id {
            Some(id) => at(
                GraphRequest::get(format!("applications/{id}?$select={APP_SELECT}")),
                &mut reqs,
            ),
            None => None,
        };
        let our_sp = match &q.app_id {
            Some(a) => at(sp_by_app_id(a, "id,appId,displayName"), &mut reqs),
            None => None,
        };
        let assignments = match &q.service_principal_id {
            Some(sp) => at(GraphRequest::get(assignments_path(sp)), &mut reqs),
            None => None,
        };
        let mut res = self.batch(&reqs).await?;
        let mut take = |i: usize| std::mem::replace(&mut res[i], Ok(placeholder()));

        let organization = first::<Organization>(&take(0)?, "organization")?.ok_or_else(|| {
            GraphError::Decode {
                what: "organization".into(),
                detail: "no organization in the answer".into(),
            }
        })?;
        let skus = take(1)
            .ok()
            .and_then(|r| r.parse::<Collection<SubscribedSku>>("subscribedSkus").ok())
            .map(|c| c.value);
        let graph_sp = first(&take(2)?, "Microsoft Graph's service principal")?;
        let o365_sp = first(&take(3)?, "Office 365 Management APIs' service principal")?;
        let apps_by_name = take(4)?
            .parse::<Collection<Application>>("applications")?
            .value;
        let role_template_ids = member_of.and_then(|i| {
            take(i)
                .ok()
                .and_then(|r| r.parse::<Collection<MemberOf>>("memberOf").ok())
                .map(|c| {
                    c.value
                        .into_iter()
                        .filter_map(|m| m.role_template_id)
                        .collect()
                })
        });
        let app_by_id = match by_id {
            Some(i) => match take(i) {
                Ok(r) => Some(r.parse::<Application>("application")?),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        let our_sp = match our_sp {
            Some(i) => first(&take(i)?, "our service principal")?,
            None => None,
        };
        let assignments = match assignments {
            Some(i) => match take(i) {
                Ok(r) => Some(
                    r.parse::<Collection<AppRoleAssignment>>("appRoleAssignments")?
                        .value,
                ),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        Ok(Survey {
            organization,
            skus,
            role_template_ids,
            graph_sp,
            o365_sp,
            app_by_id,
            apps_by_name,
            our_sp,
            assignments,
        })
    }

    async fn app_details(
        &self,
        app_id: &str,
    ) -> Result<(Option<ServicePrincipal>, Vec<AppRoleAssignment>), GraphError> {
        let r = self
            .send(&sp_by_app_id(app_id, "id,appId,displayName"))
            .await?;
        let sp: Option<ServicePrincipal> = first(&r, "service principal")?;
        let Some(sp) = sp else {
            return Ok((None, Vec::new()));
        };
        let a = self
            .send(&GraphRequest::get(assignments_path(&sp.id)))
            .await?
            .parse::<Collection<AppRoleAssignment>>("appRoleAssignments")?
            .value;
        Ok((Some(sp), a))
    }

    async fn application(
        &self,
        object_id: &str,
        attempts: u32,
    ) -> Result<Option<Application>, GraphError> {
        let policy = self.retry_policy().clone();
        for n in 1..=attempts.max(1) {
            match self
                .get(&format!("applications/{object_id}?$select={APP_SELECT}"))
                .await
            {
                Ok(r) => return r.parse("application").map(Some),
                Err(e) if e.is_not_found() && n < attempts => {
                    self.meter().note_replication_retry();
                    tokio::time::sleep(policy.wait(n, None)).await;
                }
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    async fn applications_named(&self, name: &str) -> Result<Vec<Application>, GraphError> {
        Ok(self
            .get(&format!(
                "applications?$filter=displayName eq '{}'&$select={APP_SELECT}",
                quote(name)
            ))
            .await?
            .parse::<Collection<Application>>("applications")?
            .value)
    }

    async fn app_owners(&self, object_id: &str) -> Result<Vec<Owner>, GraphError> {
        Ok(self
            .get(&format!(
                "applications/{object_id}/owners?$select=id,userPrincipalName,displayName"
            ))
            .await?
            .parse::<Collection<Owner>>("application owners")?
            .value)
    }

    async fn create_application(&self, body: &Value) -> Result<Application, GraphError> {
        self.send(&GraphRequest::post("applications", body.clone()))
            .await?
            .parse("the new application")
    }

    async fn update_application(&self, object_id: &str, patch: &Value) -> Result<(), GraphError> {
        self.send(
            &GraphRequest::patch(format!("applications/{object_id}"), patch.clone())
                .tolerate_replication(),
        )
        .await
        .map(|_| ())
    }

    async fn create_service_principal(&self, app_id: &str) -> Result<ServicePrincipal, GraphError> {
        let post = GraphRequest::post("servicePrincipals", json!({ "appId": app_id }))
            .replicating("the new app");
        let mut tries = 0;
        loop {
            let e = match self.send(&post).await {
                Ok(r) => return r.parse("the new service principal"),
                Err(e) => e,
            };
            // Made by someone else meanwhile, or by an earlier try whose answer was lost (the
            // connection dropped, a 5xx): one principal per appId, so look for it by appId.
            let exists = e.status() == Some(409)
                && !e.code().is_some_and(super::is_concurrency_violation)
                || e.message().is_some_and(|m| {
                    m.contains("already exists") || m.contains("conflicting object")
                });
            if !exists && !e.may_have_landed() {
                return Err(e);
            }
            // It may itself be too new to be listed yet: keep looking while it replicates,
            // when we know it exists; once, when it only may.
            let (mut n, mut waited) = (0, Duration::ZERO);
            loop {
                let r = self
                    .send(&sp_by_app_id(app_id, "id,appId,displayName,appRoles"))
                    .await?;
                if let Some(sp) = first(&r, "service principal")? {
                    return Ok(sp);
                }
                if !exists && n >= 2 {
                    break;
                }
                self.meter().note_replication_retry();
                if self
                    .replication_wait("the new service principal", &mut n, &mut waited)
                    .await
                    .is_err()
                {
                    return Err(e);
                }
            }
            tries += 1;
            if tries >= 3 {
                return Err(e);
            }
        }
    }

    async fn add_password(
        &self,
        object_id: &str,
        description: &str,
        end: OffsetDateTime,
    ) -> Result<NewSecret, GraphError> {
        let end_s = end
            .format(&time::format_description::well_known::Rfc3339)
            .expect("a date formats");
        let r = self
            .send(
                &GraphRequest::post(
                    format!("applications/{object_id}/addPassword"),
                    json!({ "passwordCredential": { "displayName": description, "endDateTime": end_s } }),
                )
                .tolerate_replication(),
            )
            .await?;
        let p: PasswordCredential = r.parse("the new client secret")?;
        let missing = |f: &str| GraphError::Decode {
            what: "the new client secret".into(),
            detail: format!("no {f} in the answer"),
        };
        Ok(NewSecret {
            key_id: p.key_id.ok_or_else(|| missing("keyId"))?,
            hint: p.hint.unwrap_or_default(),
            start: p.start_date_time.unwrap_or_else(OffsetDateTime::now_utc),
            end: p.end_date_time.unwrap_or(end),
            text: p.secret_text.ok_or_else(|| missing("secretText"))?,
        })
    }

    async fn remove_password(&self, object_id: &str, key_id: &str) -> Result<(), GraphError> {
        // Removing twice is harmless (the second says it is gone): safe to repeat.
        let r = self
            .send(
                &GraphRequest::post(
                    format!("applications/{object_id}/removePassword"),
                    json!({ "keyId": key_id }),
                )
                .repeatable(),
            )
            .await;
        match r {
            Ok(_) => Ok(()),
            // Already gone.
            Err(e)
                if e.status() == Some(404)
                    || (e.status() == Some(400)
                        && e.message().is_some_and(|m| {
                            m.contains("No password credential") || m.contains("not found")
                        })) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn delete_application(&self, object_id: &str) -> Result<(), GraphError> {
        let r = self
            .send(&GraphRequest::new(
                reqwest::Method::DELETE,
                format!("applications/{object_id}"),
            ))
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn eligible_roles(&self, principal_id: &str) -> Result<Option<Vec<String>>, GraphError> {
        // Documented to need RoleEligibilitySchedule.Read.Directory, which the sign-in does not
        // ask for (a technician whose role is not yet active could not consent to it): it is
        // asked for silently, and a refusal means "cannot tell", not an error.
        let scope = format!(
            "{}/RoleEligibilitySchedule.Read.Directory",
            self.endpoints().graph_resource.trim_end_matches('/')
        );
        let path = format!(
            "roleManagement/directory/roleEligibilityScheduleInstances?$filter=principalId eq '{}'&$select=roleDefinitionId",
            quote(principal_id)
        );
        match self.with_scopes(vec![scope]).get(&path).await {
            Ok(r) => {
                #[derive(serde::Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct Instance {
                    role_definition_id: String,
                }
                let c = r.parse::<Collection<Instance>>("roleEligibilityScheduleInstances")?;
                Ok(Some(
                    c.value.into_iter().map(|i| i.role_definition_id).collect(),
                ))
            }
            Err(GraphError::Token(_)) => Ok(None),
            Err(e) if matches!(e.status(), Some(401 | 403 | 404)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn max_secret_lifetime_days(&self) -> Result<Option<u32>, GraphError> {
        let r = self.get("policies/defaultAppManagementPolicy").await?;
        let rules = r.body["applicationRestrictions"]["passwordCredentials"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        Ok(rules
            .iter()
            .filter(|x| {
                x["restrictionType"].as_str() == Some("passwordLifetime")
                    && x["state"].as_str().is_none_or(|s| s == "enabled")
            })
            .filter_map(|x| x["maxLifetime"].as_str().and_then(iso_days))
            .min())
    }

    async fn grant_app_roles(
        &self,
        principal_id: &str,
        grants: &[Grant],
    ) -> Result<Vec<AppRoleAssignment>, GraphError> {
        // One batch, all in parallel: Graph's batches are either fully parallel or fully
        // sequential, and a sequential chain would stop at the first "already exists".
        let reqs: Vec<GraphRequest> = grants
            .iter()
            .map(|g| {
                GraphRequest::post(
                    format!("servicePrincipals/{}/appRoleAssignedTo", g.resource_id),
                    json!({ "principalId": principal_id, "resourceId": g.resource_id, "appRoleId": g.app_role_id }),
                )
                .replicating("the new service principal")
                // A repeat that had landed answers "already exists", counted as granted.
                .repeatable()
            })
            .collect();
        let res = self.batch(&reqs).await?;
        let mut out = Vec::new();
        for (g, r) in grants.iter().zip(res) {
            match r {
                Ok(r) => out.push(r.parse::<AppRoleAssignment>("the new app role assignment")?),
                // Granted already (by someone else, or a retried request that had landed).
                Err(e) if is_already_granted(&e) => out.push(AppRoleAssignment {
                    id: None,
                    app_role_id: g.app_role_id.clone(),
                    principal_id: Some(principal_id.to_string()),
                    resource_id: g.resource_id.clone(),
                }),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn app_role_assignments(
        &self,
        principal_id: &str,
    ) -> Result<Vec<AppRoleAssignment>, GraphError> {
        Ok(self
            .send(
                &GraphRequest::get(assignments_path(principal_id))
                    .replicating("the new service principal"),
            )
            .await?
            .parse::<Collection<AppRoleAssignment>>("appRoleAssignments")?
            .value)
    }
}

/// Whole days in an ISO 8601 duration (`P365D`, `P1Y`, `P2Y6M`, `P90DT12H`), rounded down.
pub fn iso_days(d: &str) -> Option<u32> {
    let rest = d.trim().strip_prefix('P')?;
    let date = rest.split('T').next().unwrap_or_default();
    let (mut days, mut num) = (0u32, String::new());
    for c in date.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u32 = num.parse().ok()?;
        num.clear();
        days += match c {
            'Y' => n * 365,
            'M' => n * 30,
            'W' => n * 7,
            'D' => n,
            _ => return None,
        };
    }
    num.is_empty().then_some(days)
}

/// "Permission being assigned already exists on the object": someone granted it already.
fn is_already_granted(e: &GraphError) -> bool {
    e.status().is_some_and(|s| s == 400 || s == 409)
        && e.message().is_some_and(|m| m.contains("already exists"))
}

fn placeholder() -> GraphResponse {
    GraphResponse {
        status: 0,
        body: Value::Null,
        request_id: None,
    }
}
