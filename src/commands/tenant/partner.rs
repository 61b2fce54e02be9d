//! `hal-onboard tenant add --partner TENANT… | --partner --all`: every customer GDAP reaches
//! after one partner sign-in, `--jobs N` at once (src/partner/batch.rs does the work).
//!
//! The story: the plan needs an answer (stop now, before any sign-in, when nobody can give it)
//! → the named customers' tenant IDs (OpenID discovery, as `tenant add`) → the partner sign-in
//! → the GDAP survey → the customers to onboard and the ones skipped → the plan, asked once →
//! the live table → the summary and the exit status (0 / 3 / 1).

use std::sync::Arc;

use crate::commands::Ctx;
use crate::commands::tenant::add::AddArgs;
use crate::error::{CommandError, CommandResult, ExitStatus, user_error};
use crate::microsoft::exchange::{AuthChoice, ExchangeError, OpsFactory};
use crate::microsoft::graph::gate::ThrottleGate;
use crate::microsoft::graph::meter::RequestMeter;
use crate::microsoft::graph::{GraphClient, RetryPolicy};
use crate::partner::batch::{self, BatchSettings, Deps, PartnerAccess, PartnerExchange};
use crate::partner::signin::PartnerSignIn;
use crate::ui::multi::{BatchTable, show_plan, show_summary};
use crate::ui::{TenantOutput, UiSignIn, interrupt};

