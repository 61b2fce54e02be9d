//! The PowerShell bridge held to its document, docs/powershell-bridge.md, not to itself.
//!
//! Every script hal-onboard can emit (`scripts::all()`: the module check, the install, and
//! every sign-in × plan) is read for what it reports — the `op` of each result line, the
//! `kind` of each failure, the `data` fields, the functions it defines, the variables it
//! reads — and each must be what the document lists, and the other way round. Then the
//! document's own lines (its examples, its module-missing line) are fed to the product through
//! a fake PowerShell, so the product's reading of the protocol is held to the document too.

use crate::support::contract as contract_support;

use std::collections::{BTreeMap, BTreeSet};

use contract_support::{code_spans, doc, marked_block, table};
use hal_onboard::microsoft::exchange::protocol::{
    self, ErrorClass, Line, Report, classify, kind, op, parse_line,
};
use hal_onboard::microsoft::exchange::scripts::{self, Connect, Plan};

const DOC: &str = "docs/powershell-bridge.md";

fn bridge_doc() -> String {
    doc("powershell-bridge.md")
}

/// Every single-quoted literal that follows `prefix` in `line` (`-Op 'x'` → `x`), or with
/// `quote` `"` every double-quoted one (`"op":"x"` → `x`).
fn literals_after(line: &str, prefix: &str, quote: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find(prefix) {
        rest = &rest[i + prefix.len()..];
        if let Some(end) = rest.find(quote) {
            out.push(rest[..end].to_string());
        }
    }
    out
}

/// The `op`s a line of a script reports: `-Op 'x'` (a `Send-HalResult` call), `op = 'x'` (a
/// hashtable the line serializes) or `"op":"x"` (a literal result line).
fn ops_on(line: &str) -> Vec<String> {
    let mut ops = literals_after(line, "-Op '", '\'');
    ops.extend(literals_after(line, "op = '", '\''));
    ops.extend(literals_after(line, "\"op\":\"", '"'));
    ops
}

/// The failure `kind`s a line sets.
fn kinds_on(line: &str) -> Vec<String> {
    let mut kinds = literals_after(line, "ConvertTo-HalFailure $_ '", '\'');
    kinds.extend(literals_after(line, "kind = '", '\''));
    kinds.extend(literals_after(line, "\"kind\":\"", '"'));
    kinds
}

/// The keys of the hashtable literal after `-Data ([ordered]@{` on a line.
fn data_keys_on(line: &str) -> Option<Vec<String>> {
    let (_, rest) = line.split_once("-Data ([ordered]@{")?;
    let body = &rest[..rest
        .find('}')
        .expect("the -Data hashtable closes on its line")];
    Some(
        body.split(';')
            .map(|entry| {
                entry
                    .split_once('=')
                    .unwrap_or_else(|| panic!("not `key = value`: {entry:?} in {line}"))
                    .0
                    .trim()
                    .to_string()
            })
            .collect(),
    )
}

/// What one script reports, read from its text.
#[derive(Default)]
struct Reported {
    ops: BTreeSet<String>,
    /// (op, kind) for every failure it can report.
    failures: BTreeSet<(String, String)>,
    /// op → the `data` field names it sends.
    data: BTreeMap<String, BTreeSet<String>>,
}

fn reported(name: &str, script: &str) -> Reported {
    let mut r = Reported::default();
    let lines: Vec<&str> = script.lines().collect();
    for line in &lines {
        let t = line.trim();
        if t.starts_with("function Send-HalResult") {
            continue;
        }
        let reports = t.contains("Send-HalResult") || t.contains("##hal-result");
        let ops = ops_on(t);
        if reports && ops.is_empty() {
            // Only a line that writes a hashtable built elsewhere may name no op: the one in
            // Send-HalResult (its callers are checked here), or one whose assignment does.
            let var = t
                .split_once("-InputObject $")
                .map(|(_, v)| v.split(|c: char| !c.is_alphanumeric()).next().unwrap_or(""))
                .unwrap_or_else(|| panic!("{name}: cannot tell which op this line reports: {t}"));
            let assignment = lines
                .iter()
                .find(|l| l.trim().starts_with(&format!("${var} = [ordered]@{{")))
                .unwrap_or_else(|| panic!("{name}: ${var} is written as a result but never built"));
            assert!(
                assignment.contains("op = $Op") || !ops_on(assignment).is_empty(),
                "{name}: ${var} is written as a result without a literal op: {assignment}"
            );
        }
        for o in &ops {
            r.ops.insert(o.clone());
            for k in kinds_on(t) {
                r.failures.insert((o.clone(), k));
            }
            if let Some(keys) = data_keys_on(t) {
                r.data.entry(o.clone()).or_default().extend(keys);
            }
        }
    }
    r
}

