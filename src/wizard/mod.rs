//! The step engine: identify the tenant, plan, ask, run each step, record each result.
//!
//! ```text
//! Wizard::new(..) ─► identify()  sign in, one read-only $batch, tenant checks (no writes)
//!                 ─► run(..)     plan → show → confirm → steps 1..6, persisting after each
//! ```
//!
//! Steps (see [`steps`]) know nothing of the terminal or of flags: they read the tenant record
//! and the survey, report through [`Progress`], and return typed errors. Re-running starts at
//! the first unfinished step, but every step first re-checks cheaply (from the survey, no extra
//! requests) that what it made still exists, so a deleted app or a removed permission is
//! repaired rather than trusted.

// Errors carry Graph's code, message and request-id by value; they are rare and short-lived.
#![allow(clippy::result_large_err)]

pub mod permissions;
pub mod rotate;
pub mod steps;
pub mod verify;

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::cloud::Cloud;
use crate::microsoft::graph::GraphError;
use crate::microsoft::graph::directory::{DirectoryApi, Survey, SurveyQuery};
use crate::microsoft::graph::meter::{RequestMeter, RequestStats};
use crate::microsoft::signin::TokenClaims;
use crate::portal::PortalRecord;
use crate::secrets::{SecretError, SecretStore};
use crate::store::{EntraLicense, StepId, StepStatus, StoreError, TenantRecord, TenantStore};
use crate::tenant::TenantName;
use permissions::ResolveError;
pub use steps::{Assessment, Step, StepCx, StepOutcome};
use verify::CredentialVerifier;

/// The tag (and notes) that mark an app registration as hal-onboard's.
pub const APP_TAG: &str = "HalSiem";
pub const APP_NOTES: &str = "Created by hal-onboard for Hal SIEM: reads this tenant's audit and sign-in logs. Managed by hal-onboard; do not edit by hand.";
pub const DEFAULT_APP_NAME: &str = "hal-siem-log-collector";
pub const SECRET_DESCRIPTION: &str = "hal";

/// Directory role template IDs (Microsoft Entra built-in roles).
pub mod roles {
    pub const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
    pub const APPLICATION_ADMIN: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
    pub const CLOUD_APPLICATION_ADMIN: &str = "158c047a-c907-4556-b7ef-446551a6b5f7";
    pub const PRIVILEGED_ROLE_ADMIN: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";

    /// What onboarding needs, in the admin center's words.
    pub const NEEDED: &str = "Global Administrator, or Application Administrator (or Cloud Application Administrator) together with Privileged Role Administrator";

    /// Built-in role names by template ID (Microsoft Entra built-in roles reference), for
    /// saying which roles an account has.
    const NAMES: &[(&str, &str)] = &[
        (GLOBAL_ADMIN, "Global Administrator"),
        (APPLICATION_ADMIN, "Application Administrator"),
        (CLOUD_APPLICATION_ADMIN, "Cloud Application Administrator"),
        (PRIVILEGED_ROLE_ADMIN, "Privileged Role Administrator"),
        ("f2ef992c-3afb-46b9-b7cf-a126ee74c451", "Global Reader"),
        (
            "29232cdf-9323-42fd-ade2-1d097af3e4de",
            "Exchange Administrator",
        ),
        ("5d6b6bb7-de71-4623-b4af-96380a352509", "Security Reader"),
        (
            "194ae4cb-b126-40b2-bd5b-6091b380977d",
            "Security Administrator",
        ),
        ("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator"),
        (
            "729827e3-9c14-49f7-bb1b-9608f156bbb8",
            "Helpdesk Administrator",
        ),
        ("88d8e3e3-8f55-4a1e-953a-9b9898b8876b", "Directory Readers"),
        (
            "b0f54661-2d74-4c50-afa3-1ec803f12efe",
            "Billing Administrator",
        ),
        ("4a5d8f65-41da-4de4-8968-e035b65339cf", "Reports Reader"),
        (
            "17315797-102d-40b4-93e0-432062caca18",
            "Compliance Administrator",
        ),
        (
            "69091246-20e8-4a56-aa4d-066075b2a7a8",
            "Teams Administrator",
        ),
        (
            "f28a1f50-f6e7-4571-818b-6a12f2af6b6c",
            "SharePoint Administrator",
        ),
        (
            "f023fd81-a637-4b56-95fd-791ac0226033",
            "Service Support Administrator",
        ),
    ];

    /// Every member's default role, carried in `wids`: not a role anyone was given.
    const MEMBER: &str = "b79fbf4d-3ef9-4689-8143-76b194e85509";

    pub fn name(template_id: &str) -> Option<&'static str> {
        NAMES
            .iter()
            .find(|(id, _)| id.eq_ignore_ascii_case(template_id))
            .map(|(_, n)| *n)
    }

    /// "it has Global Reader and Exchange Administrator" / "it has no administrator role".
    pub fn describe(held: &[String]) -> String {
        let named: Vec<String> = held
            .iter()
            .filter(|id| !id.eq_ignore_ascii_case(MEMBER))
            .map(|id| {
                name(id)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("the role with template ID {id}"))
            })
            .collect();
        if named.is_empty() {
            "it has no administrator role".into()
        } else {
            format!("it has {}", named.join(", "))
        }
    }

    /// The roles among `eligible` that would make the account able to onboard, by name.
    pub fn needed_among(eligible: &[String]) -> Vec<String> {
        [
            GLOBAL_ADMIN,
            APPLICATION_ADMIN,
            CLOUD_APPLICATION_ADMIN,
            PRIVILEGED_ROLE_ADMIN,
        ]
        .iter()
        .filter(|r| eligible.iter().any(|e| e.eq_ignore_ascii_case(r)))
        .filter_map(|r| name(r).map(str::to_string))
        .collect()
    }
}

/// What this run was asked to do (decided by the command from flags; steps never see flags).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The tenant as the technician named it (domain or GUID).
    pub tenant: TenantName,
    pub cloud: Cloud,
    pub app_name: String,
    /// Client secret lifetime, 1..=24 months.
    pub secret_months: u8,
    pub skip_exchange: bool,
    /// Token audiences for verification (`Endpoints::graph_resource`, `manage_resource`).
    pub graph_resource: String,
    pub manage_resource: String,
    /// Where verification's reads go (Graph and the Management Activity API): the cloud's
    /// hosts unless the command sets the run's (with its overrides).
    pub endpoints: crate::cloud::Endpoints,
    /// How long a new secret may take to work: attempts and the wait between them.
    pub verify_attempts: u32,
    pub verify_wait: Duration,
    /// `--adopt APPID`: adopt this app registration although neither this machine nor the
    /// portal holds it (only after a technician confirms at a terminal; `--yes` never does).
    pub adopt: Option<String>,
    /// A new client secret will be shown to the technician at the end (a terminal, or
    /// `--show-secret`). Without that and without a keyring it can be kept nowhere but the
    /// portal: see [`WizardError::SecretKeptNowhere`].
    pub secret_shown: bool,
}

