//! Step 3: the client secret.
//!
//! `addPassword` with description `hal` and the asked lifetime (24 months by default). The
//! value goes straight to the secret store (for the portal step) and is never printed; the
//! record keeps keyId, hint and expiry. A tenant policy that refuses the lifetime is explained
//! and, when the technician agrees, retried with the longest it allows. A secret whose value
//! was lost before the portal received it is replaced, never silently; the replaced one is
//! removed only after the portal has accepted the new one (never here, never the portal's).

use time::{Date, Month, OffsetDateTime};

use super::{Assessment, Step, StepCx, StepOutcome};
use crate::microsoft::graph::GraphError;
use crate::microsoft::graph::directory::NewSecret;
use crate::secrets::account;
use crate::store::{SecretRecord, StepId};
use crate::wizard::{Answer, Question, SECRET_DESCRIPTION, WizardError};

pub struct SecretStep;

/// `t` plus `months` calendar months (the day clamped to the month's length).
pub fn add_months(t: OffsetDateTime, months: u8) -> OffsetDateTime {
    let total = t.month() as i32 - 1 + months as i32;
    let year = t.year() + total / 12;
    let month = Month::try_from((total % 12 + 1) as u8).expect("1..=12");
    let day = t.day().min(month.length(year));
    t.replace_date(Date::from_calendar_date(year, month, day).expect("valid date"))
}

/// Is this the tenant's app management policy forbidding client secrets altogether (the
/// `passwordAddition` restriction)? Graph answers `CredentialTypeNotAllowedAsPerAppPolicy`,
/// "Credential type not allowed as per assigned policy '…'": no lifetime would do.
pub fn is_secrets_forbidden(e: &GraphError) -> bool {
    let code = e.code().unwrap_or_default().to_lowercase();
    let msg = e.message().unwrap_or_default().to_lowercase();
    e.status() == Some(400)
        && (code.contains("credentialtypenotallowed")
            || msg.contains("credential type not allowed"))
}

/// Is this the tenant's app management policy refusing the secret's lifetime?
pub fn is_lifetime_policy(e: &GraphError) -> bool {
    if is_secrets_forbidden(e) {
        return false;
    }
    let code = e.code().unwrap_or_default().to_lowercase();
    let msg = e.message().unwrap_or_default().to_lowercase();
    e.status() == Some(400)
        && (code.contains("lifetime")
            || code.contains("policy")
            || (msg.contains("lifetime") && (msg.contains("policy") || msg.contains("max"))))
}