fn all_reported() -> Vec<(String, String, Reported)> {
    let all = scripts::all();
    assert_eq!(
        all.len(),
        2 + 4 * Plan::ALL.len(),
        "module check, install, and 4 sign-ins × every plan"
    );
    all.into_iter()
        .map(|(name, script)| {
            let r = reported(&name, &script);
            assert!(!r.ops.is_empty(), "{name} reports nothing the test can see");
            (name, script, r)
        })
        .collect()
}

/// The doc's operations table: op → (cmdlet cell, data cell).
fn doc_ops() -> BTreeMap<String, (String, String)> {
    let d = bridge_doc();
    let t = table(DOC, &d, "`op`");
    let ops = t.column("`op`");
    let cmdlets = t.column("cmdlet");
    let data = t.column("`data` on success");
    ops.iter()
        .zip(cmdlets)
        .zip(data)
        .map(|((o, c), d)| {
            let spans = code_spans(o);
            assert_eq!(spans.len(), 1, "{DOC}: one `op` per row: {o}");
            (spans[0].clone(), (c.to_string(), d.to_string()))
        })
        .collect()
}

/// The doc's example `data` for an op as JSON (`bool` stands for a boolean: `true`), or None
/// for `—`.
fn doc_data(cell: &str) -> Option<serde_json::Value> {
    let spans = code_spans(cell);
    let json = spans.first()?;
    let v: serde_json::Value = serde_json::from_str(&json.replace(":bool", ":true"))
        .unwrap_or_else(|e| panic!("{DOC}: `data` {json} does not read as JSON: {e}"));
    assert!(v.is_object(), "{DOC}: `data` {json} is not an object");
    Some(v)
}

#[test]
fn bridge_every_reported_op_is_documented_and_every_documented_op_is_reported() {
    let documented: BTreeSet<String> = doc_ops().into_keys().collect();
    let known: BTreeSet<String> = op::ALL.iter().map(|s| s.to_string()).collect();
    let mut emitted = BTreeSet::new();
    for (name, _, r) in all_reported() {
        for o in &r.ops {
            assert!(
                documented.contains(o),
                "{name} reports op {o:?}, which {DOC} does not list (it lists {documented:?})"
            );
            assert!(
                known.contains(o),
                "{name} reports op {o:?}, which the protocol module does not know (protocol::op::ALL = {known:?})"
            );
            // The product's parser reads it back as that op.
            let line = Report::success(o, serde_json::Value::Null).to_line();
            match parse_line(&line) {
                Line::Report(r) => assert_eq!(&r.op, o),
                other => panic!("{line} parses as {other:?}"),
            }
        }
        emitted.extend(r.ops);
    }
    let never: Vec<_> = documented.difference(&emitted).collect();
    assert!(
        never.is_empty(),
        "{DOC} lists ops no script reports: {never:?}"
    );
    assert_eq!(
        documented, known,
        "{DOC}'s operations and protocol::op::ALL differ"
    );
}

#[test]
fn bridge_data_fields_are_the_documented_ones() {
    let documented = doc_ops();
    let mut sent: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, _, r) in all_reported() {
        for (o, keys) in r.data {
            sent.entry(o).or_default().extend(keys);
        }
    }
    for (o, (_, data)) in &documented {
        let want: BTreeSet<String> = doc_data(data)
            .map(|v| v.as_object().unwrap().keys().cloned().collect())
            .unwrap_or_default();
        let got = sent.get(o).cloned().unwrap_or_default();
        assert_eq!(
            got, want,
            "the `data` fields the scripts send with {o:?} (left) differ from {DOC}'s (right)"
        );
    }
}