impl Settings {
    pub fn new(
        tenant: TenantName,
        cloud: Cloud,
        graph_resource: &str,
        manage_resource: &str,
    ) -> Self {
        Settings {
            tenant,
            cloud,
            app_name: DEFAULT_APP_NAME.into(),
            secret_months: 24,
            skip_exchange: false,
            graph_resource: graph_resource.into(),
            manage_resource: manage_resource.into(),
            endpoints: crate::cloud::Endpoints::new(cloud, None, None),
            // Ten minutes for new credentials and grants to replicate, as for the app itself.
            verify_attempts: 60,
            verify_wait: Duration::from_secs(10),
            adopt: None,
            secret_shown: true,
        }
    }
}

/// What the wizard tells the technician about (through the command's `Ui`).
#[derive(Debug, Clone)]
pub enum Event {
    /// The tenant the sign-in is for.
    Tenant {
        display_name: String,
        default_domain: String,
        tenant_id: Uuid,
        user: Option<String>,
    },
    Licence {
        licence: Option<EntraLicense>,
    },
    /// The plan: each step and what it would change.
    Plan(Plan),
    StepStarted(StepId),
    StepDone {
        step: StepId,
        summary: String,
    },
    StepSkipped {
        step: StepId,
        why: String,
    },
    /// Something worth knowing that is not an error.
    Warning(String),
    Info(String),
    /// Waiting on Microsoft, with the attempt count and the wait before the next try.
    Waiting {
        what: String,
        attempt: u32,
        of: u32,
        next_in: Duration,
    },
}

/// A yes/no the wizard needs answered.
#[derive(Debug, Clone)]
pub enum Question {
    /// Change this tenant as planned?
    Proceed {
        display_name: String,
        default_domain: String,
    },
    /// The tenant's policy refuses the secret lifetime asked for; use `max_days` instead?
    ShorterSecret { asked_months: u8, max_days: u32 },
    /// The policy refuses the lifetime and its limit cannot be read (reading the policy needs
    /// Policy.Read.All, which hal-onboard does not ask for): try shorter ones, longest first?
    ShorterSecretUnknown { asked_months: u8, steps: Vec<u8> },
    /// `--adopt APPID`: make this app registration, which neither this machine nor the portal
    /// holds, hal-onboard's? Only a technician at a terminal answers it: `--yes` never does.
    Adopt { app: ForeignApp },
}

impl Question {
    /// `--yes` answers this question (it never answers an adoption).
    pub fn yes_answers(&self) -> bool {
        !matches!(self, Question::Adopt { .. })
    }
}

/// An app registration with our name that is not ours (neither recorded on this machine nor
/// held by the portal), with what makes it foreign. Nothing is ever granted to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignApp {
    pub object_id: String,
    pub app_id: String,
    pub tagged: bool,
    pub sign_in_audience: String,
    /// Owners, as `userPrincipalName` (or display name, or object ID).
    pub owners: Vec<String>,
    /// Every password credential: keyId, display name, hint, start date.
    pub credentials: Vec<String>,
}

impl ForeignApp {
    fn of(app: &crate::microsoft::graph::model::Application, owners: Vec<String>) -> ForeignApp {
        ForeignApp {
            object_id: app.id.clone(),
            app_id: app.app_id.clone(),
            tagged: app.tags.iter().any(|t| t == APP_TAG),
            sign_in_audience: app
                .sign_in_audience
                .clone()
                .unwrap_or_else(|| "unknown".into()),
            owners,
            credentials: app
                .password_credentials
                .iter()
                .map(|p| {
                    format!(
                        "keyId {} {:?} hint {}… from {}",
                        p.key_id.as_deref().unwrap_or("?"),
                        p.display_name.as_deref().unwrap_or(""),
                        p.hint.as_deref().unwrap_or("?"),
                        p.start_date_time
                            .map(|t| t.date().to_string())
                            .unwrap_or_else(|| "?".into())
                    )
                })
                .chain(app.key_credentials.iter().map(|k| {
                    format!(
                        "certificate keyId {} {:?} from {}",
                        k.key_id.as_deref().unwrap_or("?"),
                        k.display_name.as_deref().unwrap_or(""),
                        k.start_date_time
                            .map(|t| t.date().to_string())
                            .unwrap_or_else(|| "?".into())
                    )
                }))
                .collect(),
        }
    }

    /// Multi-tenant: another organization's app could sign in here with its own secret.
    pub fn multi_tenant(&self) -> bool {
        self.sign_in_audience != "AzureADMyOrg"
    }