/// The policy's longest lifetime in days, when the message says (`P180D`, `180 days`).
pub fn max_days_in(msg: &str) -> Option<u32> {
    let bytes: Vec<char> = msg.chars().collect();
    for (i, c) in bytes.iter().enumerate() {
        if *c == 'P' {
            let digits: String = bytes[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            if !digits.is_empty() && bytes.get(i + 1 + digits.len()) == Some(&'D') {
                return digits.parse().ok();
            }
        }
    }
    let lower = msg.to_lowercase();
    let idx = lower.find(" days")?;
    let before: String = lower[..idx]
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    before.parse().ok()
}

#[async_trait::async_trait]
impl Step for SecretStep {
    fn id(&self) -> StepId {
        StepId::Secret
    }

    fn assess(&self, cx: &StepCx<'_>) -> Assessment {
        let months = cx.settings.secret_months;
        let add = format!(
            "add a client secret {SECRET_DESCRIPTION:?} valid {months} months (its value goes to this machine's keyring, never the screen)"
        );
        let Some(app) = &cx.survey.app_by_id else {
            return Assessment::ToDo(vec![add]);
        };
        let Some(rec) = &cx.record.secret else {
            let portal_key = cx.record.portal.secret_key_id.as_deref();
            let unusable = app
                .password_credentials
                .iter()
                .filter(|p| {
                    p.display_name.as_deref() == Some(SECRET_DESCRIPTION)
                        && p.key_id.as_deref() != portal_key
                })
                .count();
            let mut todo = vec![add];
            if unusable > 0 {
                todo.push(format!(
                    "keep {unusable} older secret(s) named {SECRET_DESCRIPTION:?} whose value this machine does not hold until the MSP portal has accepted the new one (then they are removed)"
                ));
            }
            return Assessment::ToDo(todo);
        };
        let on_app = app.password_credentials.iter().any(|p| {
            p.key_id
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case(&rec.key_id))
        });
        if !on_app {
            return Assessment::ToDo(vec![format!(
                "{add}: the recorded secret (hint {}…) is no longer on the app",
                rec.hint
            )]);
        }
        let portal_has_it = cx.record.portal.secret_key_id.as_deref() == Some(&rec.key_id);
        if !cx.secret_present && !portal_has_it {
            return Assessment::ToDo(vec![
                format!(
                    "{add}: the value of the current one is no longer in this machine's keyring and the portal never received it"
                ),
                format!(
                    "remove the unusable secret (hint {}…) once the MSP portal has accepted the new one",
                    rec.hint
                ),
            ]);
        }
        Assessment::Done
    }

    async fn run(&self, cx: &mut StepCx<'_>) -> Result<StepOutcome, WizardError> {
        let app = cx
            .survey
            .app_by_id
            .clone()
            .expect("the app step ran before the secret step");
        let tenant = cx.record.tenant_id;
        let now = OffsetDateTime::now_utc();
        let asked = cx.settings.secret_months;
        let mut end = add_months(now, asked);
        let mut shortened = None;
        // Lifetimes still to try when the policy's limit is unknown (longest first).
        let mut stepping: Option<Vec<u8>> = None;
        let mut last_months = asked;
        let mut lost = 0u32;
        let new: NewSecret = loop {
            match cx.dir.add_password(&app.id, SECRET_DESCRIPTION, end).await {
                Ok(s) => break s,
                Err(e) if is_secrets_forbidden(&e) => {
                    return Err(WizardError::SecretsForbidden { source: e });
                }
                Err(e) if e.may_have_landed() && lost < 3 => {
                    lost += 1;
                    remove_orphans(cx, &app, &e).await?;
                }
                Err(e) if is_lifetime_policy(&e) && stepping.is_some() => {
                    match stepping
                        .as_mut()
                        .and_then(|s| (!s.is_empty()).then(|| s.remove(0)))
                    {
                        Some(m) => {
                            end = add_months(now, m);
                            last_months = m;
                        }
                        None => {
                            return Err(WizardError::SecretPolicy {
                                asked_months: asked,
                                max_days: None,
                                source: e,
                            });
                        }
                    }
                }
                Err(e) if is_lifetime_policy(&e) && shortened.is_none() => {
                    let mut max = max_days_in(e.message().unwrap_or_default());
                    if max.is_none() {
                        // The refusal does not say the limit; the tenant's policy does (if we
                        // may read it).
                        max = cx.dir.max_secret_lifetime_days().await.ok().flatten();
                    }
                    let Some(max_days) = max else {
                        let mut steps: Vec<u8> =
                            [12u8, 6, 3, 1].into_iter().filter(|m| *m < asked).collect();
                        let answer = if steps.is_empty() {
                            Answer::No
                        } else {
                            cx.progress.ask(&Question::ShorterSecretUnknown {
                                asked_months: asked,
                                steps: steps.clone(),
                            })
                        };
                        if answer != Answer::Yes {
                            return Err(WizardError::SecretPolicy {
                                asked_months: asked,
                                max_days: None,
                                source: e,
                            });
                        }
                        let m = steps.remove(0);
                        end = add_months(now, m);
                        last_months = m;
                        stepping = Some(steps);
                        continue;
                    };
                    match cx.progress.ask(&Question::ShorterSecret {
                        asked_months: asked,
                        max_days,
                    }) {
                        Answer::Yes => {
                            // An hour under the limit, so clocks a little apart still agree.
                            end = now + time::Duration::days(max_days as i64)
                                - time::Duration::hours(1);
                            shortened = Some(max_days);
                        }
                        Answer::No | Answer::CannotAsk => {
                            return Err(WizardError::SecretPolicy {
                                asked_months: asked,
                                max_days: Some(max_days),
                                source: e,
                            });
                        }
                    }
                }
                Err(e) => return Err(WizardError::graph(StepId::Secret)(e)),
            }
        };

        // The value goes to the store before anything records it; if that fails, the secret
        // is removed again so no credential exists that nobody holds.
        let value = new.text.clone();
        let stored = cx
            .secret_op(move |s| s.set(&account::client_secret(tenant), value.expose()))
            .await;
        if let Err(e) = stored {
            let _ = cx.dir.remove_password(&app.id, &new.key_id).await;
            return Err(e);
        }
        cx.secret_present = true;

        // Record the new secret at once, before removing any old one: if a removal fails or the
        // run stops, the saved record still names the secret whose value is kept.
        cx.record.secret = Some(SecretRecord {
            key_id: new.key_id.clone(),
            hint: new.hint.clone(),
            created_at: new.start,
            expires_at: new.end,
        });
        // A new secret has to be proven again.
        *cx.record.step_mut(StepId::Verify) = Default::default();

        // Nothing is removed here: an older secret (even one whose value no one here holds)
        // may be the one Hal uses through another machine's portal submission. The secrets this
        // one replaces go only once the portal has accepted it (the engine, after step 6).
        let mut keep = app.password_credentials.clone();
        keep.push(crate::microsoft::graph::model::PasswordCredential {
            key_id: Some(new.key_id.clone()),
            display_name: Some(SECRET_DESCRIPTION.into()),
            hint: Some(new.hint.clone()),
            end_date_time: Some(new.end),
            start_date_time: Some(new.start),
            secret_text: None,
        });
        if let Some(a) = cx.survey.app_by_id.as_mut() {
            a.password_credentials = keep;
        }
        let mut summary = format!(
            "added client secret {SECRET_DESCRIPTION:?} (hint {}…, expires {}), kept in {}",
            new.hint,
            new.end.date(),
            if cx.secrets.is_persistent() {
                "the OS keyring"
            } else {
                "memory for this run only"
            }
        );
        if let Some(d) = shortened {
            summary.push_str(&format!(
                "; {d} days, the longest the tenant's policy allows"
            ));
        } else if last_months != asked {
            summary.push_str(&format!(
                "; {last_months} months, the longest the tenant's policy accepted"
            ));
        }
        Ok(StepOutcome::Done(summary))
    }
}