#[test]
fn bridge_error_kinds_are_the_documented_ones() {
    let d = bridge_doc();
    let t = table(DOC, &d, "`kind`");
    let mut documented = BTreeSet::new();
    for (k, with) in t.column("`kind`").iter().zip(t.column("reported with")) {
        let k = code_spans(k).remove(0);
        for o in code_spans(with) {
            documented.insert((o, k.clone()));
        }
    }
    let mut emitted = BTreeSet::new();
    for (name, _, r) in all_reported() {
        for pair in &r.failures {
            assert!(
                documented.contains(pair),
                "{name} reports op {:?} failed with kind {:?}, which {DOC}'s `kind` table does not list",
                pair.0,
                pair.1
            );
        }
        emitted.extend(r.failures);
    }
    assert_eq!(
        emitted, documented,
        "(op, kind) failures the scripts report (left) and {DOC} lists (right)"
    );
    let kinds: BTreeSet<&str> = documented.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(
        kinds,
        kind::ALL.into_iter().collect(),
        "{DOC}'s kinds and protocol::kind::ALL"
    );
}

#[test]
fn bridge_kinds_classify_as_section_5_says() {
    // Section 5: "module missing" and "not signed in" are recognised by `kind` alone; a
    // `cmdlet` failure with an unknown message is "other".
    let d = bridge_doc();
    let t = table(DOC, &d, "class");
    let by_kind: Vec<(String, String)> = t
        .column("class")
        .iter()
        .zip(t.column("recognised by"))
        .filter_map(|(class, by)| {
            let (_, after) = by.split_once("`kind` = `")?;
            Some((class.to_string(), after[..after.find('`')?].to_string()))
        })
        .collect();
    assert_eq!(
        by_kind.len(),
        2,
        "{DOC}: rows recognised by `kind`: {by_kind:?}"
    );
    for (class, k) in by_kind {
        let e = protocol::ReportError {
            kind: k.clone(),
            message: "something".into(),
            ..Default::default()
        };
        let want = match class.as_str() {
            "module missing" => ErrorClass::ModuleMissing,
            c if c.starts_with("not signed in") => ErrorClass::NotSignedIn,
            c => panic!("{DOC}: a class this test does not know: {c}"),
        };
        assert_eq!(classify(&e), want, "kind {k:?} ({class})");
    }
    let e = protocol::ReportError {
        kind: kind::CMDLET.into(),
        message: "something".into(),
        ..Default::default()
    };
    assert_eq!(classify(&e), ErrorClass::Other);
}

#[test]
fn bridge_each_op_runs_the_documented_cmdlet() {
    let documented = doc_ops();
    for (name, script, r) in all_reported() {
        for o in &r.ops {
            let Some((cmdlet, _)) = documented.get(o) else {
                continue; // an op the document lacks: the first test names it
            };
            let Some(code) = code_spans(cmdlet).into_iter().next() else {
                continue; // `done`: "the script reached its end"
            };
            let code = code.trim_end_matches('…').trim();
            assert!(
                script.contains(code),
                "{name} reports {o:?} but does not run `{code}` as {DOC} says"
            );
        }
    }
}

