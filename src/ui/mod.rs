//! The only place that touches the terminal.
//!
//! Commands talk to the technician through one `Ui`: it knows whether a person is at the
//! terminal (prompts, spinners), whether `--json` owns stdout, and whether to color. Human
//! messages go to stderr, so stdout carries only what a script asked for (a table or JSON).
//!
//! The terminal adapters the library's observers need live here too: the sign-in prompts
//! ([`signin`]), the wizard's progress and PowerShell's output ([`progress`]), and the
//! credentials table at the end of an onboarding ([`credentials`]).

pub mod consent;
pub mod credentials;
pub mod interrupt;
pub mod multi;
pub mod progress;
pub mod sanitize;
pub mod signin;

pub use progress::{TenantOutput, UiProgress};
pub use sanitize::{Untrusted, sanitize};
pub use signin::{UiExchangeSignIn, UiSignIn};

use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::ValueEnum;
use console::Style;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::error::{CommandError, CommandResult, user_error};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone)]
pub struct Ui {
    color: bool,
    json: bool,
    /// A person can answer prompts: stdin and stderr are terminals and `--no-input` was not given.
    interactive: bool,
    /// stderr is a terminal: spinners and live displays make sense.
    live: bool,
    verbose: u8,
}

impl Ui {
    pub fn new(color: ColorChoice, json: bool, no_input: bool, verbose: u8) -> Ui {
        let stderr_tty = std::io::stderr().is_terminal();
        let stdin_tty = std::io::stdin().is_terminal();
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => stderr_tty && !no_color_env,
        };
        console::set_colors_enabled(color);
        console::set_colors_enabled_stderr(color);
        Ui {
            color,
            json,
            interactive: stdin_tty && stderr_tty && !no_input,
            live: stderr_tty,
            verbose,
        }
    }

    /// A quiet Ui for tests and library callers.
    pub fn headless(json: bool) -> Ui {
        Ui {
            color: false,
            json,
            interactive: false,
            live: false,
            verbose: 0,
        }
    }

    pub fn json(&self) -> bool {
        self.json
    }
    pub fn interactive(&self) -> bool {
        self.interactive
    }
    pub fn live(&self) -> bool {
        self.live
    }
    pub fn verbose(&self) -> u8 {
        self.verbose
    }
    pub fn color(&self) -> bool {
        self.color
    }

    /// Every message line reaches stderr through the sanitizer's backstop, above a live
    /// spinner (written onto the spinner's line, it would stay there beside a stale frame).
    fn err_line(&self, s: &str) {
        let line = sanitize::sanitize_line(s);
        let write = || {
            let mut e = std::io::stderr().lock();
            let _ = writeln!(e, "{line}");
        };
        let live = if IN_SUSPEND.get() {
            None
        } else {
            live_spinners().first().cloned()
        };
        match live {
            Some(bar) => {
                IN_SUSPEND.set(true);
                bar.suspend(write);
                IN_SUSPEND.set(false);
            }
            None => write(),
        }
    }

    /// A plain status line on stderr.
    pub fn status(&self, msg: impl AsRef<str>) {
        self.err_line(msg.as_ref());
    }

    pub fn success(&self, msg: impl AsRef<str>) {
        self.err_line(&format!(
            "{} {}",
            Style::new().green().apply_to("✔"),
            msg.as_ref()
        ));
    }

    pub fn warning(&self, msg: impl AsRef<str>) {
        self.err_line(&format!(
            "{} {}",
            Style::new().yellow().bold().apply_to("warning:"),
            msg.as_ref()
        ));
    }

    /// The next thing to do, naming the exact command.
    pub fn hint(&self, msg: impl AsRef<str>) {
        self.err_line(&format!(
            "{} {}",
            Style::new().cyan().bold().apply_to("hint:"),
            msg.as_ref()
        ));
    }

    /// Prints an error: one sentence, its causes, its hints (the full chain with `-v`). Each
    /// may quote a server (Graph's or the portal's message, a tenant's name), so each passes
    /// the sanitizer.
    pub fn error(&self, e: &CommandError) {
        if e.status == crate::error::ExitStatus::Interrupted {
            return self.interrupted(&e.message);
        }
        // Waiting on Microsoft is where the run stands, not a failure: a status line.
        if e.status == crate::error::ExitStatus::Waiting {
            if !e.message.is_empty() {
                self.err_line(&format!(
                    "{} {}",
                    Style::new().yellow().bold().apply_to("waiting:"),
                    Untrusted(&e.message)
                ));
            }
            for h in &e.hints {
                self.hint(sanitize(h));
            }
            return;
        }
        self.err_line(&format!(
            "{} {}",
            Style::new().red().bold().apply_to("error:"),
            Untrusted(&e.message)
        ));
        let causes = e.causes();
        let shown = if self.verbose > 0 {
            causes.len()
        } else {
            causes.len().min(1)
        };
        for c in &causes[..shown] {
            self.err_line(&format!(
                "  {} {}",
                Style::new().dim().apply_to("cause:"),
                Untrusted(c)
            ));
        }
        if self.verbose > 0 {
            if let Some(src) = &e.source {
                self.err_line(&format!(
                    "  {} {}",
                    Style::new().dim().apply_to("detail:"),
                    Untrusted(&format!("{src:?}"))
                ));
            }
        } else if causes.len() > 1 {
            self.err_line(&format!(
                "  {}",
                Style::new()
                    .dim()
                    .apply_to("(run with -v for the full cause)")
            ));
        }
        for h in &e.hints {
            self.hint(sanitize(h));
        }
    }

    /// Ctrl-C's one line, on a line of its own: live spinners stop first, and on a terminal
    /// the line they (or the echoed `^C`) left is cleared and the cursor shown again.
    fn interrupted(&self, msg: &str) {
        let stopped = stop_spinners();
        let mut e = std::io::stderr().lock();
        if self.live {
            let _ = write!(e, "\r\x1b[2K\x1b[?25h");
        } else if stopped {
            let _ = writeln!(e);
        }
        let _ = writeln!(e, "{}", sanitize::sanitize_line(msg));
    }

    /// Human output for stdout (tables, records). Commands print JSON with [`Ui::write_json`].
    pub fn out(&self, text: impl AsRef<str>) {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(text.as_ref().as_bytes());
        if !text.as_ref().ends_with('\n') {
            let _ = o.write_all(b"\n");
        }
    }

    pub fn write_json<T: Serialize + ?Sized>(&self, value: &T) -> CommandResult {
        let mut o = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut o, value).map_err(|e| {
            if e.is_io() {
                crate::error::failed("cannot write JSON to stdout").with_source(e)
            } else {
                // Our own output types always serialize.
                crate::error::internal(format!("cannot serialize the output: {e}"))
            }
        })?;
        let _ = o.write_all(b"\n");
        Ok(())
    }

    pub fn bold(&self, s: impl std::fmt::Display) -> String {
        Style::new().bold().apply_to(s).to_string()
    }
    pub fn dim(&self, s: impl std::fmt::Display) -> String {
        Style::new().dim().apply_to(s).to_string()
    }
    pub fn green(&self, s: impl std::fmt::Display) -> String {
        Style::new().green().apply_to(s).to_string()
    }
    pub fn yellow(&self, s: impl std::fmt::Display) -> String {
        Style::new().yellow().apply_to(s).to_string()
    }
    pub fn red(&self, s: impl std::fmt::Display) -> String {
        Style::new().red().apply_to(s).to_string()
    }

    /// A run that will ask `question` stops here, before any sign-in, when no one can answer
    /// and `flag` (`--yes`) did not: a device code nobody will approve, or a sign-in that ends
    /// in "no one can answer here", costs the technician a round trip for nothing.
    pub fn answer_needed(&self, answered: bool, question: &str, flag: &str) -> CommandResult {
        if answered || self.interactive {
            return Ok(());
        }
        Err(user_error(format!(
            "{question} needs an answer, and input is off (--no-input, or stdin is not a terminal): nothing was signed in to or changed"
        ))
        .hint(format!(
            "Pass {flag} to answer yes from a script, or run the command at a terminal without --no-input."
        )))
    }

    /// Asks yes/no. Without a person at the terminal this is an error naming `flag`.
    pub fn confirm(&self, prompt: &str, default: bool, flag: &str) -> CommandResult<bool> {
        if !self.interactive {
            return Err(
                user_error(format!("{prompt} (no one to answer: input is off)"))
                    .hint(format!("Pass {flag} to answer yes from a script.")),
            );
        }
        dialoguer::Confirm::with_theme(&dialoguer::theme::ColorfulTheme::default())
            .with_prompt(prompt)
            .default(default)
            .interact()
            .map_err(|e| self.prompt_error(e))
    }

    /// Asks for a line of text. Without a person at the terminal this is an error naming `flag`.
    pub fn input(&self, prompt: &str, flag: &str) -> CommandResult<String> {
        if !self.interactive {
            return Err(
                user_error(format!("{prompt}: no value given and input is off"))
                    .hint(format!("Pass {flag}.")),
            );
        }
        dialoguer::Input::<String>::with_theme(&dialoguer::theme::ColorfulTheme::default())
            .with_prompt(prompt)
            .interact_text()
            .map_err(|e| self.prompt_error(e))
    }

    /// Asks for a line that may be left empty (only asked when a person is there).
    pub fn input_optional(&self, prompt: &str) -> CommandResult<String> {
        if !self.interactive {
            return Ok(String::new());
        }
        dialoguer::Input::<String>::with_theme(&dialoguer::theme::ColorfulTheme::default())
            .with_prompt(prompt)
            .allow_empty(true)
            .interact_text()
            .map_err(|e| self.prompt_error(e))
    }

    /// Asks for a secret without echo.
    pub fn password(&self, prompt: &str, flag: &str) -> CommandResult<String> {
        if !self.interactive {
            return Err(
                user_error(format!("{prompt}: no value given and input is off"))
                    .hint(format!("Pass {flag}.")),
            );
        }
        dialoguer::Password::with_theme(&dialoguer::theme::ColorfulTheme::default())
            .with_prompt(prompt)
            .interact()
            .map_err(|e| self.prompt_error(e))
    }

    /// Ctrl-C at a prompt arrives as a key, not a signal: it is the interruption all the same.
    fn prompt_error(&self, e: dialoguer::Error) -> CommandError {
        let dialoguer::Error::IO(io) = &e;
        if io.kind() == std::io::ErrorKind::Interrupted {
            interrupt::note();
            self.status(""); // off the prompt's line, which stays on the screen
            return CommandError::interrupted();
        }
        crate::error::failed("the prompt was interrupted").with_source(e)
    }

    /// A spinner on stderr while something runs; a plain line when stderr is not a terminal.
    pub fn spinner(&self, msg: impl Into<String>) -> Spinner {
        let msg = sanitize::sanitize_line(&msg.into()).into_owned();
        if self.live {
            let pb = ProgressBar::new_spinner();
            pb.set_style(
                ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}")
                    .expect("valid template"),
            );
            pb.set_message(msg);
            pb.enable_steady_tick(Duration::from_millis(100));
            live_spinners().push(pb.clone());
            Spinner { bar: Some(pb) }
        } else {
            self.status(format!("… {msg}"));
            Spinner { bar: None }
        }
    }
}