    /// One line for the plan.
    pub fn describe(&self) -> String {
        format!(
            "not ours, left alone and granted nothing: app {} (object ID {}){}, signInAudience {}, owners: {}, credentials: {}",
            self.app_id,
            self.object_id,
            if self.tagged {
                " carrying hal-onboard's tag"
            } else {
                ""
            },
            self.sign_in_audience,
            if self.owners.is_empty() {
                "none listed".to_string()
            } else {
                self.owners.join(", ")
            },
            if self.credentials.is_empty() {
                "none".to_string()
            } else {
                self.credentials.join("; ")
            }
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Yes,
    No,
    /// No one can answer (no terminal, `--no-input`) and no flag did.
    CannotAsk,
}

/// How steps (and the engine) report. Implemented by the command with `Ui`.
pub trait Progress: Send + Sync {
    fn event(&self, e: Event);
    fn ask(&self, q: &Question) -> Answer;
}

/// One line of the plan.
#[derive(Debug, Clone)]
pub struct PlanItem {
    pub step: StepId,
    pub title: &'static str,
    pub state: PlanState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanState {
    Done,
    /// The changes it will make in the tenant.
    ToDo(Vec<String>),
    Skipped(String),
    /// Not in this run (a later command, or a step this build lacks).
    Later(String),
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub items: Vec<PlanItem>,
}

impl Plan {
    pub fn changes(&self) -> bool {
        self.items
            .iter()
            .any(|i| matches!(i.state, PlanState::ToDo(_)))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WizardError {
    #[error(
        "signed in to the wrong tenant: you asked for {asked}, but the sign-in is for {signed_in_name} ({signed_in})"
    )]
    WrongTenant {
        asked: String,
        signed_in: String,
        signed_in_name: String,
    },
    #[error(
        "{user} is not an administrator who can onboard this tenant: {}; onboarding needs {}",
        roles::describe(.held),
        roles::NEEDED
    )]
    NotAdmin {
        user: String,
        /// The directory role template IDs the account holds (active).
        held: Vec<String>,
        /// The role template IDs it is only eligible for (PIM); `None`: cannot tell.
        eligible: Option<Vec<String>>,
    },
    #[error("nothing was changed: the technician declined")]
    Declined,
    #[error("{question}: no one can answer here")]
    NeedsAnswer {
        question: String,
        flag: &'static str,
    },
    #[error(
        "an app registration named {name:?} already exists in this tenant and was not made by hal-onboard"
    )]
    AppNameTaken { name: String, object_id: String },
    #[error("{count} app registrations named {name:?} carry hal-onboard's tag")]
    AmbiguousApps { name: String, count: usize },
    #[error("no app registration named {name:?} has appId {app_id}: nothing to adopt")]
    AdoptNotFound { name: String, app_id: String },
    #[error("app {app_id} is not adopted: {reason}")]
    AdoptRefused { app_id: String, reason: String },
    #[error(
        "adopting app {app_id} needs a technician's confirmation at a terminal, and no one can answer here (--yes never answers it)"
    )]
    AdoptNeedsTerminal { app_id: String },
    #[error("the permissions Hal needs cannot be looked up in this tenant")]
    Resolve(#[from] ResolveError),
    #[error("Microsoft Graph failed during {}", .step.map(|s| s.title()).unwrap_or("the tenant survey"))]
    Graph {
        step: Option<StepId>,
        #[source]
        source: GraphError,
    },
    #[error("the tenant's app management policy refuses a {asked_months}-month client secret")]
    SecretPolicy {
        asked_months: u8,
        max_days: Option<u32>,
        #[source]
        source: GraphError,
    },
    #[error(
        "this tenant's app management policy does not allow client secrets, and Hal signs in with one"
    )]
    SecretsForbidden {
        #[source]
        source: GraphError,
    },
    #[error("cannot keep the client secret in the keyring; the new secret was removed again")]
    SecretStore(#[source] SecretError),
    #[error("the client secret is no longer in this machine's keyring")]
    SecretLost,
    #[error("the new credentials did not work after {attempts} attempts")]
    NotVerified {
        attempts: u32,
        #[source]
        source: verify::VerifyError,
    },
    #[error("admin consent is missing for: {}", .missing.join(", "))]
    ConsentIncomplete { missing: Vec<String> },
    #[error(
        "cannot read what the MSP portal holds for this tenant, so nothing was changed: without it, the app and secret Hal uses cannot be told from foreign ones"
    )]
    PortalUnreadable {
        #[source]
        source: crate::portal::PortalError,
    },
    #[error(
        "a new client secret would be kept nowhere: there is no OS keyring, no MSP portal to send it to, and it would not be shown (the output is not a terminal)"
    )]
    SecretKeptNowhere,
    #[error("the tenant store failed")]
    Store(#[from] StoreError),
    /// A step from elsewhere (the Exchange bridge) failed.
    #[error("{message}")]
    Step {
        step: StepId,
        message: String,
        hint: Option<String>,
        /// Waiting on Microsoft (exit 3), not a failure.
        waiting: bool,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl WizardError {
    /// Ctrl-C stopped the step (the Exchange bridge ended PowerShell): nothing failed.
    pub fn is_interrupted(&self) -> bool {
        matches!(self, WizardError::Step { source: Some(s), .. }
        if matches!(
            s.downcast_ref::<crate::microsoft::exchange::ExchangeError>(),
            Some(crate::microsoft::exchange::ExchangeError::Interrupted)
        ))
    }

    pub fn graph(step: StepId) -> impl FnOnce(GraphError) -> WizardError {
        move |source| WizardError::Graph {
            step: Some(step),
            source,
        }
    }

    /// The next thing to do.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            WizardError::WrongTenant { asked, .. } => format!(
                "Nothing was changed and the sign-in was not kept. Run the command again and sign in as an administrator of {asked} (use a private browser window if another account is remembered)."
            ),
            WizardError::NotAdmin { eligible, .. } => {
                let activate = eligible
                    .as_deref()
                    .map(roles::needed_among)
                    .unwrap_or_default();
                match (eligible, activate.is_empty()) {
                    (Some(_), false) => format!(
                        "Nothing was changed. Your {} role is eligible but not active: activate it in Privileged Identity Management (Entra admin center → Identity governance → Privileged Identity Management → My roles), then run the same command again.",
                        activate.join(" and ")
                    ),
                    (Some(_), true) => "Nothing was changed. Sign in as a Global Administrator of this tenant (or an Application Administrator who is also a Privileged Role Administrator).".into(),
                    (None, _) => "Nothing was changed. Sign in as a Global Administrator of this tenant (or an Application Administrator who is also a Privileged Role Administrator); if such a role is eligible to you in Privileged Identity Management, activate it first (My roles), then run the same command again.".into(),
                }
            }
            WizardError::Declined => return None,
            WizardError::NeedsAnswer { flag, .. } => format!("Pass {flag} to answer yes from a script."),
            WizardError::AppNameTaken { name, .. } => format!(
                "Nothing was changed. Rename or delete that app in the Entra admin center if it is a leftover, or pass --app-name to use another name than {name:?}."
            ),
            WizardError::AmbiguousApps { .. } => "Delete the extra copies in the Entra admin center (App registrations), then run the command again.".into(),
            WizardError::AdoptNotFound { .. } => "Nothing was changed. Run without --adopt to see the apps found (the plan lists them), or check the appId.".into(),
            WizardError::AdoptRefused { .. } => "Nothing was changed. Run without --adopt: hal-onboard makes its own app and grants nothing to that one; delete it in the Entra admin center if nobody needs it.".into(),
            WizardError::AdoptNeedsTerminal { .. } => "Nothing was changed. Run the same command at a terminal (without --no-input) and confirm the adoption, or run without --adopt.".into(),
            WizardError::Resolve(_) => "Check that the tenant has Microsoft Graph and Office 365 Management APIs enterprise apps, then run again.".into(),
            WizardError::Graph { source, .. } => return source.hint().or_else(|| Some("Run the same command again: it resumes where it stopped.".into())),
            WizardError::SecretPolicy { max_days: Some(d), .. } => format!(
                "Pass --secret-months {} (or --yes to accept the longest the policy allows).",
                (d / 31).clamp(1, 24)
            ),
            WizardError::SecretPolicy { .. } => "Ask the tenant's admin for the app management policy's longest secret lifetime and pass --secret-months N.".into(),
            WizardError::SecretsForbidden { .. } => "Nothing more was changed. A Global Administrator (or Application Administrator) can allow it in the Microsoft Entra admin center under Entra ID → Enterprise apps → Application policies (the tenant default app management policy's password restriction, `passwordAddition`), or exempt only hal-onboard's app with an app management policy assigned to it (Microsoft Graph `policies/appManagementPolicies`); then run the same command again: it resumes at the secret.".into(),
            WizardError::SecretStore(_) => "Unlock the OS keyring (or use a machine that has one), then run the command again.".into(),
            WizardError::SecretLost => "Run the same command again: it makes a new secret and removes the lost one.".into(),
            WizardError::NotVerified { source: verify::VerifyError::ReadDenied { permission, .. }, .. } => format!(
                "Check in the Entra admin center that admin consent for {permission} is granted (Enterprise applications → the app → Permissions), then run the same command again: it resumes at the verification."
            ),
            WizardError::NotVerified { .. } => "New secrets can take several minutes to work. Run the same command again in 5 minutes: it resumes at the verification.".into(),
            WizardError::ConsentIncomplete { .. } => "Run the same command again; if it persists, grant admin consent in the Entra admin center (App registrations → API permissions).".into(),
            WizardError::PortalUnreadable { source } => format!(
                "{} and run the same command again; or pass --no-portal to onboard without it now (it is then neither read nor sent to) and send the credentials later with `hal-onboard portal submit`.",
                match source {
                    crate::portal::PortalError::Unauthorized { .. } => "Save a valid API token with `hal-onboard portal login`",
                    _ => "Check the portal with `hal-onboard portal status`",
                }
            ),
            WizardError::SecretKeptNowhere => "Nothing was changed. Run at a terminal, pass --show-secret to print the secret into the output on purpose, configure the portal (`hal-onboard portal login`), or use a machine with an OS keyring (`hal-onboard doctor` checks it).".into(),
            WizardError::Store(e) => return e.hint(),
            WizardError::Step { hint, .. } => return hint.clone(),
        })
    }

    /// Step 1 could not start because of this machine's PowerShell or its module (not the
    /// tenant): the Graph steps go on without it.
    pub fn is_machine_prerequisite(&self) -> bool {
        matches!(self, WizardError::Step { source: Some(s), .. }
            if s.downcast_ref::<crate::microsoft::exchange::ExchangeError>()
                .is_some_and(|e| e.is_prerequisite()))
    }

    /// Waiting on Microsoft rather than failed.
    pub fn is_waiting(&self) -> bool {
        matches!(self, WizardError::Step { waiting: true, .. })
    }

    /// Bad usage (exit 2) rather than a failure.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            WizardError::NeedsAnswer { .. }
                | WizardError::AppNameTaken { .. }
                | WizardError::AdoptNotFound { .. }
                | WizardError::AdoptRefused { .. }
                | WizardError::AdoptNeedsTerminal { .. }
                | WizardError::SecretKeptNowhere
        )
    }
}

