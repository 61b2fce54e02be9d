//! The sandbox's stand-in PowerShell, written from docs/powershell-bridge.md alone.
//!
//! The sandbox links (Windows: copies) the `hal-onboard` binary as `pwsh` next to a
//! [`CONFIG_FILE`]; `main.rs` sees the name and runs [`main`]. It reads the script from stdin
//! the way `pwsh -Command -` would, walks it (blocks, `if ($x.Prop)` / `if (-not $x.Prop)`,
//! `try`/`catch`/`finally`, `function` definitions skipped), and runs the cmdlets it knows
//! against the sandbox's Exchange Online ([`super::exchange`]) over HTTPS, printing the
//! `##hal-result` lines the real scripts would print. Unknown statements are ignored.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;

use crate::contract::bridge::{Report, ReportError, kind, op};

/// The stand-in's settings, next to the link.
pub const CONFIG_FILE: &str = "sandbox-pwsh.json";
/// Overrides where the config is looked for.
pub const ENV_CONFIG: &str = "HAL_SANDBOX_PWSH_CONFIG";
/// Overrides `$PSVersionTable.PSVersion` (e.g. `5.1.22621.4391` for Windows PowerShell 5.1,
/// whose `PSEdition` is `Desktop`).
pub const ENV_PS_VERSION: &str = "HAL_SANDBOX_PWSH_VERSION";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StandinConfig {
    /// Where the sandbox mounted the Exchange simulator (a URL ending in `/`).
    pub exchange_url: String,
    /// The sandbox CA (PEM).
    pub ca_cert: PathBuf,
    /// What `$PSVersionTable.PSVersion` says.
    #[serde(default = "default_ps_version")]
    pub ps_version: String,
}

fn default_ps_version() -> String {
    "7.4.6".into()
}

/// Puts a stand-in `pwsh` in `dir` (a symlink to `exe`; a copy named `pwsh.exe` on Windows)
/// with its config, and returns the path to set as `HAL_ONBOARD_PWSH`.
pub fn install_standin(
    dir: &Path,
    exe: &Path,
    exchange_url: &Url,
    ca: &Path,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let cfg = StandinConfig {
        exchange_url: exchange_url.to_string(),
        ca_cert: ca.to_path_buf(),
        ps_version: default_ps_version(),
    };
    std::fs::write(
        dir.join(CONFIG_FILE),
        serde_json::to_vec_pretty(&cfg).expect("config serializes"),
    )?;
    let link = dir.join(if cfg!(windows) { "pwsh.exe" } else { "pwsh" });
    if link.symlink_metadata().is_ok() {
        std::fs::remove_file(&link)?;
    }
    #[cfg(unix)]
    std::os::unix::fs::symlink(exe, &link)?;
    #[cfg(not(unix))]
    std::fs::copy(exe, &link).map(|_| ())?;
    Ok(link)
}

fn find_config() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(ENV_CONFIG) {
        return Some(PathBuf::from(p));
    }
    let argv0 = PathBuf::from(std::env::args_os().next()?);
    let dir = match argv0.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => {
            std::env::split_paths(&std::env::var_os("PATH")?).find(|d| d.join(&argv0).exists())?
        }
    };
    Some(dir.join(CONFIG_FILE))
}

/// The stand-in's entry point: returns the process exit code.
pub fn main() -> i32 {
    let Some(cfg_path) = find_config() else {
        eprintln!("sandbox pwsh: cannot tell where {CONFIG_FILE} is");
        return 1;
    };
    let cfg: StandinConfig = match std::fs::read(&cfg_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sandbox pwsh: cannot read {}: {e}", cfg_path.display());
            return 1;
        }
    };
    let mut script = String::new();
    if std::io::stdin().read_to_string(&mut script).is_err() {
        eprintln!("sandbox pwsh: cannot read the script from stdin");
        return 1;
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sandbox pwsh: {e}");
            return 1;
        }
    };
    rt.block_on(async move {
        let client = match crate::contract::client_trusting(&cfg.ca_cert) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("sandbox pwsh: {e}");
                return 1;
            }
        };
        let mut interp = Interp {
            cfg,
            client,
            vars: HashMap::new(),
            tenant: std::env::var(crate::contract::bridge::ENV_TENANT_ID).ok(),
            token: None,
            last_if: None,
            connect_pending: false,
        };
        let nodes = parse(&script);
        interp.block(&nodes).await;
        0
    })
}