/// A secret's lifetime as a person says it: "12 months" from about 60 days on (a 12-month
/// secret has 364 days left the day after), else "45 days".
pub fn lifetime(days: i64) -> String {
    match days {
        1 => "1 day".into(),
        d if d < 60 => format!("{d} days"),
        d => format!("{} months", d / 30),
    }
}

/// `text` cut to `max` columns at a word boundary, with "…" (a reason is never cut mid-word).
pub fn cut_words(text: &str, max: usize) -> String {
    if console::measure_text_width(text) <= max {
        return text.to_string();
    }
    let room = max.saturating_sub(1);
    let mut out = String::new();
    for word in text.split(' ') {
        let next = if out.is_empty() {
            word.to_string()
        } else {
            format!("{out} {word}")
        };
        if console::measure_text_width(&next) > room {
            break;
        }
        out = next;
    }
    let out = out.trim_end_matches([',', ';', ':', ' ']).to_string();
    if out.is_empty() {
        return console::truncate_str(text, max, "…").into_owned();
    }
    format!("{out}…")
}

/// A running step's spinner. Finish it with `done`/`fail`, or drop it to clear it.
pub struct Spinner {
    bar: Option<ProgressBar>,
}

impl Spinner {
    pub fn set_message(&self, msg: impl Into<String>) {
        if let Some(b) = &self.bar {
            b.set_message(sanitize::sanitize_line(&msg.into()).into_owned());
        }
    }

