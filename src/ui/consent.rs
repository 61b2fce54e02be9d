//! Shows the partner app's consent in a customer (partner mode): the admin consent link to
//! open, and the wait until the consent takes effect.

use std::time::Duration;

use url::Url;
use uuid::Uuid;

use super::Ui;
use super::sanitize::Untrusted;
use crate::microsoft::partner_center::ConsentOutcome;
use crate::partner::consent::{ConsentObserver, ConsentProgress, admin_consent_sentence};

/// Prints on the Ui; `name` is how the customer is called in the run (its domain).
pub struct UiConsent {
    ui: Ui,
    name: String,
    admin_budget: Duration,
}

impl UiConsent {
    pub fn new(ui: &Ui, name: &str, admin_budget: Duration) -> UiConsent {
        UiConsent {
            ui: ui.clone(),
            name: name.to_string(),
            admin_budget,
        }
    }
}

impl ConsentObserver for UiConsent {
    fn partner_center(&self, _customer: Uuid, outcome: ConsentOutcome) {
        let what = match outcome {
            ConsentOutcome::Created => "consented the partner app through Partner Center",
            ConsentOutcome::AlreadyPresent => "the partner app's consent is already there",
        };
        self.ui
            .status(self.ui.dim(format!("{}: {what}", self.name)));
    }

    fn admin_consent_needed(&self, _customer: Uuid, url: &Url, why: &str) {
        self.ui
            .warning(format!("{}: {}", self.name, Untrusted(why)));
        self.ui
            .status(admin_consent_sentence(&self.name, url, self.admin_budget));
    }

    fn waiting(&self, _customer: Uuid, p: &ConsentProgress) {
        // About once a minute at the default interval, not every try.
        if p.attempt == 2 || p.attempt.is_multiple_of(6) {
            self.ui
                .status(self.ui.dim(format!("{}: {}", self.name, p.sentence())));
        }
    }
}