pub fn cmd_tenant_add_partner(ctx: &Ctx, args: &AddArgs) -> CommandResult {
    let ui = &ctx.ui;
    if !args.all && args.tenants.is_empty() {
        return Err(user_error("name the customers to onboard, or pass --all").hint(
            "`hal-onboard partner customers` lists them; then `hal-onboard tenant add --partner --all`, or `hal-onboard tenant add --partner fabrikam.onmicrosoft.com`.",
        ));
    }
    // One question for the whole batch: nobody to answer it and no --yes stops here.
    ui.answer_needed(args.yes, "Onboarding the customers as planned", "--yes")?;
    let cfg = crate::partner::signin::config_for(ctx.home_config()?.partner.as_ref(), None)?;
    let rt = ctx.runtime()?;
    // A named customer is found by tenant ID (GDAP lists customers by ID); a typo stops here.
    let mut named = Vec::new();
    for t in &args.tenants {
        let found = ctx.tenant_cloud_blocking(t)?;
        named.push((t.to_string(), found.tenant_id));
    }
    let http = ctx.http()?;
    let secrets = ctx.secrets();
    let partner: Arc<PartnerSignIn> = rt.block_on(PartnerSignIn::open(
        &ctx.env,
        http.clone(),
        &cfg,
        secrets.clone(),
        Arc::new(UiSignIn::new(ui).signing_in_as(format!(
            "your own account of the MSP's tenant {}, with multi-factor authentication",
            crate::ui::Untrusted(&cfg.domain)
        ))),
        args.sign_in.auth,
        // No saved sign-in (or no keyring): sign in now, for this process.
        true,
    ))?;
    let endpoints = partner.endpoints().clone();
    let scale = crate::config::retry_scale();
    let gate = Arc::new(ThrottleGate::new());
    let msp_graph = GraphClient::new(
        http.clone(),
        endpoints.clone(),
        partner.msp_graph(),
        partner.graph_scopes(),
        RetryPolicy::default().scaled(scale),
        RequestMeter::new(),
    )
    .with_throttle_gate(gate.clone());
    let customers = {
        let _s = ui.spinner("Reading your GDAP relationships and groups");
        rt.block_on(crate::partner::customers::survey(
            &msp_graph,
            args.skip_exchange,
        ))?
    };
    let (targets, skipped) = batch::select(
        &customers,
        args.all
            .then_some(())
            .map_or(Some(named.as_slice()), |_| None),
        args.skip_exchange,
        time::OffsetDateTime::now_utc(),
    );
    let store = ctx.store()?;
    let jobs = usize::from(args.jobs);
    show_plan(
        ui,
        &batch::plan(&store, &targets, args.skip_exchange),
        &skipped,
        jobs,
    );
    if !targets.is_empty()
        && !args.yes
        && !ui.confirm(
            &format!(
                "Onboard {} customer{} as planned?",
                targets.len(),
                if targets.len() == 1 { "" } else { "s" }
            ),
            false,
            "--yes",
        )?
    {
        return Err(CommandError::new(
            ExitStatus::Failed,
            "nothing was changed: declined",
        ));
    }

    // Step 1's sessions: the customer credential (one sign-in for Graph and Exchange), each
    // connected with -DelegatedOrganization the customer. Without PowerShell, step 1 says so
    // per customer and the Graph steps still run.
    let customer: batch::CustomerCredential = {
        let p = partner.clone();
        Arc::new(move |t| p.customer(t))
    };
    let exchange: Option<Arc<dyn OpsFactory>> = if args.skip_exchange {
        None
    } else {
        match crate::session::exchange_factory_with(
            &ctx.env,
            None,
            AuthChoice::Token(Arc::new(PartnerExchange {
                customer: customer.clone(),
            })),
            TenantOutput::per_tenant(ui),
        ) {
            Ok(f) => Some(f),
            Err(ExchangeError::PwshNotFound { tried }) => {
                ui.warning(format!(
                    "PowerShell was not found (looked for {}): step 1 (unified audit logging) will not run; the other steps will",
                    tried.join(", ")
                ));
                Some(Arc::new(crate::microsoft::exchange::ops::NoPowerShell {
                    tried,
                }))
            }
            Err(e) => {
                return Err(CommandError::from(e).hint(
                    "Or leave out step 1 with --skip-exchange and turn on audit logging by hand.",
                ));
            }
        }
    };
    // Step 6 as in `tenant add`: a configured portal that cannot be used stops the run here.
    let portal = match ctx.portal_url()?.0 {
        Some(_) if args.no_portal => None,
        Some(url) => {
            let api = ctx.portal(secrets.as_ref()).map_err(|e| {
                e.hint("Or pass --no-portal to onboard without it now, then `hal-onboard portal submit --all`.")
            })?;
            Some((Arc::new(api) as Arc<dyn crate::portal::PortalApi>, url))
        }
        None => None,
    };
    let table = Arc::new(BatchTable::new(ui));
    let deps = Deps {
        env: ctx.env.clone(),
        http: http.clone(),
        home: ctx.home.clone(),
        store,
        secrets,
        access: Arc::new(PartnerAccess {
            center: crate::microsoft::partner_center::PartnerCenter::new(
                http,
                ctx.env.partner_center_url.clone(),
                partner.partner_center(),
            ),
            endpoints,
            client_id: cfg.client_id.clone(),
            display_name: crate::partner::PARTNER_APP_NAME.into(),
            policy: crate::partner::consent::ConsentPolicy::from_env(),
            customer,
        }),
        exchange,
        portal,
        gate,
        observer: table.clone(),
        settings: BatchSettings {
            cloud: cfg.cloud,
            app_name: args.app_name.clone(),
            secret_months: args.secret_months,
            skip_exchange: args.skip_exchange,
            yes: args.yes,
            jobs,
        },
    };
    let stop = interrupt::requested;
    let results = rt.block_on(batch::run(&deps, targets, &stop));
    table.clear();
    let summary = batch::Summary { results, skipped };
    if summary.interrupted() || interrupt::requested() {
        return Err(CommandError::interrupted());
    }
    show_summary(ui, &summary)?;
    if summary.onboarded() + summary.waiting() > 0 {
        ui.status("");
        ui.status(crate::commands::tenant::add::DELAYS_AHEAD);
    }
    match summary.exit() {
        ExitStatus::Ok => Ok(()),
        ExitStatus::Waiting => Err(CommandError::ual_waiting()),
        status => Err(CommandError::new(
            status,
            format!(
                "not every customer was onboarded: {}",
                [
                    (summary.skipped.len(), "blocked"),
                    (summary.failed(), "failed"),
                    (summary.busy(), "busy"),
                ]
                .iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, what)| format!("{n} {what}"))
                .collect::<Vec<_>>()
                .join(", ")
            ),
        )
        .hint("Fix what each line above says, then run the same command again: finished customers are skipped quickly.")),
    }
}
