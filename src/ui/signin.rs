//! The sign-in on the terminal, the way `gh auth login` shows it: the one-time code alone on
//! its line, "Press Enter to open … in your browser" where a browser can be opened (the flow
//! keeps polling whatever happens to the browser), the expiry in local time, a spinner while
//! waiting.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use time::OffsetDateTime;
use url::Url;

use super::{Spinner, Ui, Untrusted};
use crate::microsoft::signin::{DeviceCodePrompt, SignInObserver, minutes};

/// Shows the sign-in: the code and URL prominently on stderr, a spinner while waiting.
pub struct UiSignIn {
    ui: Ui,
    spinner: Arc<Mutex<Option<Spinner>>>,
    /// Said once, before the first code or URL (e.g. "You will sign in twice: …").
    announce: Mutex<Option<String>>,
    /// Tells the thread waiting for Enter to stop.
    enter: Mutex<Option<Arc<AtomicBool>>>,
    /// Whom to sign in as, in "Sign in as … ." under the code.
    account: String,
}

impl UiSignIn {
    pub fn new(ui: &Ui) -> UiSignIn {
        UiSignIn {
            ui: ui.clone(),
            spinner: Arc::default(),
            announce: Mutex::new(None),
            enter: Mutex::new(None),
            account: "a Global Administrator of that tenant".into(),
        }
    }

    /// Says whom to sign in as under the code (a Global Administrator of the tenant unless
    /// told otherwise, e.g. partner mode's technician of the MSP's tenant).
    pub fn signing_in_as(mut self, account: impl Into<String>) -> UiSignIn {
        self.account = account.into();
        self
    }

    /// Says `text` before the first code or URL this sign-in shows.
    pub fn announcing(ui: &Ui, text: String) -> UiSignIn {
        let s = UiSignIn::new(ui);
        *s.announce.lock().unwrap() = Some(text);
        s
    }

    fn announce_once(&self) {
        if let Some(a) = self.announce.lock().unwrap().take() {
            self.ui.status("");
            self.ui.status(a);
        }
    }

    fn stop_waiting_for_enter(&self) {
        if let Some(stop) = self.enter.lock().unwrap().take() {
            stop.store(true, Ordering::SeqCst);
        }
    }
}

impl Drop for UiSignIn {
    fn drop(&mut self) {
        self.stop_waiting_for_enter();
    }
}

impl SignInObserver for UiSignIn {
    fn device_code(&self, p: &DeviceCodePrompt) {
        let ui = &self.ui;
        self.announce_once();
        ui.status("");
        ui.status(format!(
            "{} First copy your one-time code: {}",
            ui.yellow("!"),
            ui.bold(Untrusted(&p.user_code))
        ));
        let url = Untrusted(&p.verification_uri).to_string();
        let opener = if ui.interactive() {
            Opener::find().ok()
        } else {
            None
        };
        match (&opener, Url::parse(&p.verification_uri)) {
            (Some(o), Ok(target)) if enter::supported() => {
                ui.status(format!(
                    "Press Enter to open {} in your browser, or open it on any device...",
                    ui.bold(&url)
                ));
                let stop = Arc::new(AtomicBool::new(false));
                *self.enter.lock().unwrap() = Some(stop.clone());
                let (o, ui, spinner) = (o.clone(), ui.clone(), self.spinner.clone());
                enter::on_enter(stop, move || {
                    let said = if o.open(&target) {
                        format!("Opened {} in your browser.", target)
                    } else {
                        format!("Could not open a browser: open {} yourself.", target)
                    };
                    match spinner.lock().unwrap().as_ref() {
                        Some(s) => s.println(ui.dim(said)),
                        None => ui.status(ui.dim(said)),
                    }
                });
            }
            _ => ui.status(format!(
                "Then open {} in a browser on any device and enter the code.",
                ui.bold(&url)
            )),
        }
        ui.status(ui.dim(format!(
            "Sign in as {}. The code expires at {}.",
            self.account,
            local_time(p.expires_at)
        )));
        ui.status("");
        *self.spinner.lock().unwrap() = Some(ui.spinner("Waiting for you to sign in"));
    }

