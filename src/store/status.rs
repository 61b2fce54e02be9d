//! Where a tenant stands, derived from its record: never stored, so it cannot go stale.
//!
//! One pure function, [`TenantStatus::of`], takes a record and "now" and answers what `list`
//! shows and what the wizard asks before it resumes: each step's effective status, the overall
//! state, what is still to do, the one next command to run, and the days until the secret
//! expires. Nothing here reads the clock, the terminal or the disk.

use time::OffsetDateTime;

use super::model::{PortalState, StepId, StepStatus, TenantRecord, UalState, Via};

/// A secret that expires within this many days should be rotated now (`list` highlights it).
pub const ROTATE_WITHIN_DAYS: i64 = 60;

/// The program name every suggested command starts with.
const PROG: &str = "hal-onboard";

/// Where a tenant stands overall, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Overall {
    /// The client secret has expired: Hal cannot read this tenant's logs.
    Expired,
    /// A step failed.
    Failed,
    /// A step has not run yet (or the portal holds an older secret).
    Incomplete,
    /// Only waiting on Microsoft (UAL propagation).
    Waiting,
    /// Everything done, but the secret expires within [`ROTATE_WITHIN_DAYS`].
    Expiring,
    /// Nothing to do.
    Done,
}

impl Overall {
    /// The stable name used in `list --json` (`state`).
    pub fn as_str(self) -> &'static str {
        match self {
            Overall::Expired => "expired",
            Overall::Failed => "failed",
            Overall::Incomplete => "incomplete",
            Overall::Waiting => "waiting",
            Overall::Expiring => "expiring",
            Overall::Done => "done",
        }
    }
}

/// The commands a tenant's next action can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Run (resume) the wizard: it skips what is done.
    TenantAdd,
    /// Retry enabling UAL after Microsoft's propagation delay.
    UalRetry,
    /// Make a new client secret (and send it to the portal).
    SecretRotate,
    /// Send the credentials to the MSP portal.
    PortalSubmit,
}

impl Action {
    /// The subcommand, e.g. `ual retry`.
    pub fn verb(self) -> &'static str {
        match self {
            Action::TenantAdd => "tenant add",
            Action::UalRetry => "ual retry",
            Action::SecretRotate => "secret rotate",
            Action::PortalSubmit => "portal submit",
        }
    }

    /// The exact command line for the tenant with this domain.
    pub fn command(self, domain: &str) -> String {
        format!("{PROG} {} {domain}", self.verb())
    }

    /// The exact command line for `rec`: a partner-onboarded tenant resumes through partner
    /// mode (`tenant add --partner`), never by asking for its admin. The other commands find
    /// the way in from the record themselves.
    pub fn command_for(self, rec: &TenantRecord) -> String {
        match (self, rec.via) {
            (Action::TenantAdd, Via::Partner) => {
                format!("{PROG} {} --partner {}", self.verb(), rec.primary_domain)
            }
            _ => self.command(&rec.primary_domain),
        }
    }
}

/// The one thing to do next for a tenant, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextAction {
    pub action: Action,
    /// The exact command line, e.g. `hal-onboard ual retry contoso.onmicrosoft.com`.
    pub command: String,
    /// One short sentence for the technician.
    pub reason: String,
}

/// A tenant's derived status at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantStatus {
    pub overall: Overall,
    /// Each step's effective status, in [`StepId::ALL`] order (see [`TenantStatus::step`]).
    pub steps: [StepStatus; 6],
    /// The steps still to do, in the order the wizard runs them.
    pub pending: Vec<StepId>,
    /// `None` when there is nothing to do.
    pub next: Option<NextAction>,
    /// Whole days until the client secret expires (negative once expired; 0 on its last day).
    pub days_left: Option<i64>,
    /// The portal was sent a secret other than the current one (a rotation since), or it holds
    /// the current one but was last told another status (UAL verified since).
    pub portal_stale: bool,
}