/// The tenant, signed in and checked, with the survey of what exists.
#[derive(Debug, Clone)]
pub struct Identified {
    pub tenant_id: Uuid,
    pub display_name: String,
    pub default_domain: String,
    pub claims: TokenClaims,
    pub survey: Survey,
    /// The store's record, if this tenant was seen before.
    pub record: Option<TenantRecord>,
    /// What the MSP portal holds for the tenant (`None`: nothing, or no portal configured).
    pub portal: Option<PortalRecord>,
    /// Apps with our name that are not ours, shown in the plan and left alone.
    pub foreign: Vec<ForeignApp>,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub record: TenantRecord,
    pub plan: Plan,
    pub stats: RequestStats,
}

/// The wizard for one tenant.
pub struct Wizard<'a> {
    pub settings: Settings,
    pub dir: &'a dyn DirectoryApi,
    pub verifier: &'a dyn CredentialVerifier,
    pub secrets: Arc<dyn SecretStore>,
    pub store: &'a TenantStore,
    pub progress: &'a dyn Progress,
    pub meter: Arc<RequestMeter>,
    /// Step 1, from the Exchange bridge (`src/wizard/steps/exchange.rs`). `None` in a build
    /// without it: the plan shows it as later.
    pub exchange: Option<Box<dyn Step + 'a>>,
    /// Step 6, sending the verified credentials to the MSP portal (`src/wizard/steps/portal.rs`
    /// when it exists). Runs only once verification is done. `None`: the plan shows it as later.
    pub portal: Option<Box<dyn Step + 'a>>,
    /// The record as this run last read or saved it (`Default::default()`): a save writes only
    /// the fields changed since, so what another process wrote to other fields stays.
    pub saved: std::sync::Mutex<Option<TenantRecord>>,
}

impl<'a> Wizard<'a> {
    /// Signs in (through the directory's credential), reads the tenant in one round trip, and
    /// makes sure it is the tenant asked for. Writes nothing, anywhere.
    pub async fn identify(&self) -> Result<Identified, WizardError> {
        let survey_err = |source| WizardError::Graph { step: None, source };
        let claims = self.dir.signed_in().await.map_err(survey_err)?;
        let tid = claims.tenant_id().ok_or_else(|| {
            survey_err(GraphError::Decode {
                what: "the sign-in token".into(),
                detail: "no tenant ID (tid) in it".into(),
            })
        })?;
        let asked = self.settings.tenant.clone();
        let wrong = |name: &str| WizardError::WrongTenant {
            asked: asked.to_string(),
            signed_in: tid.to_string(),
            signed_in_name: name.to_string(),
        };
        // A GUID is checked before anything is read.
        if let Some(g) = asked.id()
            && g != tid
        {
            return Err(wrong("another tenant"));
        }
        let doc = self.store.load()?;
        let record = doc.find(asked.as_str()).ok().cloned();
        if let Some(r) = &record
            && r.tenant_id != tid
        {
            return Err(wrong("another tenant"));
        }
        let record = record.or_else(|| doc.get(tid).cloned());
        *self.saved.lock().expect("not poisoned") = record.clone();
        let app = record.as_ref().and_then(|r| r.app.clone());
        let q = SurveyQuery {
            app_name: self.settings.app_name.clone(),
            app_object_id: app.as_ref().map(|a| a.object_id.clone()),
            app_id: app.as_ref().map(|a| a.app_id.clone()),
            service_principal_id: app.as_ref().and_then(|a| a.service_principal_id.clone()),
            member_of: claims.wids.is_empty(),
        };
        let mut survey = self.dir.survey(&q).await.map_err(survey_err)?;
        let org = &survey.organization;
        let display_name = org.display_name.clone().unwrap_or_default();
        if !org.id.eq_ignore_ascii_case(&tid.to_string()) {
            return Err(wrong(&display_name));
        }
        if asked.id().is_none() && !org.has_domain(asked.as_str()) {
            return Err(wrong(&display_name));
        }
        let default_domain = org
            .default_domain()
            .map(str::to_string)
            .unwrap_or_else(|| asked.to_string());
        // The recorded app seems gone. If it was made minutes ago it may only be replicating:
        // look again, patiently, before planning to make another one.
        if let (Some(a), None) = (&app, &survey.app_by_id) {
            let recent = record
                .as_ref()
                .and_then(|r| r.steps.app.at)
                .is_some_and(|t| OffsetDateTime::now_utc() - t < time::Duration::minutes(15));
            if recent {
                survey.app_by_id = self
                    .dir
                    .application(&a.object_id, 4)
                    .await
                    .map_err(survey_err)?;
            }
        }
        // What the portal holds: the source of truth for which app and secret are Hal's.
        let portal = match self.portal.as_ref().and_then(|p| p.portal_api()) {
            Some(api) => match api.tenant(&tid.to_string()).await {
                Ok(r) => r,
                // Unread, the portal's app looks foreign and a second one would be made beside
                // it: stop before any change.
                Err(source) => return Err(WizardError::PortalUnreadable { source }),
            },
            None => None,
        };
        let foreign = self
            .resolve_our_app(
                &mut survey,
                app.as_ref().map(|a| a.app_id.as_str()),
                record.as_ref(),
                portal.as_ref(),
            )
            .await?;
        Ok(Identified {
            tenant_id: tid,
            display_name,
            default_domain,
            claims,
            survey,
            record,
            portal,
            foreign,
        })
    }

