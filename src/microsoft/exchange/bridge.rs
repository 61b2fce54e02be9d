//! Running PowerShell: find it, feed it a script on stdin, read its reports, end it on time.
//!
//! `pwsh -NoLogo -NoProfile -NonInteractive -Command -` with the script on stdin; values and
//! tokens travel in the child's environment, never on its command line (which other users of
//! the machine can read). The child runs in its own process group (Unix) so a timeout or
//! Ctrl-C ends it and everything it started; on Windows `taskkill /T` ends the tree. What the
//! child writes to stderr is kept, with tokens scrubbed, for the error we report.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::ExchangeError;
use super::protocol::{Line, Report, parse_line};

/// Default time one PowerShell session may take: connecting and hydrating can take minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Where module output goes: to the person, through whatever the caller uses for the terminal.
pub trait Passthrough: Send + Sync {
    fn line(&self, line: &str);
}

/// Drops module output (tests, `--json` callers that show nothing).
pub struct Quiet;

impl Passthrough for Quiet {
    fn line(&self, _line: &str) {}
}

impl<F: Fn(&str) + Send + Sync> Passthrough for F {
    fn line(&self, line: &str) {
        self(line)
    }
}

/// Finds PowerShell: the override, else `pwsh` on PATH, else `powershell.exe` on Windows.
pub fn locate(override_path: Option<&Path>) -> Result<PathBuf, ExchangeError> {
    if let Some(p) = override_path {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        if p.components().count() == 1
            && let Some(found) = which(&p.to_string_lossy())
        {
            return Ok(found);
        }
        return Err(ExchangeError::PwshNotFound {
            tried: vec![p.display().to_string()],
        });
    }
    let mut tried = vec!["pwsh".to_string()];
    if let Some(p) = which("pwsh") {
        return Ok(p);
    }
    if cfg!(windows) {
        tried.push("powershell.exe".into());
        if let Some(p) = which("powershell") {
            return Ok(p);
        }
    }
    Err(ExchangeError::PwshNotFound { tried })
}

/// A minimal `which`: PATH entries, with PATHEXT on Windows.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let exts: Vec<String> = if cfg!(windows) {
        std::env::var("PATHEXT")
            .unwrap_or_else(|_| ".EXE;.CMD;.BAT".into())
            .split(';')
            .map(|e| e.to_lowercase())
            .collect()
    } else {
        vec![String::new()]
    };
    for dir in std::env::split_paths(&path) {
        for ext in &exts {
            let cand = dir.join(format!("{name}{ext}"));
            if is_executable(&cand) {
                return Some(cand);
            }
        }
    }
    None
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

/// Replaces every secret, and anything shaped like a JWT, with `[redacted]`.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 8) {
        out = out.replace(*s, "[redacted]");
    }
    scrub_jwts(&out)
}

fn scrub_jwts(text: &str) -> String {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("eyJ") {
        out.push_str(&rest[..i]);
        let cand = &rest[i..];
        let end = cand
            .find(|c: char| !(is_b64(c) || c == '.'))
            .unwrap_or(cand.len());
        let tok = &cand[..end];
        if tok.matches('.').count() >= 2 && tok.len() > 20 {
            out.push_str("[redacted]");
        } else {
            out.push_str(tok);
        }
        rest = &cand[end..];
    }
    out.push_str(rest);
    out
}

/// What a finished session left.
#[derive(Debug, Default)]
pub struct RunOutput {
    pub reports: Vec<Report>,
    /// Result lines whose JSON did not parse.
    pub malformed: Vec<String>,
    /// stderr, scrubbed, last 8 KiB.
    pub stderr: String,
    /// The exit code, when the child exited normally.
    pub exit_code: Option<i32>,
}

/// One PowerShell executable and the limits to run it with.
#[derive(Debug, Clone)]
pub struct Pwsh {
    pub exe: PathBuf,
    pub timeout: Duration,
}

impl Pwsh {
    pub fn new(exe: PathBuf, timeout: Duration) -> Pwsh {
        Pwsh { exe, timeout }
    }