impl TenantStatus {
    /// Derives the status of `rec` at `now`.
    pub fn of(rec: &TenantRecord, now: OffsetDateTime) -> TenantStatus {
        let portal_stale = portal_is_stale(rec) || portal_status_is_stale(rec);
        let steps = StepId::ALL.map(|id| effective(rec, id, portal_stale));
        let st = |id: StepId| steps[id as usize];
        let pending: Vec<StepId> = StepId::ALL
            .into_iter()
            .filter(|&id| !matches!(st(id), StepStatus::Done | StepStatus::Skipped))
            .collect();
        let days_left = rec.secret.as_ref().map(|s| days_until(s.expires_at, now));

        let expired = days_left.is_some_and(|d| d < 0);
        let expiring = days_left.is_some_and(|d| d < ROTATE_WITHIN_DAYS);
        let any_failed = steps.contains(&StepStatus::Failed);
        let only_waiting = pending.iter().all(|&id| st(id) == StepStatus::Waiting);
        let overall = if expired {
            Overall::Expired
        } else if any_failed {
            Overall::Failed
        } else if !only_waiting {
            Overall::Incomplete
        } else if !pending.is_empty() {
            Overall::Waiting
        } else if expiring {
            Overall::Expiring
        } else {
            Overall::Done
        };

        let next =
            next_action(rec, &steps, days_left, portal_stale, now).map(|(action, reason)| {
                NextAction {
                    action,
                    command: action.command_for(rec),
                    reason,
                }
            });

        TenantStatus {
            overall,
            steps,
            pending,
            next,
            days_left,
            portal_stale,
        }
    }

    /// The effective status of one step.
    pub fn step(&self, id: StepId) -> StepStatus {
        self.steps[id as usize]
    }
}

/// Whole days from `now` until `at`, rounded down: 0 on the last day, -1 the day after.
pub fn days_until(at: OffsetDateTime, now: OffsetDateTime) -> i64 {
    (at - now).whole_seconds().div_euclid(86_400)
}

/// The portal holds a secret other than the current one.
/// The portal holds the tenant but was last told another UAL status or licence than the
/// record's (sent by the next `tenant add`, `ual retry` or `portal submit`).
fn portal_status_is_stale(rec: &TenantRecord) -> bool {
    let Some(told) = &rec.portal.told else {
        return false;
    };
    let ual = if rec.ual.state == UalState::Enabled {
        "enabled"
    } else {
        "waiting"
    };
    let licence = rec.license.map(|l| l.as_str()).unwrap_or("none");
    rec.portal.state == PortalState::Submitted
        && (told.ual_status != ual || told.entra_license != licence)
}

fn portal_is_stale(rec: &TenantRecord) -> bool {
    let sent = rec.portal.state == PortalState::Submitted || rec.steps.portal.is_done();
    match (&rec.portal.secret_key_id, &rec.secret) {
        (Some(sent_key), Some(cur)) => sent && *sent_key != cur.key_id,
        _ => false,
    }
}

/// What a step's status really is, reconciling the step log with the records it produced.
fn effective(rec: &TenantRecord, id: StepId, portal_stale: bool) -> StepStatus {
    let step = rec.step(id);
    match id {
        StepId::Exchange => {
            // What we last learnt about UAL itself wins over the step log.
            match (step.status, rec.ual.state) {
                (StepStatus::Skipped, _) => StepStatus::Skipped,
                (_, UalState::Enabled) => StepStatus::Done,
                (_, UalState::WaitingPropagation) => StepStatus::Waiting,
                (_, UalState::Failed) => StepStatus::Failed,
                (status, UalState::Unknown) => status,
            }
        }
        // A "done" step whose record is missing did not really finish: the wizard redoes it.
        StepId::App if step.is_done() && rec.app.is_none() => StepStatus::NotStarted,
        StepId::Secret if step.is_done() && rec.secret.is_none() => StepStatus::NotStarted,
        StepId::Portal => {
            if portal_stale {
                StepStatus::NotStarted
            } else if rec.portal.state == PortalState::Submitted || step.is_done() {
                StepStatus::Done
            } else if rec.portal.state == PortalState::Failed || step.status == StepStatus::Failed {
                StepStatus::Failed
            } else {
                StepStatus::NotStarted
            }
        }
        // Only UAL waits on Microsoft; any other step left "waiting" is simply unfinished.
        _ if step.status == StepStatus::Waiting => StepStatus::NotStarted,
        _ => step.status,
    }
}