    /// Settles which app is ours: the recorded one if it still exists, else the one of our name
    /// whose appId this machine recorded or the portal holds, else one named by `--adopt` and
    /// confirmed by the technician (never a multi-tenant one, nor one holding credentials that
    /// are not ours). Every other app of our name is foreign: returned for the plan, with its
    /// owners, and left alone.
    async fn resolve_our_app(
        &self,
        survey: &mut Survey,
        recorded_app_id: Option<&str>,
        record: Option<&TenantRecord>,
        portal: Option<&PortalRecord>,
    ) -> Result<Vec<ForeignApp>, WizardError> {
        let same = |a: &str, b: Option<&str>| b.is_some_and(|b| a.eq_ignore_ascii_case(b));
        if let Some(ours) = &survey.app_by_id {
            if let Some(want) = self.settings.adopt.as_deref()
                && !same(&ours.app_id, Some(want))
            {
                // Refused for what it is first; if it would pass, still refused: ours exists.
                self.adoptable(survey, want, record, portal).await?;
                return Err(WizardError::AdoptRefused {
                    app_id: want.to_string(),
                    reason: format!(
                        "hal-onboard's app {} is recorded for this tenant and still exists",
                        ours.app_id
                    ),
                });
            }
            return Ok(Vec::new());
        }
        let graph_err = |source| WizardError::Graph { step: None, source };
        let mut chosen = survey
            .apps_by_name
            .iter()
            .find(|a| {
                same(&a.app_id, recorded_app_id)
                    || same(&a.app_id, portal.map(|p| p.client_id.as_str()))
            })
            .cloned();
        if let Some(want) = self.settings.adopt.as_deref()
            && chosen.as_ref().is_none_or(|c| !same(&c.app_id, Some(want)))
        {
            let (app, f) = self.adoptable(survey, want, record, portal).await?;
            match self.progress.ask(&Question::Adopt { app: f }) {
                Answer::Yes => chosen = Some(app),
                Answer::No => return Err(WizardError::Declined),
                Answer::CannotAsk => {
                    return Err(WizardError::AdoptNeedsTerminal {
                        app_id: want.to_string(),
                    });
                }
            }
        }
        let mut foreign = Vec::new();
        let others: Vec<_> = survey
            .apps_by_name
            .iter()
            .filter(|a| chosen.as_ref().is_none_or(|c| c.id != a.id))
            .cloned()
            .collect();
        for a in &others {
            let owners = self.owners(&a.id).await.map_err(graph_err)?;
            foreign.push(ForeignApp::of(a, owners));
        }
        match chosen {
            None => {
                // Nothing recorded survives: the service principal and grants go with it.
                survey.our_sp = None;
                survey.assignments = None;
            }
            Some(app) => {
                if recorded_app_id != Some(app.app_id.as_str()) {
                    let (sp, a) = self.dir.app_details(&app.app_id).await.map_err(graph_err)?;
                    survey.assignments = sp.as_ref().map(|_| a);
                    survey.our_sp = sp;
                }
                survey.app_by_id = Some(app);
            }
        }
        Ok(foreign)
    }

    /// The app `--adopt` names, if it may be adopted at all: single tenant, and holding no
    /// credential that is not ours (recorded here or held by the portal).
    async fn adoptable(
        &self,
        survey: &Survey,
        want: &str,
        record: Option<&TenantRecord>,
        portal: Option<&PortalRecord>,
    ) -> Result<(crate::microsoft::graph::model::Application, ForeignApp), WizardError> {
        let same = |a: &str, b: Option<&str>| b.is_some_and(|b| a.eq_ignore_ascii_case(b));
        let Some(app) = survey
            .apps_by_name
            .iter()
            .find(|a| same(&a.app_id, Some(want)))
        else {
            return Err(WizardError::AdoptNotFound {
                name: self.settings.app_name.clone(),
                app_id: want.to_string(),
            });
        };
        let owners = self
            .owners(&app.id)
            .await
            .map_err(|source| WizardError::Graph { step: None, source })?;
        let f = ForeignApp::of(app, owners);
        let known: Vec<&str> = record
            .and_then(|r| r.secret.as_ref().map(|s| s.key_id.as_str()))
            .into_iter()
            .chain(portal.map(|p| p.secret_key_id.as_str()))
            .collect();
        let not_ours: Vec<String> = app
            .password_credentials
            .iter()
            .filter(|p| !known.iter().any(|k| same(k, p.key_id.as_deref())))
            .map(|p| p.key_id.clone().unwrap_or_else(|| "?".into()))
            // hal-onboard never adds a certificate: every one is someone else's.
            .chain(
                app.key_credentials
                    .iter()
                    .map(|k| format!("certificate {}", k.key_id.as_deref().unwrap_or("?"))),
            )
            .collect();
        let refused = if f.multi_tenant() {
            Some(format!(
                "it is multi-tenant (signInAudience {}): an app registered elsewhere could sign in to this tenant with its own secret and Hal's permissions",
                f.sign_in_audience
            ))
        } else if !not_ours.is_empty() {
            Some(format!(
                "it holds credentials that are not ours (keyId {}): whoever holds them would read this tenant's logs with Hal's permissions",
                not_ours.join(", ")
            ))
        } else {
            None
        };
        match refused {
            Some(reason) => Err(WizardError::AdoptRefused {
                app_id: want.to_string(),
                reason,
            }),
            None => Ok((app.clone(), f)),
        }
    }

    async fn owners(&self, object_id: &str) -> Result<Vec<String>, GraphError> {
        Ok(self
            .dir
            .app_owners(object_id)
            .await?
            .into_iter()
            .map(|o| o.user_principal_name.or(o.display_name).unwrap_or(o.id))
            .collect())
    }