/// addPassword's answer was lost (the connection dropped, a 5xx, a concurrency violation), and
/// with it the only copy of the value: a secret it made cannot be used by anyone. Such a secret
/// is recognised as one named ours on the app now that was not there when this step began (the
/// tenant's lock keeps other runs of ours away), and is never the portal's or the recorded
/// one; it is removed, so the retry leaves one secret, not two.
async fn remove_orphans(
    cx: &mut StepCx<'_>,
    before: &crate::microsoft::graph::model::Application,
    cause: &GraphError,
) -> Result<(), WizardError> {
    let err = WizardError::graph(StepId::Secret);
    let same = |a: Option<&str>, b: &str| a.is_some_and(|a| a.eq_ignore_ascii_case(b));
    let keep: Vec<String> = before
        .password_credentials
        .iter()
        .filter_map(|p| p.key_id.clone())
        .chain(cx.record.portal.secret_key_id.clone())
        .chain(cx.record.secret.as_ref().map(|s| s.key_id.clone()))
        .collect();
    // Patiently: a GET can reach a replica that does not see a new app yet.
    let Some(now) = cx.dir.application(&before.id, 6).await.map_err(err)? else {
        return Ok(());
    };
    for p in &now.password_credentials {
        let Some(k) = p.key_id.as_deref() else {
            continue;
        };
        if p.display_name.as_deref() != Some(SECRET_DESCRIPTION)
            || keep.iter().any(|x| same(Some(k), x))
        {
            continue;
        }
        cx.dir
            .remove_password(&before.id, k)
            .await
            .map_err(WizardError::graph(StepId::Secret))?;
        cx.progress.event(crate::wizard::Event::Info(format!(
            "Microsoft's answer to adding the secret was lost ({}), and with it the secret's value: the secret it made (keyId {k}) was removed and a new one is added",
            cause.to_string().lines().next().unwrap_or_default()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn months_are_calendar_months() {
        assert_eq!(
            add_months(datetime!(2026-01-31 10:00 UTC), 1),
            datetime!(2026-02-28 10:00 UTC)
        );
        assert_eq!(
            add_months(datetime!(2026-11-25 00:00 UTC), 24),
            datetime!(2028-11-25 00:00 UTC)
        );
    }

    #[test]
    fn policy_limits_are_read_from_messages() {
        assert_eq!(
            max_days_in("maxLifetime is P180D for this tenant"),
            Some(180)
        );
        assert_eq!(max_days_in("at most 90 days allowed"), Some(90));
        assert_eq!(max_days_in("no number here"), None);
    }
}