fn next_action(
    rec: &TenantRecord,
    steps: &[StepStatus; 6],
    days_left: Option<i64>,
    portal_stale: bool,
    now: OffsetDateTime,
) -> Option<(Action, String)> {
    let st = |id: StepId| steps[id as usize];
    // 1. An expired secret stops everything: Hal cannot sign in.
    if let Some(d) = days_left.filter(|&d| d < 0) {
        return Some((
            Action::SecretRotate,
            format!("the client secret expired {}", ago_days(-d)),
        ));
    }
    // 2. An unfinished or failed setup step: resume the wizard.
    for id in [
        StepId::Exchange,
        StepId::App,
        StepId::Secret,
        StepId::Consent,
        StepId::Verify,
    ] {
        match st(id) {
            StepStatus::Failed => {
                let why = rec
                    .step(id)
                    .last_error
                    .as_deref()
                    .map(one_line)
                    .filter(|e| !e.is_empty());
                let reason = match why {
                    Some(e) => format!("{} failed: {e}", label(id)),
                    None => format!("{} failed", label(id)),
                };
                return Some((Action::TenantAdd, reason));
            }
            StepStatus::NotStarted => {
                return Some((Action::TenantAdd, format!("{} not done yet", label(id))));
            }
            StepStatus::Done | StepStatus::Skipped | StepStatus::Waiting => {}
        }
    }
    // 3. UAL waiting on Microsoft's propagation.
    if st(StepId::Exchange) == StepStatus::Waiting {
        let since = rec.ual.hydrated_at.or(rec.steps.exchange.at);
        let reason = match since {
            Some(t) if t <= now => {
                format!("UAL: waiting on Microsoft for {}", human_duration(now - t))
            }
            _ => "UAL: waiting on Microsoft".into(),
        };
        return Some((Action::UalRetry, reason));
    }
    // 4. The secret expires soon.
    if let Some(d) = days_left.filter(|&d| d < ROTATE_WITHIN_DAYS) {
        let when = match d {
            0 => "today".to_string(),
            1 => "tomorrow".to_string(),
            d => format!("in {d} days"),
        };
        return Some((
            Action::SecretRotate,
            format!("the client secret expires {when}"),
        ));
    }
    // 5. Only the portal is missing.
    match st(StepId::Portal) {
        StepStatus::Done | StepStatus::Skipped => None,
        // A rotation the portal did not finish: `secret rotate` resumes it (sends the new
        // secret, then removes the old one), where `portal submit` would leave the old one.
        _ if portal_stale && portal_is_stale(rec) => Some((
            Action::SecretRotate,
            "a secret rotation is unfinished: the portal holds an older secret".into(),
        )),
        _ if portal_stale => Some((
            Action::PortalSubmit,
            "the portal was told an older status (UAL or licence) and has not been updated".into(),
        )),
        StepStatus::Failed => {
            let why = rec
                .steps
                .portal
                .last_error
                .as_deref()
                .map(one_line)
                .filter(|e| !e.is_empty());
            Some((
                Action::PortalSubmit,
                match why {
                    Some(e) => format!("sending to the portal failed: {e}"),
                    None => "sending to the portal failed".into(),
                },
            ))
        }
        _ => Some((
            Action::PortalSubmit,
            "the credentials are not in the portal yet".into(),
        )),
    }
}

fn ago_days(d: i64) -> String {
    match d {
        0 => "today".into(),
        1 => "yesterday".into(),
        d => format!("{d} days ago"),
    }
}