    fn graph_steps() -> Vec<Box<dyn Step + 'a>> {
        vec![
            Box::new(steps::app::AppStep),
            Box::new(steps::secret::SecretStep),
            Box::new(steps::consent::ConsentStep),
            Box::new(steps::verify::VerifyStep),
        ]
    }

    /// Plans, asks, and runs every step that is not done.
    pub async fn run(mut self, id: Identified) -> Result<RunReport, WizardError> {
        let now = OffsetDateTime::now_utc();
        let mut record = id.record.clone().unwrap_or_else(|| {
            TenantRecord::new(
                id.tenant_id,
                &id.default_domain,
                &id.display_name,
                self.settings.cloud,
            )
        });
        record.display_name = id.display_name.clone();
        record.primary_domain = id.default_domain.clone();
        if let Some(d) = id.survey.organization.initial_domain() {
            record.initial_domain = Some(d.to_string());
        }
        record.cloud = self.settings.cloud;
        for d in &id.survey.organization.verified_domains {
            if !record
                .domains
                .iter()
                .any(|x| x.eq_ignore_ascii_case(&d.name))
            {
                record.domains.push(d.name.clone());
            }
        }
        // An unreadable SKU list keeps what an earlier run learned.
        if let Some(skus) = &id.survey.skus {
            record.license = Some(licence(skus));
        }
        self.progress.event(Event::Tenant {
            display_name: id.display_name.clone(),
            default_domain: id.default_domain.clone(),
            tenant_id: id.tenant_id,
            user: id.claims.user().map(str::to_string),
        });
        self.progress.event(Event::Licence {
            licence: record.license,
        });

        let mut survey = id.survey.clone();
        let secret_present = self.secret_present(id.tenant_id).await?;
        match &id.portal {
            Some(p) => {
                self.progress.event(Event::Info(format!(
                    "The MSP portal holds: client ID {}, secret keyId {}{}, UAL {}, licence {}{}",
                    p.client_id,
                    p.secret_key_id,
                    p.secret_expires_at
                        .map(|t| format!(" (expires {})", t.date()))
                        .unwrap_or_default(),
                    p.ual_status.as_deref().unwrap_or("unknown"),
                    p.entra_license.as_deref().unwrap_or("unknown"),
                    p.updated_at
                        .map(|t| format!(", updated {}", t.date()))
                        .unwrap_or_default(),
                )));
                trust_the_portal(&mut record, &survey, p, secret_present);
            }
            None if self.portal.is_some() => self.progress.event(Event::Info(
                "The MSP portal holds nothing for this tenant yet.".into(),
            )),
            None => {}
        }
        let mut exchange = self.exchange.take();
        let graph_steps = Self::graph_steps();

        // The plan.
        let mut items = Vec::new();
        let mut todo: Vec<bool> = Vec::new();
        {
            let mut cx = self.cx(&mut record, &mut survey, secret_present, false);
            let ex_state = if self.settings.skip_exchange {
                PlanState::Skipped("--skip-exchange".into())
            } else if let Some(ex) = &exchange {
                to_state(ex.assess(&cx))
            } else {
                PlanState::Later(
                    "Exchange audit logging is not in this build; pass --skip-exchange".into(),
                )
            };
            items.push(PlanItem {
                step: StepId::Exchange,
                title: StepId::Exchange.title(),
                state: ex_state,
            });
            for s in &graph_steps {
                let mut st = to_state(s.assess(&cx));
                if s.id() == StepId::App {
                    // The apps of our name that are not ours, and what makes them foreign.
                    for f in &id.foreign {
                        match &mut st {
                            PlanState::ToDo(v) => v.push(f.describe()),
                            _ => self.progress.event(Event::Warning(f.describe())),
                        }
                    }
                }
                let is_todo = matches!(st, PlanState::ToDo(_));
                cx.earlier_changed |= is_todo;
                todo.push(is_todo);
                items.push(PlanItem {
                    step: s.id(),
                    title: s.id().title(),
                    state: st,
                });
            }
            // A new secret will have to be sent; new permissions alone change nothing the
            // portal holds.
            let new_secret = items
                .iter()
                .any(|i| i.step == StepId::Secret && matches!(i.state, PlanState::ToDo(_)));
            let portal_state = match &self.portal {
                Some(p) if new_secret => match p.assess(&cx) {
                    Assessment::Done => {
                        PlanState::ToDo(vec!["send the new credentials to the MSP portal".into()])
                    }
                    a => to_state(a),
                },
                Some(p) => to_state(p.assess(&cx)),
                None if cx.record.portal.state == crate::store::PortalState::Submitted => {
                    PlanState::Done
                }
                None => PlanState::Later(
                    "no MSP portal is configured: run `hal-onboard portal login`, then `hal-onboard portal submit` for this tenant".into(),
                ),
            };
            items.push(PlanItem {
                step: StepId::Portal,
                title: StepId::Portal.title(),
                state: portal_state,
            });
        }
        let plan = Plan { items };
        self.progress.event(Event::Plan(plan.clone()));
        // A secret that would be kept nowhere (no keyring, not shown, no portal to send it to)
        // is never made: it would be a credential on the app that nobody holds.
        let makes_secret = plan
            .items
            .iter()
            .any(|i| i.step == StepId::Secret && matches!(i.state, PlanState::ToDo(_)));
        if makes_secret && self.secret_kept_nowhere() && self.portal.is_none() {
            return Err(WizardError::SecretKeptNowhere);
        }

        if plan.changes() {
            // Only an administrator who can consent may start changing the tenant.
            let held: Vec<String> = if !id.claims.wids.is_empty() {
                id.claims.wids.clone()
            } else {
                survey.role_template_ids.clone().unwrap_or_default()
            };
            let role_info = !id.claims.wids.is_empty() || survey.role_template_ids.is_some();
            if role_info && !can_onboard(&held) {
                let eligible = match id.claims.oid.as_deref() {
                    Some(oid) => self.dir.eligible_roles(oid).await.unwrap_or(None),
                    None => None,
                };
                return Err(WizardError::NotAdmin {
                    user: id.claims.user().unwrap_or("the signed-in user").to_string(),
                    held,
                    eligible,
                });
            }
            if !role_info {
                self.progress.event(Event::Warning(
                    "cannot read the signed-in user's directory roles; continuing, but consent needs a Global Administrator".into(),
                ));
            }
            match self.progress.ask(&Question::Proceed {
                display_name: id.display_name.clone(),
                default_domain: id.default_domain.clone(),
            }) {
                Answer::Yes => {}
                Answer::No => return Err(WizardError::Declined),
                Answer::CannotAsk => {
                    return Err(WizardError::NeedsAnswer {
                        question: format!(
                            "Change {} ({}) as planned?",
                            id.display_name, id.default_domain
                        ),
                        flag: "--yes",
                    });
                }
            }
        }
        record.updated_at = now;
        self.persist(&record)?;

        // Step 1: Exchange (its own engineer's step), skipped or run.
        if self.settings.skip_exchange {
            if record.steps.exchange.status != StepStatus::Skipped {
                record
                    .step_mut(StepId::Exchange)
                    .record(StepStatus::Skipped, None);
                self.persist(&record)?;
            }
        } else if let Some(ex) = exchange.as_mut() {
            let mut cx = self.cx(&mut record, &mut survey, secret_present, false);
            if matches!(ex.assess(&cx), Assessment::ToDo(_)) {
                if let Err(e) = self.run_one(ex.as_ref(), &mut cx).await {
                    if !e.is_machine_prerequisite() {
                        return Err(e);
                    }
                    // This machine's PowerShell, not the tenant: the Graph steps go on, and
                    // the record says why UAL is still to do.
                    self.progress.event(Event::Warning(format!(
                        "unified audit logging is not turned on: {e}; the other steps go on"
                    )));
                }
                self.persist(&record)?;
            }
        }

        // Steps 2–5.
        let mut earlier_changed = false;
        let mut secret_present = secret_present;
        for s in &graph_steps {
            let mut cx = self.cx(&mut record, &mut survey, secret_present, earlier_changed);
            match s.assess(&cx) {
                Assessment::Done => {
                    // Re-checked and still there; record it done if an older run did not.
                    let before = cx.record.clone();
                    s.record_found(&mut cx);
                    if !cx.record.step(s.id()).is_done() {
                        cx.record.step_mut(s.id()).record(StepStatus::Done, None);
                    }
                    if *cx.record != before {
                        self.persist(&record)?;
                    }
                    continue;
                }
                Assessment::ToDo(_) => {}
            }
            let r = self.run_one(s.as_ref(), &mut cx).await;
            secret_present = cx.secret_present;
            self.persist(&record)?;
            r?;
            earlier_changed = true;
        }

        // Step 6: the portal, once the credentials are proven.
        let portal_api = self.portal.as_ref().and_then(|p| p.portal_api());
        if let Some(portal) = self.portal.take()
            && record.step(StepId::Verify).is_done()
        {
            let mut cx = self.cx(&mut record, &mut survey, secret_present, earlier_changed);
            let due = matches!(portal.assess(&cx), Assessment::ToDo(_));
            if due {
                let r = self.run_one(portal.as_ref(), &mut cx).await;
                self.persist(&record)?;
                if let Err(e) = r {
                    return Err(self.unkept_secret_goes(&mut record, &mut survey, e).await);
                }
                // The portal accepted the new secret in this run: only now may the secrets it
                // replaces go (never the one the portal holds, which is now the new one).
                self.remove_replaced(&mut record, &mut survey).await?;
            }
        }
        // The portal holds the credentials but was told another status (UAL verified since):
        // tell it, without the secret.
        if let Some(api) = portal_api {
            match steps::portal::send_status(&mut record, api.as_ref()).await {
                Ok(true) => {
                    self.persist(&record)?;
                    self.progress.event(Event::Info(
                        "told the MSP portal the tenant's new status (no secret sent)".into(),
                    ));
                }
                Ok(false) => {}
                Err(e) => self.progress.event(Event::Warning(format!(
                    "the MSP portal was not told the tenant's new status: {e}; `hal-onboard portal submit {}` sends it",
                    record.primary_domain
                ))),
            }
        }
        Ok(RunReport {
            record,
            plan,
            stats: self.meter.stats(),
        })
    }

    /// No keyring, and the secret is not going to be shown: the portal was its only keeper.
    fn secret_kept_nowhere(&self) -> bool {
        !self.secrets.is_persistent() && !self.settings.secret_shown
    }

    /// The portal did not take the secret. When it can be kept nowhere else, this run's
    /// secret is removed from the app again (nobody holds its value, so nothing can use it) and
    /// the record forgets it, so a re-run makes a new one; the error says so.
    async fn unkept_secret_goes(
        &self,
        record: &mut TenantRecord,
        survey: &mut Survey,
        e: WizardError,
    ) -> WizardError {
        if !self.secret_kept_nowhere() {
            return e;
        }
        let (Some(app), Some(sec)) = (survey.app_by_id.clone(), record.secret.clone()) else {
            return e;
        };
        let tenant = record.tenant_id;
        let held_here = self
            .secrets
            .get(&crate::secrets::account::client_secret(tenant))
            .ok()
            .flatten()
            .is_some();
        if !held_here {
            return e;
        }
        let removed = self.dir.remove_password(&app.id, &sec.key_id).await;
        let _ = self
            .secrets
            .delete(&crate::secrets::account::client_secret(tenant));
        let what = match &removed {
            Ok(()) => {
                record.secret = None;
                *record.step_mut(StepId::Secret) = Default::default();
                *record.step_mut(StepId::Verify) = Default::default();
                if let Some(a) = survey.app_by_id.as_mut() {
                    a.password_credentials
                        .retain(|p| p.key_id.as_deref() != Some(sec.key_id.as_str()));
                }
                "so it was removed from the app again"
            }
            Err(_) => {
                "and could not be removed from the app (a re-run removes it once the portal has a newer one)"
            }
        };
        if let Err(pe) = self.persist(record) {
            return pe;
        }
        let (message, hint) = match &e {
            WizardError::Step { message, hint, .. } => (message.clone(), hint.clone()),
            other => (other.to_string(), other.hint()),
        };
        WizardError::Step {
            step: StepId::Portal,
            message: format!(
                "{message}; the new client secret could be kept nowhere else (no OS keyring, and it is not shown: the output is not a terminal), {what}"
            ),
            hint: Some(format!(
                "{}Run `hal-onboard tenant add {}` again once the portal answers: it makes a new secret. To keep one whatever the portal does, run at a terminal, pass --show-secret, or use a machine with an OS keyring (`hal-onboard doctor`).",
                hint.map(|h| format!("{h} ")).unwrap_or_default(),
                record.primary_domain
            )),
            waiting: false,
            source: Some(Box::new(e)),
        }
    }

    /// After the portal accepted the recorded secret in this run: removes the older secrets of
    /// ours (named [`SECRET_DESCRIPTION`]) from our app. Not an error if one cannot be removed:
    /// Hal works with the new one; the old one only lingers.
    async fn remove_replaced(
        &self,
        record: &mut TenantRecord,
        survey: &mut Survey,
    ) -> Result<(), WizardError> {
        let (Some(app), Some(held)) = (
            survey.app_by_id.clone(),
            record.portal.secret_key_id.clone(),
        ) else {
            return Ok(());
        };
        if !steps::portal::is_current(record) {
            return Ok(());
        }
        let mut removed = 0;
        for p in &app.password_credentials {
            let Some(k) = p.key_id.as_deref() else {
                continue;
            };
            if p.display_name.as_deref() != Some(SECRET_DESCRIPTION)
                || k.eq_ignore_ascii_case(&held)
            {
                continue;
            }
            match self.dir.remove_password(&app.id, k).await {
                Ok(()) => {
                    removed += 1;
                    if let Some(a) = survey.app_by_id.as_mut() {
                        a.password_credentials
                            .retain(|x| x.key_id.as_deref() != Some(k));
                    }
                }
                Err(e) => self.progress.event(Event::Warning(format!(
                    "the older secret (hint {}…) could not be removed from the app: {e}; Hal uses the new one",
                    p.hint.as_deref().unwrap_or("?")
                ))),
            }
        }
        if removed > 0 {
            self.progress.event(Event::Info(format!(
                "removed {removed} older secret(s) named {SECRET_DESCRIPTION:?}: the portal holds the new one"
            )));
        }
        Ok(())
    }

    /// What a step is given: this run's clients and settings, with the record and survey.
    pub(crate) fn cx<'b>(
        &'b self,
        record: &'b mut TenantRecord,
        survey: &'b mut Survey,
        secret_present: bool,
        earlier_changed: bool,
    ) -> StepCx<'b> {
        StepCx {
            record,
            survey,
            dir: self.dir,
            verifier: self.verifier,
            secrets: &self.secrets,
            progress: self.progress,
            settings: &self.settings,
            secret_present,
            earlier_changed,
            meter: self.meter.clone(),
        }
    }

    /// The client secret's value is in the secret store (read off the async workers: the
    /// keyring blocks).
    pub async fn secret_present(&self, tenant: Uuid) -> Result<bool, WizardError> {
        let s = self.secrets.clone();
        let acct = crate::secrets::account::client_secret(tenant);
        tokio::task::spawn_blocking(move || s.get(&acct))
            .await
            .map_err(|e| WizardError::SecretStore(SecretError::Failed(e.to_string())))?
            .map(|v| v.is_some())
            .map_err(WizardError::SecretStore)
    }

    pub(crate) async fn run_one(
        &self,
        s: &(dyn Step + 'a),
        cx: &mut StepCx<'_>,
    ) -> Result<(), WizardError> {
        let id = s.id();
        self.progress.event(Event::StepStarted(id));
        match s.run(cx).await {
            Ok(StepOutcome::Done(summary)) => {
                cx.record.step_mut(id).record(StepStatus::Done, None);
                self.progress.event(Event::StepDone { step: id, summary });
                Ok(())
            }
            Ok(StepOutcome::Waiting(why)) => {
                cx.record
                    .step_mut(id)
                    .record(StepStatus::Waiting, Some(one_line(&why)));
                self.progress.event(Event::Info(why));
                Ok(())
            }
            // Stopped, not failed: the step stays as it was, to be resumed.
            Err(e) if e.is_interrupted() => Err(e),
            Err(e) => {
                cx.record
                    .step_mut(id)
                    .record(StepStatus::Failed, Some(one_line(&e.to_string())));
                // The record is persisted by the caller, then the error propagates.
                self.persist(cx.record)?;
                Err(e)
            }
        }
    }

    /// One short transaction: the fields this run changed in `record` since it last read or
    /// saved it are set on the stored record (never the whole record read earlier).
    pub(crate) fn persist(&self, record: &TenantRecord) -> Result<(), WizardError> {
        let mut saved = self.saved.lock().expect("not poisoned");
        self.store.save_changes(saved.as_ref(), record)?;
        *saved = Some(record.clone());
        Ok(())
    }
}