    /// Prints a line above the spinner without tearing it.
    pub fn println(&self, msg: impl AsRef<str>) {
        let msg = sanitize::sanitize_line(msg.as_ref());
        match &self.bar {
            Some(b) => b.println(&msg),
            None => eprintln!("{msg}"),
        }
    }

    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(b) if !IN_SUSPEND.get() => {
                IN_SUSPEND.set(true);
                let r = b.suspend(f);
                IN_SUSPEND.set(false);
                r
            }
            _ => f(),
        }
    }

    pub fn finish(self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
            live_spinners().retain(|s| !s.is_finished());
        }
    }
}

thread_local! {
    /// This thread is inside a spinner's `suspend` (which must not be entered twice).
    static IN_SUSPEND: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Every spinner on the screen, so that Ctrl-C (on the watcher's thread) can stop them
/// before it prints: a spinner ticking on would draw over the interruption's line.
fn live_spinners() -> std::sync::MutexGuard<'static, Vec<ProgressBar>> {
    static LIVE: std::sync::Mutex<Vec<ProgressBar>> = std::sync::Mutex::new(Vec::new());
    LIVE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Stops and clears every live spinner; whether there was one.
fn stop_spinners() -> bool {
    let bars = std::mem::take(&mut *live_spinners());
    for b in &bars {
        b.finish_and_clear();
    }
    !bars.is_empty()
}