/// "2 d", "5 h", "12 min".
pub fn human_duration(d: time::Duration) -> String {
    let mins = d.whole_minutes().max(0);
    if mins < 60 {
        format!("{mins} min")
    } else if mins < 48 * 60 {
        format!("{} h", mins / 60)
    } else {
        format!("{} d", mins / (24 * 60))
    }
}

/// The first line of an error, without control characters, at most 120 characters.
fn one_line(s: &str) -> String {
    let line = s
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let mut out: String = line.chars().filter(|c| !c.is_control()).take(120).collect();
    if line.chars().count() > 120 {
        out.push('…');
    }
    out
}

/// A step's name inside a sentence (shorter than [`StepId::title`]).
fn label(id: StepId) -> &'static str {
    match id {
        StepId::Exchange => "UAL",
        StepId::App => "app registration",
        StepId::Secret => "client secret",
        StepId::Consent => "admin consent",
        StepId::Verify => "verification",
        StepId::Portal => "portal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Cloud;
    use crate::store::model::{AppRecord, SecretRecord};
    use time::Duration;
    use time::macros::datetime;
    use uuid::Uuid;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
    const DOMAIN: &str = "contoso.onmicrosoft.com";

    fn blank() -> TenantRecord {
        let mut r = TenantRecord::new(Uuid::nil(), DOMAIN, "Contoso", Cloud::Global);
        r.created_at = NOW - Duration::days(1);
        r.updated_at = r.created_at;
        r
    }

    fn done_step(r: &mut TenantRecord, id: StepId) {
        let s = r.step_mut(id);
        s.status = StepStatus::Done;
        s.at = Some(NOW - Duration::days(1));
        s.attempts = 1;
    }

    /// A fully onboarded tenant whose secret expires in `days` days (and a bit).
    fn complete(days: i64) -> TenantRecord {
        let mut r = blank();
        for id in StepId::ALL {
            done_step(&mut r, id);
        }
        r.ual.state = UalState::Enabled;
        r.app = Some(AppRecord {
            object_id: "obj".into(),
            app_id: "app".into(),
            display_name: "Hal".into(),
            service_principal_id: Some("sp".into()),
        });
        r.secret = Some(SecretRecord {
            key_id: "key-1".into(),
            hint: "abc".into(),
            created_at: NOW - Duration::days(10),
            expires_at: NOW + Duration::days(days) + Duration::hours(1),
        });
        r.portal.state = PortalState::Submitted;
        r.portal.submitted_at = Some(NOW - Duration::days(1));
        r.portal.secret_key_id = Some("key-1".into());
        r
    }

    fn next(r: &TenantRecord) -> Option<(Action, String)> {
        TenantStatus::of(r, NOW).next.map(|n| (n.action, n.command))
    }

    #[test]
    fn a_complete_tenant_is_done_with_nothing_to_do() {
        let s = TenantStatus::of(&complete(700), NOW);
        assert_eq!(s.overall, Overall::Done);
        assert!(s.pending.is_empty());
        assert_eq!(s.next, None);
        assert_eq!(s.days_left, Some(700));
    }

    #[test]
    fn a_new_tenant_resumes_the_wizard() {
        let s = TenantStatus::of(&blank(), NOW);
        assert_eq!(s.overall, Overall::Incomplete);
        assert_eq!(s.pending, StepId::ALL.to_vec());
        let n = s.next.unwrap();
        assert_eq!(n.action, Action::TenantAdd);
        assert_eq!(n.command, "hal-onboard tenant add contoso.onmicrosoft.com");
        assert_eq!(n.reason, "UAL not done yet");
        assert_eq!(s.days_left, None);
    }

    #[test]
    fn a_partner_tenant_resumes_through_partner_mode() {
        let mut r = blank();
        r.via = Via::Partner;
        let n = TenantStatus::of(&r, NOW).next.unwrap();
        assert_eq!(
            n.command,
            "hal-onboard tenant add --partner contoso.onmicrosoft.com"
        );
        // The follow-up commands read `via` themselves: their command lines do not change.
        let mut r = complete(700);
        r.via = Via::Partner;
        r.ual.state = UalState::WaitingPropagation;
        r.steps.exchange.status = StepStatus::Waiting;
        assert_eq!(
            next(&r).unwrap().1,
            "hal-onboard ual retry contoso.onmicrosoft.com"
        );
    }

    #[test]
    fn ual_waiting_alone_suggests_ual_retry() {
        let mut r = complete(700);
        r.ual.state = UalState::WaitingPropagation;
        r.ual.hydrated_at = Some(NOW - Duration::hours(3));
        r.steps.exchange.status = StepStatus::Waiting;
        let s = TenantStatus::of(&r, NOW);
        assert_eq!(s.overall, Overall::Waiting);
        assert_eq!(s.pending, vec![StepId::Exchange]);
        let n = s.next.unwrap();
        assert_eq!(n.command, "hal-onboard ual retry contoso.onmicrosoft.com");
        assert!(
            n.reason == "UAL: waiting on Microsoft for 3 h",
            "{}",
            n.reason
        );
    }

    #[test]
    fn an_unfinished_step_comes_before_ual_waiting() {
        let mut r = complete(700);
        r.ual.state = UalState::WaitingPropagation;
        r.steps.exchange.status = StepStatus::Waiting;
        r.steps.consent = Default::default();
        let s = TenantStatus::of(&r, NOW);
        assert_eq!(s.overall, Overall::Incomplete);
        assert_eq!(s.pending, vec![StepId::Exchange, StepId::Consent]);
        assert_eq!(s.next.unwrap().action, Action::TenantAdd);
    }

    #[test]
    fn a_failed_step_names_its_error_on_one_line() {
        let mut r = complete(700);
        r.steps.consent.status = StepStatus::Failed;
        r.steps.consent.last_error = Some("Graph said 403\nsecond line".into());
        let s = TenantStatus::of(&r, NOW);
        assert_eq!(s.overall, Overall::Failed);
        let n = s.next.unwrap();
        assert_eq!(n.action, Action::TenantAdd);
        assert_eq!(n.reason, "admin consent failed: Graph said 403");
    }

    #[test]
    fn failed_ual_resumes_the_wizard() {
        let mut r = complete(700);
        r.ual.state = UalState::Failed;
        r.steps.exchange.status = StepStatus::Failed;
        assert_eq!(TenantStatus::of(&r, NOW).overall, Overall::Failed);
        assert_eq!(next(&r).unwrap().0, Action::TenantAdd);
    }

    #[test]
    fn skipped_exchange_counts_as_done() {
        let mut r = complete(700);
        r.ual.state = UalState::Unknown;
        r.steps.exchange.status = StepStatus::Skipped;
        let s = TenantStatus::of(&r, NOW);
        assert_eq!(s.overall, Overall::Done);
        assert_eq!(s.step(StepId::Exchange), StepStatus::Skipped);
    }

    #[test]
    fn secret_expiry_thresholds() {
        let s = TenantStatus::of(&complete(60), NOW);
        assert_eq!((s.overall, s.next), (Overall::Done, None));

        let s = TenantStatus::of(&complete(59), NOW);
        assert_eq!(s.overall, Overall::Expiring);
        let n = s.next.unwrap();
        assert_eq!(
            n.command,
            "hal-onboard secret rotate contoso.onmicrosoft.com"
        );
        assert_eq!(n.reason, "the client secret expires in 59 days");

        let s = TenantStatus::of(&complete(0), NOW);
        assert_eq!(s.days_left, Some(0));
        assert_eq!(s.next.unwrap().reason, "the client secret expires today");

        let mut r = complete(0);
        r.secret.as_mut().unwrap().expires_at = NOW - Duration::hours(1);
        let s = TenantStatus::of(&r, NOW);
        assert_eq!(s.days_left, Some(-1));
        assert_eq!(s.overall, Overall::Expired);
        assert_eq!(
            s.next.unwrap().reason,
            "the client secret expired yesterday"
        );
    }

    #[test]
    fn an_expired_secret_comes_first_even_with_other_work() {
        let mut r = complete(0);
        r.secret.as_mut().unwrap().expires_at = NOW - Duration::days(10);
        r.ual.state = UalState::WaitingPropagation;
        r.steps.portal = Default::default();
        r.portal = Default::default();
        assert_eq!(TenantStatus::of(&r, NOW).overall, Overall::Expired);
        assert_eq!(next(&r).unwrap().0, Action::SecretRotate);
    }

    #[test]
    fn ual_waiting_comes_before_an_expiring_secret() {
        let mut r = complete(30);
        r.ual.state = UalState::WaitingPropagation;
        assert_eq!(next(&r).unwrap().0, Action::UalRetry);
    }

    #[test]
    fn only_the_portal_missing_suggests_portal_submit() {
        let mut r = complete(700);
        r.portal = Default::default();
        r.steps.portal = Default::default();
        let s = TenantStatus::of(&r, NOW);
        assert_eq!(s.overall, Overall::Incomplete);
        assert_eq!(s.pending, vec![StepId::Portal]);
        assert_eq!(
            s.next.unwrap().command,
            "hal-onboard portal submit contoso.onmicrosoft.com"
        );
    }

    #[test]
    fn a_portal_holding_an_older_secret_is_resubmitted() {
        let mut r = complete(700);
        r.portal.secret_key_id = Some("key-0".into());
        let s = TenantStatus::of(&r, NOW);
        assert!(s.portal_stale);
        assert_eq!(s.pending, vec![StepId::Portal]);
        let n = s.next.unwrap();
        assert_eq!(n.action, Action::SecretRotate);
        assert_eq!(
            n.reason,
            "a secret rotation is unfinished: the portal holds an older secret"
        );
    }

    #[test]
    fn a_failed_portal_submission_says_why() {
        let mut r = complete(700);
        r.portal.state = PortalState::Failed;
        r.steps.portal.status = StepStatus::Failed;
        r.steps.portal.last_error = Some("HTTP 500".into());
        let s = TenantStatus::of(&r, NOW);
        assert_eq!(s.overall, Overall::Failed);
        let n = s.next.unwrap();
        assert_eq!(n.action, Action::PortalSubmit);
        assert_eq!(n.reason, "sending to the portal failed: HTTP 500");
    }

    #[test]
    fn a_done_step_without_its_record_is_redone() {
        let mut r = complete(700);
        r.app = None;
        let s = TenantStatus::of(&r, NOW);
        assert_eq!(s.step(StepId::App), StepStatus::NotStarted);
        assert_eq!(s.next.unwrap().action, Action::TenantAdd);
    }

    #[test]
    fn done_means_no_next_action_and_back() {
        // The invariant list and the wizard rely on, over a spread of states.
        let mut cases = vec![blank(), complete(700), complete(10), complete(-5)];
        let mut r = complete(700);
        r.ual.state = UalState::WaitingPropagation;
        cases.push(r);
        for r in &cases {
            let s = TenantStatus::of(r, NOW);
            assert_eq!(s.overall == Overall::Done, s.next.is_none(), "{s:?}");
            assert_eq!(
                s.overall == Overall::Done,
                s.pending.is_empty() && s.days_left >= Some(ROTATE_WITHIN_DAYS),
                "{s:?}"
            );
        }
    }

    #[test]
    fn days_round_down() {
        assert_eq!(days_until(NOW + Duration::hours(23), NOW), 0);
        assert_eq!(days_until(NOW + Duration::hours(25), NOW), 1);
        assert_eq!(days_until(NOW - Duration::minutes(1), NOW), -1);
        assert_eq!(days_until(NOW - Duration::hours(25), NOW), -2);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::minutes(12)), "12 min");
        assert_eq!(human_duration(Duration::hours(5)), "5 h");
        assert_eq!(human_duration(Duration::days(3)), "3 d");
    }
}
