//! The tenants to onboard from a file (`tenant add --from FILE`), one per CSV row: tenant,
//! display name.

use std::path::Path;

use super::TenantName;

/// One row of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRow {
    /// 1-based line number, for messages.
    pub line: usize,
    pub tenant: TenantName,
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
        let tenant: TenantName = match tenant.parse() {
            Ok(t) => t,
            Err(e) => {
                bad.push(BadRow {
                    line,
                    why: e.to_string(),
                });
                continue;
            }
        };
        if !seen.insert(tenant.as_str().to_lowercase()) {
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
                    tenant: "contoso.onmicrosoft.com".parse().unwrap(),
                    display_name: Some("Contoso, Ltd".into()),
                },
                BatchRow {
                    line: 6,
                    tenant: "6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b".parse().unwrap(),
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
}