    fn browser_url(&self, url: &Url) -> bool {
        let ui = &self.ui;
        self.announce_once();
        let opened = Opener::find().is_ok_and(|o| o.open(url));
        if opened {
            ui.status("A browser was opened to sign in. If it did not show, open this address in a browser on this machine:");
        } else {
            ui.status("To sign in, open this address in a browser on this machine:");
        }
        ui.status(format!("  {}", ui.bold(url.as_str())));
        opened
    }

    fn browser_waiting(&self, limit: Duration) {
        let ui = &self.ui;
        ui.status(ui.dim(format!(
            "Waiting up to {} for the browser sign-in; without a browser, run the command with `--auth device-code`.",
            minutes(limit)
        )));
        *self.spinner.lock().unwrap() = Some(ui.spinner("Waiting for the browser sign-in"));
    }

    fn no_browser(&self) -> Option<String> {
        Opener::find().err()
    }

    fn browser_fallback(&self, why: &str) {
        self.ui.warning(format!(
            "no browser can be opened here ({why}): signing in with a device code instead."
        ));
    }

    fn saved_sign_in_refused(&self, why: &str) {
        self.ui.status(format!(
            "The saved sign-in was refused: {why}. Signing in again."
        ));
    }

    fn finished(&self) {
        self.stop_waiting_for_enter();
        if let Some(s) = self.spinner.lock().unwrap().take() {
            s.finish();
        }
    }

    fn signed_in(&self, user: Option<&str>) {
        self.finished();
        self.ui.success(format!(
            "Signed in{}",
            user.map(|u| format!(" as {}", Untrusted(u)))
                .unwrap_or_default()
        ));
    }
}

/// `t` as the technician's wall clock shows it, to the minute: "14:03" (local time; UTC,
/// said so, where the local offset cannot be read).
pub fn local_time(t: OffsetDateTime) -> String {
    match local_offset(t) {
        Some(off) => hhmm(t.to_offset(off)),
        None => format!("{} UTC", hhmm(t)),
    }
}

/// "14:03": hours and minutes, never seconds or their fractions.
fn hhmm(t: OffsetDateTime) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

/// The local UTC offset at `t`, from the C library (TZ, /etc/localtime), so daylight saving
/// time at that instant counts.
#[cfg(unix)]
fn local_offset(t: OffsetDateTime) -> Option<time::UtcOffset> {
    let secs = libc::time_t::try_from(t.unix_timestamp()).ok()?;
    // SAFETY: localtime_r writes only into `tm`, which we own; it reads TZ, which this
    // process never changes.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    if !ok {
        return None;
    }
    time::UtcOffset::from_whole_seconds(i32::try_from(tm.tm_gmtoff).ok()?).ok()
}

#[cfg(not(unix))]
fn local_offset(_t: OffsetDateTime) -> Option<time::UtcOffset> {
    None
}

/// How this machine opens a browser: `$BROWSER`, else the desktop's opener.
#[derive(Debug, Clone)]
struct Opener {
    program: String,
    args: Vec<String>,
}

impl Opener {
    /// The opener, or why there is none (an SSH session without a display, no display, no
    /// opener program).
    fn find() -> Result<Opener, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        // $BROWSER (as gh, git and Python's webbrowser read it): the first of a `:` list, a
        // command with `%s` for the URL or with the URL added.
        if let Some(b) = var("BROWSER") {
            let first = b.split(':').next().unwrap_or_default();
            let mut words = first.split_whitespace().map(str::to_string);
            if let Some(program) = words.next() {
                return Ok(Opener {
                    program,
                    args: words.collect(),
                });
            }
        }
        let ssh = var("SSH_CONNECTION").is_some() || var("SSH_TTY").is_some();
        let display = var("DISPLAY").is_some() || var("WAYLAND_DISPLAY").is_some();
        if cfg!(target_os = "macos") || cfg!(windows) {
            if ssh {
                return Err("this is an SSH session".into());
            }
            let (program, args): (&str, &[&str]) = if cfg!(windows) {
                ("rundll32", &["url.dll,FileProtocolHandler"])
            } else {
                ("open", &[])
            };
            return Ok(Opener {
                program: program.into(),
                args: args.iter().map(|s| s.to_string()).collect(),
            });
        }
        if !display {
            return Err(if ssh {
                "this is an SSH session without a display".into()
            } else {
                "no display: DISPLAY and WAYLAND_DISPLAY are unset".into()
            });
        }
        if !on_path("xdg-open") {
            return Err("xdg-open, which opens the desktop's browser, is not installed".into());
        }
        Ok(Opener {
            program: "xdg-open".into(),
            args: vec![],
        })
    }

    /// Starts the browser on `url` (without waiting for it); false if it could not start.
    fn open(&self, url: &Url) -> bool {
        let mut args = self.args.clone();
        match args.iter_mut().find(|a| a.contains("%s")) {
            Some(a) => *a = a.replace("%s", url.as_str()),
            None => args.push(url.as_str().to_string()),
        }
        let child = crate::secrets::child_env(&mut std::process::Command::new(&self.program))
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        match child {
            Ok(mut c) => {
                // Reap it whenever it ends, so no zombie is left behind.
                std::thread::spawn(move || {
                    let _ = c.wait();
                });
                true
            }
            Err(_) => false,
        }
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            let f = d.join(program);
            f.is_file()
        })
    })
}