/// The portal is the source of truth: when it holds our app, this machine's record learns
/// which secret it holds (kept, never removed) and, if this machine holds no usable one, that
/// the portal's is the tenant's current secret (nothing new is made for it).
fn trust_the_portal(
    record: &mut TenantRecord,
    survey: &Survey,
    held: &PortalRecord,
    secret_present: bool,
) {
    let Some(app) = &survey.app_by_id else {
        return;
    };
    if !app.app_id.eq_ignore_ascii_case(&held.client_id) {
        return;
    }
    if record
        .app
        .as_ref()
        .is_none_or(|a| !a.app_id.eq_ignore_ascii_case(&app.app_id))
    {
        record.app = Some(crate::store::AppRecord {
            object_id: app.id.clone(),
            app_id: app.app_id.clone(),
            display_name: app.display_name.clone().unwrap_or_default(),
            service_principal_id: survey.our_sp.as_ref().map(|sp| sp.id.clone()),
        });
    }
    let on_app = |k: &str| {
        app.password_credentials.iter().find(|p| {
            p.key_id
                .as_deref()
                .is_some_and(|x| x.eq_ignore_ascii_case(k))
        })
    };
    let Some(cred) = on_app(&held.secret_key_id) else {
        return;
    };
    let ours_usable = record.secret.as_ref().is_some_and(|s| {
        on_app(&s.key_id).is_some()
            && (s.key_id.eq_ignore_ascii_case(&held.secret_key_id) || secret_present)
    });
    let key = cred.key_id.clone().unwrap_or_default();
    if !ours_usable {
        let now = OffsetDateTime::now_utc();
        record.secret = Some(crate::store::SecretRecord {
            key_id: key.clone(),
            hint: cred.hint.clone().unwrap_or_default(),
            created_at: cred.start_date_time.unwrap_or(now),
            expires_at: cred.end_date_time.or(held.secret_expires_at).unwrap_or(now),
        });
    }
    record.portal.secret_key_id = Some(key);
    record.portal.state = crate::store::PortalState::Submitted;
    if let (Some(u), Some(l)) = (&held.ual_status, &held.entra_license) {
        record.portal.told = Some(crate::store::PortalStatus {
            ual_status: u.clone(),
            entra_license: l.clone(),
        });
    }
}

