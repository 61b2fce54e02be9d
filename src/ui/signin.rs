//! The sign-in on the terminal: the device code and URL shown prominently on stderr, a
//! browser opened when one is obviously there, a spinner while waiting.

use std::sync::Mutex;

use url::Url;

use super::{Spinner, Ui, Untrusted};
use crate::microsoft::signin::{DeviceCodePrompt, SignInObserver};

/// Shows the sign-in: the code and URL prominently on stderr, a spinner while waiting.
pub struct UiSignIn {
    ui: Ui,
    spinner: Mutex<Option<Spinner>>,
}

impl UiSignIn {
    pub fn new(ui: &Ui) -> UiSignIn {
        UiSignIn {
            ui: ui.clone(),
            spinner: Mutex::new(None),
        }
    }
}

impl SignInObserver for UiSignIn {
    fn device_code(&self, p: &DeviceCodePrompt) {
        let ui = &self.ui;
        ui.status("");
        ui.status(format!(
            "To sign in to the customer's tenant, open {} and enter the code {}",
            ui.bold(Untrusted(&p.verification_uri)),
            ui.bold(ui.yellow(Untrusted(&p.user_code)))
        ));
        ui.status(ui.dim(format!(
            "Sign in as a Global Administrator of that tenant. The code expires at {} UTC.",
            p.expires_at.time().truncate_to_second()
        )));
        ui.status("");
        *self.spinner.lock().unwrap() = Some(ui.spinner("Waiting for you to sign in"));
    }

    fn browser_url(&self, url: &Url) -> bool {
        let ui = &self.ui;
        ui.status("To sign in, open this address in a browser on this machine:");
        ui.status(format!("  {}", ui.bold(url.as_str())));
        let opened = browser_available() && open_browser(url);
        if opened {
            ui.status(ui.dim("(a browser was opened for you)"));
        }
        *self.spinner.lock().unwrap() = Some(ui.spinner("Waiting for the browser sign-in"));
        opened
    }

    fn signed_in(&self, user: Option<&str>) {
        if let Some(s) = self.spinner.lock().unwrap().take() {
            s.finish();
        }
        self.ui.success(format!(
            "Signed in{}",
            user.map(|u| format!(" as {}", Untrusted(u)))
                .unwrap_or_default()
        ));
    }
}

/// A browser is obviously there: a desktop session that is not over SSH.
fn browser_available() -> bool {
    if std::env::var_os("SSH_CONNECTION").is_some() || std::env::var_os("SSH_TTY").is_some() {
        return false;
    }
    if cfg!(target_os = "macos") || cfg!(windows) {
        return true;
    }
    std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
}

fn open_browser(url: &Url) -> bool {
    let (cmd, pre): (&str, &[&str]) = if cfg!(target_os = "macos") {
        ("open", &[])
    } else if cfg!(windows) {
        ("rundll32", &["url.dll,FileProtocolHandler"])
    } else {
        ("xdg-open", &[])
    };
    crate::secrets::child_env(&mut std::process::Command::new(cmd))
        .args(pre)
        .arg(url.as_str())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}

/// Shows an Exchange Online sign-in's device code (`ual retry`, `tenant add` step 1).
pub struct UiExchangeSignIn {
    ui: Ui,
}

impl UiExchangeSignIn {
    pub fn new(ui: &Ui) -> UiExchangeSignIn {
        UiExchangeSignIn { ui: ui.clone() }
    }
}

impl SignInObserver for UiExchangeSignIn {
    fn device_code(&self, p: &DeviceCodePrompt) {
        let ui = &self.ui;
        ui.status(format!(
            "To sign in to Exchange Online, open {} and enter the code {}",
            ui.bold(Untrusted(&p.verification_uri)),
            ui.bold(ui.yellow(Untrusted(&p.user_code)))
        ));
        ui.status(
            ui.dim("Sign in as a Global, Exchange or Compliance Administrator of that tenant (hydrating needs Global or Exchange)."),
        );
    }

    fn browser_url(&self, url: &Url) -> bool {
        self.ui.status(format!(
            "To sign in to Exchange Online, open {}",
            Untrusted(url.as_str())
        ));
        false
    }

    fn signed_in(&self, user: Option<&str>) {
        self.ui.success(format!(
            "Signed in to Exchange Online{}",
            user.map(|u| format!(" as {}", Untrusted(u)))
                .unwrap_or_default()
        ));
    }
}
