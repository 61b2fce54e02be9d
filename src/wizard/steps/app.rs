//! Step 2: the app registration, and the service principals it needs.
//!
//! One app, single tenant (`AzureADMyOrg`), tagged [`APP_TAG`], with `requiredResourceAccess`
//! for exactly the 15 application permissions. Re-runs find it (recorded object ID, else name +
//! tag), repair drifted permissions with one PATCH, and never create a second one. Also makes
//! sure our service principal exists, and the Office 365 Management APIs one, which some
//! tenants lack.

use serde_json::json;

use super::{Assessment, Step, StepCx, StepOutcome};
use crate::microsoft::graph::directory::O365_MANAGEMENT_APP_ID;
use crate::store::{AppRecord, StepId};
use crate::wizard::permissions;
use crate::wizard::{APP_NOTES, APP_TAG, Event, WizardError};

pub struct AppStep;

#[async_trait::async_trait]
impl Step for AppStep {
    fn id(&self) -> StepId {
        StepId::App
    }

    fn assess(&self, cx: &StepCx<'_>) -> Assessment {
        let mut todo = Vec::new();
        let name = &cx.settings.app_name;
        if cx.survey.o365_sp.is_none() {
            todo.push(
                "create the Office 365 Management APIs service principal (missing in this tenant)"
                    .to_string(),
            );
        }
        match &cx.survey.app_by_id {
            None => {
                if cx.record.app.is_some() {
                    todo.push(format!(
                        "re-create the app registration {name:?} (the recorded one is gone)"
                    ));
                } else {
                    todo.push(format!(
                        "create the app registration {name:?} (single tenant) with 15 application permissions"
                    ));
                }
                todo.push("create its service principal (enterprise app)".into());
            }
            Some(app) => {
                if let Ok(perms) =
                    permissions::resolve(cx.survey.graph_sp.as_ref(), cx.survey.o365_sp.as_ref())
                {
                    let drift = permissions::rra_drift(&app.required_resource_access, &perms);
                    if !drift.is_empty() {
                        todo.push(format!(
                            "repair the app's API permissions: {}",
                            drift.join(", ")
                        ));
                    }
                }
                if cx.survey.our_sp.is_none() {
                    todo.push("create the app's service principal (enterprise app)".into());
                }
                let recorded = cx.record.app.as_ref().map(|a| a.object_id.as_str());
                if todo.is_empty() && recorded != Some(app.id.as_str()) {
                    todo.push(format!(
                        "adopt the existing app {name:?} (appId {}), made by hal-onboard earlier",
                        app.app_id
                    ));
                }
            }
        }
        if todo.is_empty() {
            Assessment::Done
        } else {
            Assessment::ToDo(todo)
        }
    }