/// A statement or a `header { body }` block.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Stmt(String),
    Block { header: String, body: Vec<Node> },
}

/// Splits a script into statements and blocks, by lines and braces (enough for our scripts).
pub fn parse(script: &str) -> Vec<Node> {
    let mut stack: Vec<(String, Vec<Node>)> = vec![(String::new(), Vec::new())];
    for raw in script.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut rest = line;
        if let Some(after) = rest.strip_prefix('}') {
            if stack.len() > 1 {
                let (header, body) = stack.pop().expect("len > 1");
                stack
                    .last_mut()
                    .expect("root")
                    .1
                    .push(Node::Block { header, body });
            }
            rest = after.trim();
            if rest.is_empty() {
                continue;
            }
        }
        let opens = rest.matches('{').count();
        let closes = rest.matches('}').count();
        if rest.ends_with('{') && opens == closes + 1 {
            let header = rest[..rest.len() - 1].trim().to_string();
            stack.push((header, Vec::new()));
        } else {
            stack
                .last_mut()
                .expect("root")
                .1
                .push(Node::Stmt(rest.to_string()));
        }
    }
    while stack.len() > 1 {
        let (header, body) = stack.pop().expect("len > 1");
        stack
            .last_mut()
            .expect("root")
            .1
            .push(Node::Block { header, body });
    }
    stack.pop().expect("root").1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Next,
    /// A cmdlet failed: the enclosing `try` goes to its `catch`.
    Failed,
    /// `return` (or the end of the world).
    Stop,
}

struct Interp {
    cfg: StandinConfig,
    client: reqwest::Client,
    vars: HashMap<String, Value>,
    tenant: Option<String>,
    token: Option<String>,
    last_if: Option<bool>,
    /// Connected with `-DelegatedOrganization`, its check not passed yet: the script reports
    /// `connect` itself once it has checked the organization (its `Send-HalResult`), and the
    /// check's own cmdlets report nothing.
    connect_pending: bool,
}

fn emit(line: &str) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{line}");
    let _ = o.flush();
}

fn report(r: Report) {
    emit(&r.to_line());
}

/// `-Name value` and `-Name:value` pairs; `$env:X` read from the environment.
fn params(stmt: &str) -> HashMap<String, Value> {
    let mut out = HashMap::new();
    let toks: Vec<&str> = stmt.split_whitespace().collect();
    let value = |t: &str| -> Value {
        let t = t.trim_matches(|c| c == '\'' || c == '"');
        match t.to_ascii_lowercase().as_str() {
            "$true" => Value::Bool(true),
            "$false" => Value::Bool(false),
            _ => match t.strip_prefix("$env:") {
                Some(name) => std::env::var(name)
                    .map(Value::String)
                    .unwrap_or(Value::Null),
                None => Value::String(t.to_string()),
            },
        }
    };
    let mut i = 0;
    while i < toks.len() {
        if let Some(name) = toks[i].strip_prefix('-')
            && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        {
            if let Some((n, v)) = name.split_once(':') {
                out.insert(n.to_ascii_lowercase(), value(v));
            } else if i + 1 < toks.len() && !toks[i + 1].starts_with('-') {
                out.insert(name.to_ascii_lowercase(), value(toks[i + 1]));
                i += 1;
            } else {
                out.insert(name.to_ascii_lowercase(), Value::Bool(true));
            }
        }
        i += 1;
    }
    out
}

/// `[version]a -lt [version]b`, for dotted numeric versions.
fn older_than(a: &str, b: &str) -> bool {
    let parts =
        |v: &str| -> Vec<u64> { v.split(['.', '-']).map_while(|p| p.parse().ok()).collect() };
    let (a, b) = (parts(a), parts(b));
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0),
        );
        if x != y {
            return x < y;
        }
    }
    false
}