/// `(name, type, default)` of each parameter in a `param(...)` line.
fn params_of(script: &str, function: &str) -> Vec<(String, String, String)> {
    let mut lines = script
        .lines()
        .skip_while(|l| l.trim() != format!("function {function} {{"));
    assert!(lines.next().is_some(), "the prelude defines no {function}");
    let param = lines.next().expect("a param line").trim();
    let inner = param
        .strip_prefix("param(")
        .and_then(|p| p.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{function}'s first line is not param(...): {param}"));
    inner
        .split(',')
        .map(|p| {
            let p = p.trim();
            let (decl, default) = match p.split_once('=') {
                Some((d, v)) => (d.trim(), v.trim().to_string()),
                None => (p, "—".to_string()),
            };
            let (ty, name) = match decl.split_once('$') {
                Some((t, n)) if !t.is_empty() => (t.to_string(), n),
                Some((_, n)) => ("untyped".to_string(), n),
                None => panic!("not a parameter: {p}"),
            };
            (name.to_string(), ty, default)
        })
        .collect()
}

#[test]
fn bridge_prelude_functions_are_documented_parameter_for_parameter() {
    let d = bridge_doc();
    let (_, check) = scripts::all()
        .into_iter()
        .find(|(n, _)| n == "module_check")
        .unwrap();
    for function in ["Send-HalResult", "ConvertTo-HalFailure"] {
        let t = table(DOC, &d, &format!("`{function}` parameter"));
        let names = t.column(&format!("`{function}` parameter"));
        let documented: Vec<(String, String, String)> = names
            .iter()
            .zip(t.column("type"))
            .zip(t.column("default"))
            .map(|((n, ty), def)| {
                let strip = |s: &str| s.trim_matches('`').to_string();
                (strip(n), strip(ty), strip(def))
            })
            .collect();
        assert_eq!(
            params_of(&check, function),
            documented,
            "{function}'s param(...) in the prelude (left) and {DOC} (right)"
        );
    }
    // Every call passes only documented parameters, each as `-Name`.
    let send: BTreeSet<String> = params_of(&check, "Send-HalResult")
        .into_iter()
        .map(|(n, _, _)| n)
        .collect();
    for (name, script) in scripts::all() {
        for line in script.lines().map(str::trim) {
            let Some(call) = line
                .strip_prefix("Send-HalResult ")
                .or_else(|| line.split_once("; Send-HalResult ").map(|(_, c)| c))
            else {
                continue;
            };
            for word in call.split_whitespace() {
                if let Some(p) = word.strip_prefix('-')
                    && p.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                {
                    assert!(
                        send.contains(p),
                        "{name}: Send-HalResult is called with -{p}, not in {DOC}: {line}"
                    );
                }
            }
            assert!(
                call.starts_with("-Op '"),
                "{name}: {DOC} promises `-Op` first, as a literal: {line}"
            );
        }
    }
}

#[test]
fn bridge_module_missing_line_is_exactly_what_the_prelude_prints() {
    let d = bridge_doc();
    let block = marked_block(DOC, &d, "module-missing");
    assert_eq!(block.len(), 1, "one line");
    let line = &block[0];
    let (_, check) = scripts::all()
        .into_iter()
        .find(|(n, _)| n == "module_check")
        .unwrap();
    // The prelude's call: Send-HalResult -Op 'module' -Ok $false -Failure ([ordered]@{ … }).
    let call = check
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("Send-HalResult -Op 'module' -Ok $false"))
        .expect("the prelude reports a missing module");
    let (_, table) = call
        .split_once("-Failure ([ordered]@{")
        .expect("a literal failure");
    let table = &table[..table.find('}').unwrap()];
    // What ConvertTo-Json -Compress makes of it, in order: `$found` is $null when no older
    // module is installed.
    let fields: Vec<String> = table
        .split(';')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            let v = v.trim();
            let json = match v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
                Some(s) => serde_json::to_string(s).unwrap(),
                None if v == "$found" => "null".to_string(),
                None => panic!("a value the test cannot render: {v}"),
            };
            format!("\"{}\":{json}", k.trim())
        })
        .collect();
    let printed = format!(
        "##hal-result {{\"op\":\"module\",\"ok\":false,\"error\":{{{}}}}}",
        fields.join(",")
    );
    assert_eq!(
        line, &printed,
        "{DOC}'s module-missing line (left), the prelude's (right)"
    );
    match parse_line(line) {
        Line::Report(r) => {
            assert_eq!(r.op, op::MODULE);
            let e = r.error.expect("an error");
            assert_eq!(classify(&e), ErrorClass::ModuleMissing);
            assert_eq!(e.found, None);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bridge_environment_variables_are_the_documented_ones() {
    let d = bridge_doc();
    let documented: BTreeSet<String> = table(DOC, &d, "variable")
        .column("variable")
        .iter()
        .map(|c| c.trim_matches('`').to_string())
        .collect();
    let mut read = BTreeSet::new();
    for (_, script) in scripts::all() {
        for (i, _) in script.match_indices("$env:") {
            let name: String = script[i + "$env:".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            read.insert(name);
        }
    }
    assert_eq!(
        read, documented,
        "variables the scripts read (left) and {DOC} lists (right)"
    );
    // The removed ones are the product's names for the portal token and the Exchange tokens.
    let removed: BTreeSet<String> = table(DOC, &d, "removed variable")
        .column("removed variable")
        .iter()
        .map(|c| c.trim_matches('`').to_string())
        .collect();
    for name in [
        hal_onboard::config::ENV_PORTAL_TOKEN,
        hal_onboard::config::ENV_EXCHANGE_TOKEN,
    ] {
        assert!(
            removed.contains(name),
            "{DOC} does not say {name} is removed"
        );
    }
}

#[test]
fn bridge_connect_lines_are_the_scripts_own() {
    let d = bridge_doc();
    let token = marked_block(DOC, &d, "connect-token");
    let device = marked_block(DOC, &d, "connect-device");
    let delegated = marked_block(DOC, &d, "connect-delegated");
    let script_lines = |c: Connect, p: Plan| -> BTreeSet<String> {
        scripts::session(c, p)
            .lines()
            .map(|l| l.trim().to_string())
            .collect()
    };
    let upn = " -UserPrincipalName $env:HAL_EXO_UPN";
    assert!(
        token[0].contains(upn),
        "{DOC} shows the token line with the account"
    );
    for plan in Plan::ALL {
        let with = script_lines(Connect::AccessToken { with_upn: true }, plan);
        let without = script_lines(Connect::AccessToken { with_upn: false }, plan);
        let dev = script_lines(Connect::Device, plan);
        let del = script_lines(Connect::Delegated, plan);
        for l in delegated.iter().filter(|l| *l != "}") {
            assert!(
                del.contains(l),
                "{plan:?} with -DelegatedOrganization lacks {DOC}'s line:\n{l}"
            );
            assert!(
                !with.contains(l) && !without.contains(l) && !dev.contains(l),
                "a direct session runs {l}"
            );
        }
        for l in &token {
            assert!(
                with.contains(l),
                "{plan:?} with an account lacks {DOC}'s line:\n{l}"
            );
            let bare = l.replace(upn, "");
            assert!(
                without.contains(&bare),
                "{plan:?} without an account lacks:\n{bare}"
            );
        }
        for l in &device {
            assert!(
                dev.contains(l),
                "{plan:?} with -Device lacks {DOC}'s line:\n{l}"
            );
            assert!(
                !with.contains(l) && !without.contains(l),
                "a token session runs {l}"
            );
        }
    }
}

#[test]
fn bridge_example_lines_parse_and_classify_as_documented() {
    let d = bridge_doc();
    let lines = marked_block(DOC, &d, "example-lines");
    let reports: Vec<Report> = lines
        .iter()
        .map(|l| match parse_line(l) {
            Line::Report(r) => r,
            other => panic!("{DOC}'s example {l} parses as {other:?}"),
        })
        .collect();
    assert_eq!(reports[0].data_bool("isDehydrated"), Some(true));
    let e = reports[1].error.clone().expect("the second example fails");
    assert_eq!(e.kind, kind::CMDLET);
    assert_eq!(
        classify(&e),
        ErrorClass::Dehydrated,
        "section 5: the dehydration error means waiting"
    );
    // The reason alone is enough (a message in another language still classifies).
    let reason_only = protocol::ReportError {
        kind: e.kind.clone(),
        reason: e.reason.clone(),
        ..Default::default()
    };
    assert_eq!(
        classify(&reason_only),
        ErrorClass::Dehydrated,
        "{}",
        e.reason
    );
}

/// The product itself, fed the document's lines by a fake PowerShell.
#[cfg(unix)]
mod product {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use contract_support::FakePwsh;
    use hal_onboard::cloud::Cloud;
    use hal_onboard::microsoft::exchange::auth::StaticTokenCredential;
    use hal_onboard::microsoft::exchange::{
        Customization, ExchangeAuth, ExchangeError, ExchangeOps, ExchangeSignIn, ExchangeTarget,
        Pwsh, PwshExchange, Quiet,
    };
    use uuid::Uuid;

    const T: Duration = Duration::from_secs(30);

    /// The result line for the document's `op` with its example `data` (or `data`). The lines
    /// are named as the document names them, not by the product's constants: the product has
    /// to understand the document.
    fn doc_line(op: &str, data: Option<serde_json::Value>) -> String {
        let ops = doc_ops();
        let (_, cell) = ops
            .get(op)
            .unwrap_or_else(|| panic!("{DOC} lists no op {op:?}"));
        let data = data
            .or_else(|| doc_data(cell))
            .unwrap_or(serde_json::Value::Null);
        Report::success(op, data).to_line()
    }

    fn target(cloud: Cloud) -> (Uuid, ExchangeTarget) {
        let id = Uuid::new_v4();
        (
            id,
            ExchangeTarget {
                tenant_id: id,
                organization: "contoso.onmicrosoft.com".into(),
                cloud,
            },
        )
    }

    #[tokio::test]
    async fn bridge_product_reads_the_documented_host_and_module_data() {
        let fake = FakePwsh::new(&[
            "module chatter for the person".to_string(),
            doc_line("host", None),
            doc_line("module", None),
            doc_line("done", None),
        ]);
        let status = Pwsh::new(fake.exe.clone(), T)
            .module_status()
            .await
            .unwrap();
        let data = |o: &str| doc_data(&doc_ops()[o].1).unwrap();
        assert_eq!(
            status.ps_version.as_deref(),
            data("host")["psVersion"].as_str()
        );
        assert_eq!(
            status.ps_edition.as_deref(),
            data("host")["edition"].as_str()
        );
        assert_eq!(
            status.module_version.as_deref(),
            data("module")["version"].as_str()
        );
        assert_eq!(fake.stdin(), scripts::module_check());

        // The command line is the document's (on Unix: without the Windows-only part).
        let d = bridge_doc();
        let documented = marked_block(DOC, &d, "command-line").remove(0);
        let want: Vec<String> = documented
            .replace("[-ExecutionPolicy Bypass] ", "")
            .split_whitespace()
            .skip(1)
            .map(str::to_string)
            .collect();
        assert_eq!(fake.args(), want, "{DOC}: {documented}");
    }

    #[tokio::test]
    async fn bridge_product_reads_the_documented_module_missing_line() {
        let d = bridge_doc();
        let missing = marked_block(DOC, &d, "module-missing").remove(0);
        let fake = FakePwsh::new(&[doc_line("host", None), missing.clone()]);
        let status = Pwsh::new(fake.exe.clone(), T)
            .module_status()
            .await
            .unwrap();
        assert_eq!(status.module_version, None);
        assert_eq!(status.too_old, None);

        let older = missing.replace("\"found\":null", "\"found\":\"2.0.5\"");
        assert_ne!(older, missing);
        let fake = FakePwsh::new(&[doc_line("host", None), older]);
        let status = Pwsh::new(fake.exe.clone(), T)
            .module_status()
            .await
            .unwrap();
        assert_eq!(status.too_old.as_deref(), Some("2.0.5"));

        // In a session it stops everything with the module hint.
        let fake = FakePwsh::new(&[doc_line("host", None), missing]);
        let (_, t) = target(Cloud::Global);
        let ops = PwshExchange::new(
            Pwsh::new(fake.exe.clone(), T),
            t,
            ExchangeAuth::Device,
            Arc::new(Quiet),
        );
        let e = ops.org_config().await.unwrap_err();
        assert!(matches!(e, ExchangeError::ModuleMissing { .. }), "{e}");
    }

    #[tokio::test]
    async fn bridge_product_installs_on_the_documented_line() {
        let fake = FakePwsh::new(&[
            "Installing package 'ExchangeOnlineManagement'".to_string(),
            doc_line("install", None),
        ]);
        Pwsh::new(fake.exe.clone(), T)
            .install_module(&Quiet)
            .await
            .unwrap();
        assert_eq!(fake.stdin(), scripts::install_module());
    }

    #[tokio::test]
    async fn bridge_product_answers_every_step_from_the_documented_lines() {
        // The Onboard plan of a dehydrated organization, as the document's lines.
        let f = |v: bool| Some(serde_json::json!({ "unifiedAuditLogIngestionEnabled": v }));
        let fake = FakePwsh::new(&[
            doc_line("host", None),
            doc_line("module", None),
            "To sign in, use a web browser to open the page https://microsoft.com/devicelogin"
                .to_string(),
            doc_line("connect", None),
            doc_line("orgConfig", None), // isDehydrated: true
            doc_line("getUal", f(false)),
            doc_line("enableCustomization", None),
            doc_line("setUal", None),
            doc_line("getUal", f(true)),
            doc_line("done", None),
        ]);
        let (id, t) = target(Cloud::Global);
        let ops = PwshExchange::new(
            Pwsh::new(fake.exe.clone(), T),
            t,
            ExchangeAuth::Device,
            Arc::new(Quiet),
        );
        assert!(ops.org_config().await.unwrap().is_dehydrated);
        assert!(!ops.get_ual().await.unwrap());
        assert_eq!(
            ops.enable_customization().await.unwrap(),
            Customization::Enabled
        );
        ops.set_ual().await.unwrap();
        assert!(ops.get_ual().await.unwrap());
        assert_eq!(
            fake.stdin(),
            scripts::session(Connect::Device, Plan::Onboard)
        );

        // Device sign-in: the documented variables, and no token.
        let env = fake.env();
        assert_eq!(env["HAL_EXO_TENANT_ID"], id.to_string());
        assert_eq!(env["HAL_EXO_ORGANIZATION"], "contoso.onmicrosoft.com");
        assert_eq!(env["HAL_EXO_ENVIRONMENT"], "O365Default");
        assert!(!env.contains_key("HAL_EXO_ACCESS_TOKEN"));
        assert!(!env.contains_key("HAL_EXO_UPN"));
    }

    #[tokio::test]
    async fn bridge_product_sets_the_documented_variables_for_every_cloud() {
        let d = bridge_doc();
        let t = table(DOC, &d, "variable");
        let env_cell = t
            .column("variable")
            .iter()
            .position(|v| *v == "`HAL_EXO_ENVIRONMENT`")
            .map(|i| t.column("meaning")[i].to_string())
            .expect("HAL_EXO_ENVIRONMENT is documented");
        let documented_envs = code_spans(&env_cell);
        for cloud in <Cloud as clap::ValueEnum>::value_variants() {
            let fake = FakePwsh::new(&[
                doc_line("host", None),
                doc_line("module", None),
                doc_line("connect", None),
                doc_line("getUal", None),
                doc_line("done", None),
            ]);
            let (_, target) = target(*cloud);
            let ops = PwshExchange::new(
                Pwsh::new(fake.exe.clone(), T),
                target,
                ExchangeAuth::Token(ExchangeSignIn {
                    credential: Arc::new(StaticTokenCredential::new("the-access-token")),
                    upn: Some("tech@msp.example".into()),
                    delegated_organization: None,
                }),
                Arc::new(Quiet),
            );
            assert!(ops.get_ual().await.unwrap());
            assert_eq!(
                fake.stdin(),
                scripts::session(Connect::AccessToken { with_upn: true }, Plan::Verify)
            );
            let env = fake.env();
            let set: BTreeSet<&str> = env
                .keys()
                .map(String::as_str)
                .filter(|k| k.starts_with("HAL_EXO_"))
                .collect();
            let documented: BTreeSet<&str> = t
                .column("variable")
                .into_iter()
                .map(|c| c.trim_matches('`'))
                .filter(|c| *c != "HAL_EXO_DELEGATED_ORGANIZATION")
                .collect();
            assert_eq!(
                set, documented,
                "token sign-in with an account sets them all (but partner mode's)"
            );
            assert_eq!(env["HAL_EXO_ACCESS_TOKEN"], "the-access-token");
            assert_eq!(env["HAL_EXO_UPN"], "tech@msp.example");
            assert!(
                documented_envs.contains(&env["HAL_EXO_ENVIRONMENT"]),
                "{cloud:?}: {} is not one of {DOC}'s {documented_envs:?}",
                env["HAL_EXO_ENVIRONMENT"]
            );
        }
    }

    #[tokio::test]
    async fn bridge_product_connects_delegated_without_an_account() {
        let fake = FakePwsh::new(&[
            doc_line("host", None),
            doc_line("module", None),
            doc_line("connect", None),
            doc_line("getUal", None),
            doc_line("done", None),
        ]);
        let (_, target) = target(Cloud::Global);
        let ops = PwshExchange::new(
            Pwsh::new(fake.exe.clone(), T),
            target,
            ExchangeAuth::Token(ExchangeSignIn {
                credential: Arc::new(StaticTokenCredential::new("the-access-token")),
                upn: Some("ignored@msp.example".into()),
                delegated_organization: Some("contoso.onmicrosoft.com".into()),
            }),
            Arc::new(Quiet),
        );
        assert!(ops.get_ual().await.unwrap());
        assert_eq!(
            fake.stdin(),
            scripts::session(Connect::Delegated, Plan::Verify)
        );
        let env = fake.env();
        assert_eq!(
            env["HAL_EXO_DELEGATED_ORGANIZATION"],
            "contoso.onmicrosoft.com"
        );
        assert_eq!(env["HAL_EXO_ORGANIZATION"], "contoso.onmicrosoft.com");
        assert!(!env.contains_key("HAL_EXO_UPN"), "no -UserPrincipalName");
    }

    #[tokio::test]
    async fn bridge_product_names_both_organizations_when_the_session_is_elsewhere() {
        let line = Report::failure(
            "connect",
            protocol::ReportError {
                kind: "connect".into(),
                message: "connected to the wrong organization: msp.onmicrosoft.com, not contoso.onmicrosoft.com; nothing was changed".into(),
                ..Default::default()
            },
        )
        .to_line();
        let fake = FakePwsh::new(&[doc_line("host", None), doc_line("module", None), line]);
        let (_, target) = target(Cloud::Global);
        let ops = PwshExchange::new(
            Pwsh::new(fake.exe.clone(), T),
            target,
            ExchangeAuth::Token(ExchangeSignIn {
                credential: Arc::new(StaticTokenCredential::new("the-access-token")),
                upn: None,
                delegated_organization: Some("contoso.onmicrosoft.com".into()),
            }),
            Arc::new(Quiet),
        );
        match ops.get_ual().await.unwrap_err() {
            ExchangeError::WrongOrganization { found, expected } => {
                assert_eq!(found, "msp.onmicrosoft.com");
                assert_eq!(expected, "contoso.onmicrosoft.com");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn bridge_product_takes_a_wrong_tenant_as_not_signed_in() {
        // What the device check reports (section 4), with the connect catch's kind.
        let line = Report::failure(
            "connect",
            protocol::ReportError {
                kind: "connect".into(),
                message: "signed in to the wrong tenant: 11111111-1111-1111-1111-111111111111, not 22222222-2222-2222-2222-222222222222; nothing was changed".into(),
                category: "OperationStopped".into(),
                reason: "RuntimeException".into(),
                error_id: "signed in to the wrong tenant".into(),
                found: None,
            },
        )
        .to_line();
        let fake = FakePwsh::new(&[doc_line("host", None), doc_line("module", None), line]);
        let (_, t) = target(Cloud::Global);
        let ops = PwshExchange::new(
            Pwsh::new(fake.exe.clone(), T),
            t,
            ExchangeAuth::Device,
            Arc::new(Quiet),
        );
        let e = ops.org_config().await.unwrap_err();
        assert!(matches!(e, ExchangeError::NotSignedIn { .. }), "{e}");
        assert!(e.to_string().contains("wrong tenant"), "{e}");
    }
}

/// The module releases `doctor` warns about are the ones the document names, each with the
/// same public report as its source, and the other way round.
#[test]
fn bridge_known_bad_module_releases_are_the_documented_ones() {
    let d = bridge_doc();
    let t = table(DOC, &d, "version");
    let documented: BTreeMap<String, String> = t
        .column("version")
        .into_iter()
        .zip(t.column("source"))
        .map(|(v, s)| (v.to_string(), s.to_string()))
        .collect();
    let product: BTreeMap<String, String> = hal_onboard::microsoft::exchange::KNOWN_BAD_MODULES
        .iter()
        .map(|(v, _, s)| (v.to_string(), s.to_string()))
        .collect();
    assert_eq!(
        product, documented,
        "{DOC}: \"Releases known to break connections\""
    );
    for v in product.keys() {
        assert!(
            hal_onboard::microsoft::exchange::known_bad_module(v).is_some(),
            "{v} is warned about"
        );
    }
}