    /// Runs `script` with `env` and the `secrets` variables added to the child's environment.
    /// The secrets' values are scrubbed from everything kept or passed through. Lines that are
    /// not reports go to `out`.
    pub async fn run(
        &self,
        script: &str,
        env: &[(&str, String)],
        secrets: &[(&str, crate::secrets::SecretText)],
        out: &dyn Passthrough,
    ) -> Result<RunOutput, ExchangeError> {
        let mut cmd = tokio::process::Command::new(&self.exe);
        cmd.args(["-NoLogo", "-NoProfile", "-NonInteractive"]);
        if cfg!(windows) {
            cmd.args(["-ExecutionPolicy", "Bypass"]);
        }
        cmd.args(["-Command", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // The child gets only its own secrets: never the portal token, nor other tenants'
        // Exchange tokens, nor any other secret-bearing variable of our environment.
        crate::secrets::child_env(cmd.as_std_mut());
        for (k, v) in env {
            cmd.env(k, v);
        }
        // The child's environment block is the OS's copy; ours is zeroed when dropped.
        for (k, v) in secrets {
            cmd.env(k, v.expose());
        }
        let secrets: Vec<&str> = secrets.iter().map(|(_, v)| v.expose()).collect();
        let secrets = secrets.as_slice();
        #[cfg(unix)]
        cmd.process_group(0);
        let mut child = cmd.spawn().map_err(|source| ExchangeError::Spawn {
            path: self.exe.display().to_string(),
            source,
        })?;
        let pid = child.id();
        // Ended at exit too, should the process end while this run still waits on it.
        let _group = pid.map(crate::cleanup::end_at_exit);
        let mut stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");

        let feed = async move {
            // A child that exits early closes its stdin; that is not our error.
            let _ = stdin.write_all(script.as_bytes()).await;
            let _ = stdin.shutdown().await;
            drop(stdin);
        };
        let err_task = tokio::spawn(async move {
            let mut buf = Vec::new();
            let _ = stderr.read_to_end(&mut buf).await;
            buf
        });
        let mut result = RunOutput::default();
        let read = async {
            // Bytes, not `lines()`: Windows PowerShell may write its code page, and a line that
            // is not UTF-8 must not stop the reading (the child would block on a full pipe).
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let line = String::from_utf8_lossy(&buf);
                match parse_line(&line) {
                    Line::Report(r) => result.reports.push(r),
                    Line::Malformed(e) => result.malformed.push(e),
                    Line::Text(t) => out.line(&scrub(&t, secrets)),
                }
            }
        };
        let work = async {
            tokio::join!(feed, read);
            child.wait().await
        };
        enum End {
            Exited(std::io::Result<std::process::ExitStatus>),
            TimedOut,
            Interrupted,
        }
        let end = tokio::select! {
            s = work => End::Exited(s),
            _ = tokio::time::sleep(self.timeout) => End::TimedOut,
            // A failed handler registration disables this branch instead of firing it.
            Ok(()) = tokio::signal::ctrl_c() => End::Interrupted,
        };
        if !matches!(end, End::Exited(_)) {
            kill_tree(pid);
            let _ = child.kill().await;
        }
        let err_bytes = match tokio::time::timeout(Duration::from_secs(2), err_task).await {
            Ok(Ok(b)) => b,
            _ => Vec::new(),
        };
        // Scrub the whole text before cutting it, so no cut leaves a fragment of a token.
        let err_text = scrub(&String::from_utf8_lossy(&err_bytes), secrets);
        let tail_start = err_text.len().saturating_sub(8192);
        let tail_start = (tail_start..err_text.len())
            .find(|&i| err_text.is_char_boundary(i))
            .unwrap_or(err_text.len());
        let stderr_text = err_text[tail_start..].trim().to_string();
        match end {
            End::Exited(status) => {
                result.stderr = stderr_text;
                result.exit_code = status.ok().and_then(|s| s.code());
                Ok(result)
            }
            End::TimedOut => Err(ExchangeError::Timeout {
                secs: self.timeout.as_secs(),
                stderr: stderr_text,
            }),
            End::Interrupted => Err(ExchangeError::Interrupted),
        }
    }
}

/// Ends the child and everything it started.
fn kill_tree(pid: Option<u32>) {
    let Some(pid) = pid else { return };
    #[cfg(unix)]
    {
        // The child leads its own process group (process_group(0)), so -pid is the group.
        // SAFETY: kill(2) with a negative pid signals that group; no memory is involved.
        unsafe {
            libc::kill(-(pid as i32), libc::SIGKILL);
        }
    }
    #[cfg(windows)]
    {
        let _ = crate::secrets::child_env(&mut std::process::Command::new("taskkill"))
            .args(["/T", "/F", "/PID", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_secrets_and_jwts() {
        let t = "token eyJhbGciOiJIUzI1NiJ9.eyJ0aWQiOiJ4In0.c2lnbmF0dXJl and secret-value-123 end";
        let s = scrub(t, &["secret-value-123"]);
        assert_eq!(s, "token [redacted] and [redacted] end");
        assert_eq!(scrub("eyJ alone", &[]), "eyJ alone");
    }
}