    async fn run(&self, cx: &mut StepCx<'_>) -> Result<StepOutcome, WizardError> {
        let err = WizardError::graph(StepId::App);
        let mut did = Vec::new();
        if cx.survey.o365_sp.is_none() {
            let sp = cx
                .dir
                .create_service_principal(O365_MANAGEMENT_APP_ID)
                .await
                .map_err(err)?;
            cx.survey.o365_sp = Some(sp);
            did.push("created the Office 365 Management APIs service principal");
        }
        let perms = permissions::resolve(cx.survey.graph_sp.as_ref(), cx.survey.o365_sp.as_ref())?;
        let rra = permissions::required_resource_access(&perms);
        let recorded_app_id = cx.record.app.as_ref().map(|a| a.app_id.clone());
        let app = match cx.survey.app_by_id.clone() {
            Some(app) => {
                if !permissions::rra_drift(&app.required_resource_access, &perms).is_empty() {
                    cx.dir
                        .update_application(&app.id, &json!({ "requiredResourceAccess": rra }))
                        .await
                        .map_err(WizardError::graph(StepId::App))?;
                    did.push("repaired the app's API permissions");
                }
                let mut app = app;
                app.required_resource_access = rra;
                app
            }
            None => {
                let body = json!({
                    "displayName": cx.settings.app_name,
                    "signInAudience": "AzureADMyOrg",
                    "tags": [APP_TAG, "hal-onboard"],
                    "notes": APP_NOTES,
                    "requiredResourceAccess": rra,
                });
                let app = create_once(cx, &body)
                    .await
                    .map_err(WizardError::graph(StepId::App))?;
                cx.survey.our_sp = None;
                cx.survey.assignments = None;
                did.push("created the app registration");
                // Recorded at once: if the service principal fails below, a re-run finds this
                // app by its recorded ID (an app of our name that nobody recorded is foreign).
                if recorded_app_id.is_some() {
                    // A different app than recorded: its secret and grants are not ours to trust.
                    cx.record.secret = None;
                    cx.record.granted_permissions.clear();
                    for s in [StepId::Secret, StepId::Consent, StepId::Verify] {
                        *cx.record.step_mut(s) = Default::default();
                    }
                }
                cx.record.app = Some(AppRecord {
                    object_id: app.id.clone(),
                    app_id: app.app_id.clone(),
                    display_name: cx.settings.app_name.clone(),
                    service_principal_id: None,
                });
                app
            }
        };
        let same_app = recorded_app_id.as_deref() == Some(app.app_id.as_str())
            || cx.record.app.as_ref().map(|a| a.app_id.as_str()) == Some(&app.app_id);
        let sp_id = match &cx.survey.our_sp {
            Some(sp) => sp.id.clone(),
            None => {
                let sp = cx
                    .dir
                    .create_service_principal(&app.app_id)
                    .await
                    .map_err(WizardError::graph(StepId::App))?;
                did.push("created its service principal");
                let id = sp.id.clone();
                cx.survey.our_sp = Some(sp);
                cx.survey.assignments = Some(Vec::new());
                id
            }
        };
        if !same_app {
            // A different app than recorded: its secret and grants are not ours to trust.
            cx.record.secret = None;
            cx.record.granted_permissions.clear();
            for s in [StepId::Secret, StepId::Consent, StepId::Verify] {
                *cx.record.step_mut(s) = Default::default();
            }
        }
        cx.record.app = Some(AppRecord {
            object_id: app.id.clone(),
            app_id: app.app_id.clone(),
            display_name: app
                .display_name
                .clone()
                .unwrap_or_else(|| cx.settings.app_name.clone()),
            service_principal_id: Some(sp_id),
        });
        cx.survey.app_by_id = Some(app.clone());
        Ok(StepOutcome::Done(if did.is_empty() {
            format!(
                "app registration {} (appId {}) is in place",
                cx.settings.app_name, app.app_id
            )
        } else {
            format!("{} (appId {})", did.join(", "), app.app_id)
        }))
    }
}

/// `POST /applications`, never twice: when the answer is lost (the connection dropped, a 5xx,
/// a concurrency violation) the create may have landed, so the apps of our name are read
/// first, and one carrying our tag that the survey did not list (this machine holds the
/// tenant's lock, so no other run of ours made it) is the one this attempt made.
async fn create_once(
    cx: &mut StepCx<'_>,
    body: &serde_json::Value,
) -> Result<crate::microsoft::graph::model::Application, crate::microsoft::graph::GraphError> {
    let known: Vec<String> = cx
        .survey
        .apps_by_name
        .iter()
        .map(|a| a.id.clone())
        .collect();
    let mut tries = 0u32;
    loop {
        let e = match cx.dir.create_application(body).await {
            Ok(app) => return Ok(app),
            Err(e) if e.may_have_landed() && tries < 3 => e,
            Err(e) => return Err(e),
        };
        tries += 1;
        // A list may lag a create by a moment: look twice before concluding it did not land.
        for look in 0..2u64 {
            let found: Vec<_> = cx
                .dir
                .applications_named(&cx.settings.app_name)
                .await?
                .into_iter()
                .filter(|a| a.tags.iter().any(|t| t == APP_TAG) && !known.contains(&a.id))
                .collect();
            if let [app] = found.as_slice() {
                cx.progress.event(Event::Info(format!(
                    "Microsoft's answer to creating the app was lost ({}); the app it made (appId {}) is used, not made again",
                    one_line(&e),
                    app.app_id
                )));
                return Ok(app.clone());
            }
            if found.len() > 1 {
                return Err(e);
            }
            tokio::time::sleep(std::time::Duration::from_millis(500 * (look + 1))).await;
        }
    }
}

fn one_line(e: &crate::microsoft::graph::GraphError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}