fn get_ci<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn failure_from(answer: &Value, k: &str) -> ReportError {
    let e = get_ci(answer, "error").cloned().unwrap_or(Value::Null);
    let s = |f: &str| {
        get_ci(&e, f)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    ReportError {
        kind: k.into(),
        message: s("message"),
        category: s("category"),
        reason: s("reason"),
        error_id: s("errorId"),
        found: None,
    }
}

impl Interp {
    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.cfg.exchange_url.trim_end_matches('/'))
    }

    fn block<'a>(
        &'a mut self,
        nodes: &'a [Node],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Flow> + 'a>> {
        Box::pin(async move {
            let mut i = 0;
            while i < nodes.len() {
                match &nodes[i] {
                    Node::Stmt(s) => match self.stmt(s).await {
                        Flow::Next => {}
                        other => return other,
                    },
                    Node::Block { header, body } => {
                        let h = header.to_ascii_lowercase();
                        if h.starts_with("function") || h.starts_with("catch") || h.ends_with('@') {
                            // Definitions, handled catches and hashtable literals do not run.
                        } else if h == "&" {
                            if self.block(body).await == Flow::Stop {
                                return Flow::Stop;
                            }
                        } else if h.starts_with("if") {
                            let cond = self.cond(header);
                            self.last_if = Some(cond);
                            if cond {
                                let f = self.block(body).await;
                                if f != Flow::Next {
                                    return f;
                                }
                            }
                        } else if h == "else" {
                            if self.last_if == Some(false) {
                                let f = self.block(body).await;
                                if f != Flow::Next {
                                    return f;
                                }
                            }
                        } else if h == "try" {
                            match self.block(body).await {
                                Flow::Stop => return Flow::Stop,
                                Flow::Failed => {
                                    // The catch runs: ours reported already; honour its return.
                                    if let Some(Node::Block { header, body }) = nodes.get(i + 1)
                                        && header.to_ascii_lowercase().starts_with("catch")
                                        && body
                                            .iter()
                                            .any(|n| matches!(n, Node::Stmt(s) if s == "return"))
                                    {
                                        return Flow::Stop;
                                    }
                                }
                                Flow::Next => {}
                            }
                        } else if h == "finally" {
                            let _ = self.block(body).await;
                        }
                    }
                }
                i += 1;
            }
            Flow::Next
        })
    }

    /// A variable's property as text (`[string]$x.Prop`: empty when absent).
    fn prop_text(&self, expr: &str) -> Option<String> {
        let expr = expr.trim().trim_start_matches("[string]");
        let (var, prop) = expr.strip_prefix('$')?.split_once('.')?;
        Some(
            self.vars
                .get(&var.to_ascii_lowercase())
                .and_then(|o| get_ci(o, prop))
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                })
                .unwrap_or_default(),
        )
    }

    /// `$x.Prop -ne $env:NAME` (case-insensitive, as PowerShell compares strings).
    fn ne_env(&self, expr: &str) -> Option<bool> {
        let (l, r) = expr.split_once(" -ne ")?;
        let name = r.trim().strip_prefix("$env:")?;
        let want = std::env::var(name).unwrap_or_default();
        Some(!self.prop_text(l)?.eq_ignore_ascii_case(&want))
    }

    /// `'text' + [string]$x.Prop + $env:NAME …`, as a string.
    fn concat(&self, expr: &str) -> String {
        let expr = expr.trim().trim_start_matches('(').trim_end_matches(')');
        expr.split(" + ")
            .map(|t| {
                let t = t.trim();
                if let Some(lit) = t.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
                    lit.to_string()
                } else if let Some(name) = t.strip_prefix("$env:") {
                    std::env::var(name).unwrap_or_default()
                } else {
                    self.prop_text(t).unwrap_or_default()
                }
            })
            .collect()
    }

    /// `if ($x.Prop)`, `if (-not $x.Prop)`, `if ($x.A -ne $env:N -and $x.B -ne $env:N)`;
    /// anything else is false.
    fn cond(&self, header: &str) -> bool {
        let inner = header
            .trim_start_matches(|c: char| c.is_ascii_alphabetic())
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .trim();
        if inner.contains(" -ne ") {
            return inner
                .split(" -and ")
                .all(|part| self.ne_env(part) == Some(true));
        }
        let (negate, expr) = match inner.strip_prefix("-not ") {
            Some(e) => (true, e.trim()),
            None => (false, inner),
        };
        let Some((var, prop)) = expr.strip_prefix('$').and_then(|e| e.split_once('.')) else {
            return false;
        };
        if !prop.chars().all(|c| c.is_ascii_alphanumeric()) {
            return false;
        }
        let v = self
            .vars
            .get(&var.to_ascii_lowercase())
            .and_then(|o| get_ci(o, prop))
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        v != negate
    }

    async fn stmt(&mut self, stmt: &str) -> Flow {
        let lower = stmt.to_ascii_lowercase();
        if lower == "return" {
            return Flow::Stop;
        }
        let (assign, call) = match stmt.split_once('=') {
            Some((l, r)) if l.trim().starts_with('$') && l.split_whitespace().count() == 1 => (
                Some(l.trim().trim_start_matches('$').to_ascii_lowercase()),
                r.trim(),
            ),
            _ => (None, stmt),
        };
        let first = call
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match first.as_str() {
            "throw" => {
                let message =
                    self.concat(call.trim_start_matches(|c: char| c.is_ascii_alphabetic()));
                let k = if self.connect_pending {
                    kind::CONNECT
                } else {
                    kind::CMDLET
                };
                self.connect_pending = false;
                report(Report::failure(
                    op::CONNECT,
                    ReportError {
                        kind: k.into(),
                        message,
                        category: "OperationStopped".into(),
                        reason: "RuntimeException".into(),
                        ..Default::default()
                    },
                ));
                Flow::Failed
            }
            "send-halresult" => {
                let p = params(call);
                match p.get("op").and_then(|v| v.as_str()) {
                    Some(op::CONNECT)
                        if self.connect_pending && p.get("ok") == Some(&Value::Bool(true)) =>
                    {
                        self.connect_pending = false;
                        report(Report::success(op::CONNECT, Value::Null));
                    }
                    Some(op::HOST) => {
                        let version = std::env::var(ENV_PS_VERSION)
                            .ok()
                            .filter(|v| !v.trim().is_empty())
                            .unwrap_or_else(|| self.cfg.ps_version.clone());
                        // Windows PowerShell (5.x and older) is "Desktop"; PowerShell 6+ "Core".
                        let major: u32 = version
                            .split('.')
                            .next()
                            .and_then(|m| m.parse().ok())
                            .unwrap_or(7);
                        let edition = if major < 6 { "Desktop" } else { "Core" };
                        report(Report::success(
                            op::HOST,
                            json!({"psVersion": version, "edition": edition}),
                        ))
                    }
                    Some(op::DONE) => report(Report::success(op::DONE, Value::Null)),
                    _ => {}
                }
                Flow::Next
            }
            "get-module" => self.get_module(assign).await,
            "install-module" => self.install_module().await,
            "connect-exchangeonline" => self.connect(call).await,
            "get-organizationconfig" => {
                self.cmdlet("Get-OrganizationConfig", op::ORG_CONFIG, json!({}), assign)
                    .await
            }
            "enable-organizationcustomization" => {
                self.cmdlet(
                    "Enable-OrganizationCustomization",
                    op::ENABLE_CUSTOMIZATION,
                    json!({}),
                    assign,
                )
                .await
            }
            "set-adminauditlogconfig" => {
                let p = params(call);
                let enabled = p
                    .get("unifiedauditlogingestionenabled")
                    .cloned()
                    .unwrap_or(Value::Null);
                self.cmdlet(
                    "Set-AdminAuditLogConfig",
                    op::SET_UAL,
                    json!({"UnifiedAuditLogIngestionEnabled": enabled}),
                    assign,
                )
                .await
            }
            "get-adminauditlogconfig" => {
                self.cmdlet("Get-AdminAuditLogConfig", op::GET_UAL, json!({}), assign)
                    .await
            }
            _ => Flow::Next,
        }
    }

    async fn get_module(&mut self, assign: Option<String>) -> Flow {
        let answer: Value = match self.client.get(self.url("module")).send().await {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(e) => {
                eprintln!("sandbox pwsh: {e}");
                return Flow::Stop;
            }
        };
        let version = get_ci(&answer, "version")
            .and_then(|v| v.as_str())
            .unwrap_or("3.1.0")
            .to_string();
        let installed = get_ci(&answer, "installed").and_then(|v| v.as_bool()) == Some(true);
        // As the prelude does: `$module.Version -lt [version]'3.1.0'` counts as missing, and
        // the too-old version is reported as `found`.
        let too_old = installed && older_than(&version, crate::contract::bridge::MODULE_MINIMUM);
        if installed && !too_old {
            if let Some(a) = assign {
                self.vars.insert(a, json!({"Version": version}));
            }
            report(Report::success(
                op::MODULE,
                json!({"version": version, "path": "/sandbox/Modules/ExchangeOnlineManagement"}),
            ));
            Flow::Next
        } else {
            // As the script does: report it missing and return.
            report(Report::failure(
                op::MODULE,
                ReportError {
                    kind: kind::MODULE_MISSING.into(),
                    message: "ExchangeOnlineManagement 3.1 or later is not installed".into(),
                    found: too_old.then_some(version),
                    ..Default::default()
                },
            ));
            Flow::Stop
        }
    }

    async fn install_module(&mut self) -> Flow {
        emit("Installing package 'ExchangeOnlineManagement' (sandbox)");
        match self.client.post(self.url("module/install")).send().await {
            Ok(r) if r.status().is_success() => {
                report(Report::success(op::INSTALL, Value::Null));
                Flow::Next
            }
            other => {
                report(Report::failure(
                    op::INSTALL,
                    ReportError {
                        kind: kind::CMDLET.into(),
                        message: format!("sandbox install failed: {other:?}"),
                        ..Default::default()
                    },
                ));
                Flow::Failed
            }
        }
    }

    async fn connect(&mut self, call: &str) -> Flow {
        let p = params(call);
        let environment = p
            .get("exchangeenvironmentname")
            .and_then(|v| v.as_str())
            .unwrap_or("O365Default");
        let device = p.contains_key("device");
        let fail = |message: String| {
            report(Report::failure(
                op::CONNECT,
                ReportError {
                    kind: kind::CONNECT.into(),
                    message,
                    ..Default::default()
                },
            ));
            Flow::Failed
        };
        if ![
            "O365Default",
            "O365USGovGCCHigh",
            "O365USGovDoD",
            "O365China",
        ]
        .iter()
        .any(|e| e.eq_ignore_ascii_case(environment))
        {
            return fail(format!(
                "Cannot validate argument on parameter 'ExchangeEnvironmentName': {environment:?} is not a valid environment."
            ));
        }
        let mut req_body = json!({});
        if let Some(org) = p.get("organization").and_then(|v| v.as_str()) {
            req_body["organization"] = json!(org);
        }
        let delegated = p.contains_key("delegatedorganization");
        if delegated {
            match p.get("delegatedorganization").and_then(|v| v.as_str()) {
                Some(org) if !org.is_empty() => req_body["delegatedOrganization"] = json!(org),
                _ => {
                    return fail("Cannot bind argument to parameter 'DelegatedOrganization' because it is an empty string.".into());
                }
            }
        }
        if device {
            emit(
                "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code SANDBOX42 to authenticate.",
            );
            req_body["device"] = json!(true);
        } else {
            let Some(token) = p.get("accesstoken").and_then(|v| v.as_str()) else {
                return fail("Cannot bind argument to parameter 'AccessToken' because it is an empty string.".into());
            };
            self.tenant = crate::contract::jwt_claims(token)
                .and_then(|c| c.get("tid").and_then(|v| v.as_str()).map(str::to_string))
                .or(self.tenant.take());
            self.token = Some(token.to_string());
        }
        let Some(tenant) = self.tenant.clone() else {
            return fail("UnAuthorized: cannot tell which organization to connect to.".into());
        };
        let mut req = self
            .client
            .post(self.url(&format!("{tenant}/connect")))
            .json(&req_body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let answer: Value = match req.send().await {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(e) => return fail(format!("Connecting to the sandbox failed: {e}")),
        };
        if get_ci(&answer, "ok").and_then(|v| v.as_bool()) != Some(true) {
            let mut e = failure_from(&answer, kind::CONNECT);
            if e.message.is_empty() {
                e.message = "UnAuthorized".into();
            }
            report(Report::failure(op::CONNECT, e));
            return Flow::Failed;
        }
        if let Some(t) = get_ci(&answer, "accessToken").and_then(|v| v.as_str()) {
            self.token = Some(t.to_string());
        }
        if get_ci(&answer, "hang").and_then(|v| v.as_bool()) == Some(true) {
            // Like a module stuck on a dead connection: never answers.
            loop {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        }
        if get_ci(&answer, "garbage").and_then(|v| v.as_bool()) == Some(true) {
            emit("WARNING: something odd happened");
            emit("##hal-result {\"op\":\"connect\",\"ok\":tru");
            return Flow::Stop;
        }
        if delegated {
            self.connect_pending = true;
        } else {
            report(Report::success(op::CONNECT, Value::Null));
        }
        Flow::Next
    }

    async fn cmdlet(
        &mut self,
        name: &str,
        op: &str,
        parameters: Value,
        assign: Option<String>,
    ) -> Flow {
        let Some(tenant) = self.tenant.clone() else {
            report(Report::failure(
                op,
                ReportError {
                    kind: kind::CMDLET.into(),
                    message: format!(
                        "The term '{name}' is not recognized as a name of a cmdlet. Run Connect-ExchangeOnline first."
                    ),
                    ..Default::default()
                },
            ));
            return Flow::Failed;
        };
        let mut req = self
            .client
            .post(self.url(&format!("{tenant}/cmdlet")))
            .json(&json!({"cmdlet": name, "parameters": parameters}));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let answer: Value = match req.send().await {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(e) => json!({"ok": false, "error": {"message": format!("{e}")}}),
        };
        if get_ci(&answer, "ok").and_then(|v| v.as_bool()) != Some(true) {
            if self.connect_pending {
                // Part of the connect block's check: its catch reports `connect`.
                self.connect_pending = false;
                report(Report::failure(
                    op::CONNECT,
                    failure_from(&answer, kind::CONNECT),
                ));
            } else {
                report(Report::failure(op, failure_from(&answer, kind::CMDLET)));
            }
            return Flow::Failed;
        }
        let data = get_ci(&answer, "data").cloned().unwrap_or(Value::Null);
        if let Some(a) = assign {
            self.vars.insert(a, data.clone());
        }
        if self.connect_pending {
            return Flow::Next;
        }
        let shown = match op {
            op::ORG_CONFIG => {
                json!({"isDehydrated": get_ci(&data, "IsDehydrated").cloned().unwrap_or(Value::Null)})
            }
            op::GET_UAL => {
                json!({"unifiedAuditLogIngestionEnabled": get_ci(&data, "UnifiedAuditLogIngestionEnabled").cloned().unwrap_or(Value::Null)})
            }
            _ => Value::Null,
        };
        report(Report::success(op, shown));
        Flow::Next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape docs/powershell-bridge.md gives a session script.
    const SCRIPT: &str = r#"
& {
    $ErrorActionPreference = 'Stop'
    function Send-HalResult {
        param([string]$Op, [bool]$Ok, $Data, $ErrorRecord, [string]$Kind)
        Write-Output ('##hal-result ' + (@{ op = $Op; ok = $Ok } | ConvertTo-Json -Compress))
    }
    try {
        Connect-ExchangeOnline -AccessToken $env:HAL_EXO_ACCESS_TOKEN -Organization $env:HAL_EXO_ORGANIZATION -ShowBanner:$false
        Send-HalResult -Op connect -Ok $true
    } catch {
        Send-HalResult -Op connect -Ok $false -ErrorRecord $_ -Kind connect
        return
    }
}
"#;

    #[test]
    fn parses_the_bridge_scripts_into_blocks() {
        let nodes = parse(SCRIPT);
        assert_eq!(nodes.len(), 1, "one & {{ }} block");
        let Node::Block { header, body } = &nodes[0] else {
            panic!("block")
        };
        assert_eq!(header, "&");
        assert!(
            body.iter()
                .any(|n| matches!(n, Node::Block { header, .. } if header == "try"))
        );
        assert!(body.iter().any(|n| matches!(n, Node::Block { header, .. } if header.starts_with("function Send-HalResult"))));
    }

    #[test]
    fn params_read_switches_values_and_env() {
        let p = params(
            "Set-AdminAuditLogConfig -UnifiedAuditLogIngestionEnabled $true -ShowBanner:$false -Device -X 'y'",
        );
        assert_eq!(p["unifiedauditlogingestionenabled"], Value::Bool(true));
        assert_eq!(p["showbanner"], Value::Bool(false));
        assert_eq!(p["device"], Value::Bool(true));
        assert_eq!(p["x"], Value::String("y".into()));
    }
}