fn to_state(a: Assessment) -> PlanState {
    match a {
        Assessment::Done => PlanState::Done,
        Assessment::ToDo(c) => PlanState::ToDo(c),
    }
}

/// First line, without anything that looks like a secret (steps never put one there anyway).
fn one_line(s: &str) -> String {
    let l = s.lines().next().unwrap_or_default();
    l.chars().take(300).collect()
}

/// Global Administrator, or (Application / Cloud Application Administrator) + Privileged
/// Role Administrator (needed to consent to Microsoft Graph application permissions).
pub fn can_onboard(role_template_ids: &[String]) -> bool {
    let has = |r: &str| role_template_ids.iter().any(|x| x.eq_ignore_ascii_case(r));
    has(roles::GLOBAL_ADMIN)
        || ((has(roles::APPLICATION_ADMIN) || has(roles::CLOUD_APPLICATION_ADMIN))
            && has(roles::PRIVILEGED_ROLE_ADMIN))
}

/// Entra ID P2 if any enabled SKU carries AAD_PREMIUM_P2, else P1 with AAD_PREMIUM, else none.
pub fn licence(skus: &[crate::microsoft::graph::model::SubscribedSku]) -> EntraLicense {
    let enabled = |s: &&crate::microsoft::graph::model::SubscribedSku| {
        s.capability_status
            .as_deref()
            .is_none_or(|c| c.eq_ignore_ascii_case("Enabled") || c.eq_ignore_ascii_case("Warning"))
    };
    let has = |plan: &str| {
        skus.iter().filter(enabled).any(|s| {
            s.service_plans.iter().any(|p| {
                p.service_plan_name == plan
                    && p.provisioning_status
                        .as_deref()
                        .is_none_or(|st| !st.eq_ignore_ascii_case("Disabled"))
            })
        })
    };
    if has("AAD_PREMIUM_P2") {
        EntraLicense::P2
    } else if has("AAD_PREMIUM") {
        EntraLicense::P1
    } else {
        EntraLicense::None
    }
}

/// What Hal will not see without P1/P2 (the guide's licensing note).
pub fn licence_note(l: EntraLicense) -> Option<&'static str> {
    match l {
        EntraLicense::P2 => None,
        EntraLicense::P1 => Some(
            "Entra ID P1 only: Hal monitors everything except risk detections; sign-in risk shows as \"hidden\" rather than rated.",
        ),
        EntraLicense::None => Some(
            "no Entra ID P1 or P2: Hal will not see sign-in logs, directory audits or risk detections (P1 is required for sign-in logs and directory audits, P2 for risk detections); M365 audit logs and alerts still flow.",
        ),
    }
}

#[cfg(test)]
mod tests;