/// Waiting for Enter on stdin without ever blocking the sign-in, and without keeping stdin
/// once the sign-in is over (a later prompt must get every key).
mod enter {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    pub fn supported() -> bool {
        cfg!(unix)
    }

    /// Runs `then` once a line is entered on stdin, unless `stop` is set first.
    #[cfg(unix)]
    pub fn on_enter(stop: Arc<AtomicBool>, then: impl FnOnce() + Send + 'static) {
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let mut fds = libc::pollfd {
                    fd: 0,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one pollfd we own, for stdin.
                let n = unsafe { libc::poll(&mut fds, 1, 100) };
                if n < 0 {
                    if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    return;
                }
                if n == 0 {
                    continue;
                }
                if fds.revents & libc::POLLIN == 0 || stop.load(Ordering::SeqCst) {
                    return; // stdin closed or in error, or the sign-in is over: leave the key
                }
                // A terminal in canonical mode is readable once a whole line is there.
                let mut buf = [0u8; 256];
                // SAFETY: reads into our own buffer, at most its length.
                let got = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
                if got <= 0 {
                    return;
                }
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                if buf[..got as usize].contains(&b'\n') {
                    then();
                    return;
                }
            }
        });
    }

    #[cfg(not(unix))]
    pub fn on_enter(_stop: Arc<AtomicBool>, _then: impl FnOnce() + Send + 'static) {}
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
        ui.status("Now the sign-in to Exchange Online (unified audit logging):");
        ui.status(format!(
            "{} First copy your one-time code: {}",
            ui.yellow("!"),
            ui.bold(Untrusted(&p.user_code))
        ));
        ui.status(format!(
            "Then open {} in a browser on any device and enter the code.",
            ui.bold(Untrusted(&p.verification_uri))
        ));
        ui.status(ui.dim(format!(
            "Sign in as a Global, Exchange or Compliance Administrator of that tenant (hydrating needs Global or Exchange). The code expires at {}.",
            local_time(p.expires_at)
        )));
    }

    fn browser_url(&self, url: &Url) -> bool {
        let opened = Opener::find().is_ok_and(|o| o.open(url));
        self.ui.status(format!(
            "To sign in to Exchange Online{}, open {}",
            if opened {
                " (a browser was opened)"
            } else {
                ""
            },
            Untrusted(url.as_str())
        ));
        opened
    }

    fn no_browser(&self) -> Option<String> {
        Opener::find().err()
    }

    fn browser_fallback(&self, why: &str) {
        self.ui.warning(format!(
            "no browser can be opened here ({why}): signing in to Exchange Online with a device code instead."
        ));
    }

    fn signed_in(&self, user: Option<&str>) {
        self.ui.success(format!(
            "Signed in to Exchange Online{}",
            user.map(|u| format!(" as {}", Untrusted(u)))
                .unwrap_or_default()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expiry_is_hours_and_minutes_in_the_offset_given() {
        let t = time::macros::datetime!(2026-01-02 14:03:59.75 UTC);
        assert_eq!(hhmm(t), "14:03");
        assert_eq!(hhmm(t.to_offset(time::macros::offset!(+5:30))), "19:33");
        assert_eq!(hhmm(t.to_offset(time::macros::offset!(-8))), "06:03");
    }
}
