//! `tenant add --from FILE`: the tenants to onboard, one per CSV row (tenant, display name).

use std::path::Path;

/// One row of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRow {
    /// 1-based line number, for messages.
    pub line: usize,
    pub tenant: String,
    pub display_name: Option<String>,
}

/// A line that cannot be used, reported and skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub line: usize,
    pub why: String,
}

/// Reads the file: `tenant[,display name]` per row, an optional header row, `#` comments.
pub fn read(path: &Path) -> std::io::Result<(Vec<BatchRow>, Vec<BadRow>)> {
    let text = std::fs::read_to_string(path)?;
    Ok(parse(&text))
}

pub fn parse(text: &str) -> (Vec<BatchRow>, Vec<BadRow>) {
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // Row by row, so line numbers in messages are the file's own (comments and blank lines
    // included); a tenant row never spans lines.
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(trimmed.as_bytes());
        let rec = match rdr.records().next() {
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                bad.push(BadRow {
                    line,
                    why: format!("not a CSV row ({e})"),
                });
                continue;
            }
            None => continue,
        };
        let tenant = rec.get(0).unwrap_or("").to_string();
        if rows.is_empty() && bad.is_empty() && tenant.eq_ignore_ascii_case("tenant") {
            continue; // the header
        }
        if tenant.is_empty() {
            if rec.iter().all(str::is_empty) {
                continue;
            }
            bad.push(BadRow {
                line,
                why: "no tenant in the first column".into(),
            });
            continue;
        }
        if rec.len() > 2 {
            bad.push(BadRow {
                line,
                why: format!("{} columns; expected tenant, display name", rec.len()),
            });
            continue;
        }
        if !is_tenant_name(&tenant) {
            bad.push(BadRow {
                line,
                why: format!("{tenant:?} is neither a domain nor a tenant GUID"),
            });
            continue;
        }
        if !seen.insert(tenant.to_lowercase()) {
            bad.push(BadRow {
                line,
                why: format!("{tenant} is listed twice"),
            });
            continue;
        }
        rows.push(BatchRow {
            line,
            tenant,
            display_name: rec.get(1).filter(|s| !s.is_empty()).map(str::to_string),
        });
    }
    (rows, bad)
}

/// A verified domain (`contoso.onmicrosoft.com`) or a GUID.
pub fn is_tenant_name(s: &str) -> bool {
    if uuid::Uuid::parse_str(s).is_ok() {
        return true;
    }
    let labels: Vec<&str> = s.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// `tenant add --from FILE`: each tenant in turn, each sign-in prompted as it comes, a
/// summary at the end. Exit status: 1 if any row failed or was unusable, else 3 if any tenant
/// waits on Microsoft, else 0.
pub fn run(
    ctx: &crate::commands::Ctx,
    args: &super::add::AddArgs,
    file: &Path,
) -> crate::error::CommandResult {
    use crate::error::{CommandError, ExitStatus, user_error};
    let ui = &ctx.ui;
    let (rows, bad) = read(file).map_err(|e| {
        user_error(format!("cannot read {}", file.display()))
            .with_source(e)
            .hint("Give a CSV file with one tenant per row: tenant, display name.")
    })?;
    for b in &bad {
        ui.warning(format!("{}:{}: skipped: {}", file.display(), b.line, b.why));
    }
    if rows.is_empty() {
        return Err(
            user_error(format!("{} lists no tenant to onboard", file.display()))
                .hint("Each row: a verified domain or tenant ID, then optionally a display name."),
        );
    }
    let mut results: Vec<(String, Result<crate::store::TenantRecord, CommandError>)> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        ui.status("");
        ui.status(ui.bold(format!(
            "── Tenant {} of {}: {}",
            i + 1,
            rows.len(),
            row.tenant
        )));
        let r = super::add::onboard(ctx, args, &row.tenant, row.display_name.as_deref());
        if let Err(e) = &r {
            ui.error(e);
        }
        results.push((row.tenant.clone(), r));
    }

    let mut failed = bad.len();
    let mut waiting = 0;
    let mut out = Vec::new();
    ui.status("");
    ui.status(ui.bold("Summary"));
    for (tenant, r) in &results {
        let (result, detail) = match r {
            Ok(_) => ("onboarded", String::new()),
            Err(e) if e.status == ExitStatus::Waiting => {
                waiting += 1;
                ("waiting", e.message.clone())
            }
            Err(e) => {
                failed += 1;
                ("failed", e.message.clone())
            }
        };
        ui.status(format!("  {tenant:<40} {result:<10} {}", ui.dim(&detail)));
        out.push(serde_json::json!({"tenant": tenant, "result": result, "message": detail}));
    }
    for b in &bad {
        ui.status(format!(
            "  {:<40} {:<10} {}",
            format!("line {}", b.line),
            "skipped",
            ui.dim(&b.why)
        ));
        out.push(serde_json::json!({"line": b.line, "result": "skipped", "message": b.why}));
    }
    if ui.json() {
        ui.write_json(&out)?;
    }
    if failed > 0 {
        Err(crate::error::failed(format!(
            "{failed} of {} rows did not finish",
            results.len() + bad.len()
        ))
        .hint("Fix what each error says, then run the same command again: finished tenants are skipped quickly."))
    } else if waiting > 0 {
        Err(crate::error::waiting(format!(
            "{waiting} tenants wait on Microsoft for unified audit logging"
        ))
        .hint("Run `hal-onboard ual retry --watch` to finish them."))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_comments_quotes_and_bad_lines() {
        let text = "tenant,display name\n\
                    # onboard these first\n\
                    contoso.onmicrosoft.com,\"Contoso, Ltd\"\n\
                    \n\
                    not a domain,Bad\n\
                    6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b\n\
                    fabrikam.com,Fabrikam,extra\n\
                    CONTOSO.onmicrosoft.com,again\n";
        let (rows, bad) = parse(text);
        assert_eq!(
            rows,
            vec![
                BatchRow {
                    line: 3,
                    tenant: "contoso.onmicrosoft.com".into(),
                    display_name: Some("Contoso, Ltd".into()),
                },
                BatchRow {
                    line: 6,
                    tenant: "6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b".into(),
                    display_name: None,
                },
            ]
        );
        let lines: Vec<usize> = bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![5, 7, 8], "{bad:?}");
        assert!(bad[0].why.contains("neither a domain"));
        assert!(bad[1].why.contains("3 columns"));
        assert!(bad[2].why.contains("twice"));
    }

    #[test]
    fn tenant_names() {
        assert!(is_tenant_name("contoso.onmicrosoft.com"));
        assert!(is_tenant_name("a-b.example.co.uk"));
        assert!(!is_tenant_name("contoso"));
        assert!(!is_tenant_name("-bad.com"));
        assert!(!is_tenant_name("a..com"));
        assert!(!is_tenant_name("https://contoso.com"));
    }
}
