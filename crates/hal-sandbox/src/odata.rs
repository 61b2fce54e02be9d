//! The slice of OData query options Graph's directory objects accept: `$filter` with `eq`,
//! `startswith` and `any` lambdas joined by `and`; `$select`; `$top`; `$skiptoken`.

/// One `$filter` clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clause {
    /// `prop eq 'value'`
    Eq(String, String),
    /// `startswith(prop,'value')`
    StartsWith(String, String),
    /// `coll/any(x:x eq 'value')`
    AnyEq(String, String),
    /// `prop in ('a', 'b')`
    In(String, Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterError {
    /// Not OData at all (Graph: 400 BadRequest "Invalid filter clause").
    Syntax(String),
    /// Valid OData that Graph does not support on this property (400 Request_UnsupportedQuery).
    Unsupported(String),
}

/// Splits on ` and ` outside quotes (case-insensitive).
fn split_and(s: &str) -> Result<Vec<String>, FilterError> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut in_q = false;
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            in_q = !in_q;
        }
        if !in_q && c == ' ' {
            let rest: String = chars[i..].iter().take(5).collect();
            if rest.eq_ignore_ascii_case(" and ") {
                out.push(std::mem::take(&mut cur));
                i += 5;
                continue;
            }
            let rest4: String = chars[i..].iter().take(4).collect();
            if rest4.eq_ignore_ascii_case(" or ") {
                return Err(FilterError::Unsupported("or".into()));
            }
        }
        cur.push(c);
        i += 1;
    }
    if in_q {
        return Err(FilterError::Syntax(format!(
            "unterminated string literal in '{s}'"
        )));
    }
    out.push(cur);
    Ok(out.into_iter().map(|c| c.trim().to_string()).collect())
}

/// `'it''s'` → `it's`.
fn literal(s: &str) -> Result<String, FilterError> {
    let s = s.trim();
    if s.len() >= 2 && s.starts_with('\'') && s.ends_with('\'') {
        Ok(s[1..s.len() - 1].replace("''", "'"))
    } else {
        Err(FilterError::Syntax(format!(
            "expected a quoted string, found '{s}'"
        )))
    }
}

/// `('a', 'b')` → `[a, b]`.
fn literal_list(s: &str) -> Result<Vec<String>, FilterError> {
    let s = s.trim();
    let inner = s
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .ok_or_else(|| {
            FilterError::Syntax(format!("expected a parenthesised list, found '{s}'"))
        })?;
    let mut out = vec![];
    let mut cur = String::new();
    let mut in_q = false;
    for c in inner.chars() {
        if c == '\'' {
            in_q = !in_q;
        }
        if c == ',' && !in_q {
            out.push(literal(&cur)?);
            cur.clear();
        } else {
            cur.push(c);
        }
    }
    out.push(literal(&cur)?);
    Ok(out)
}

pub fn parse_filter(s: &str) -> Result<Vec<Clause>, FilterError> {
    let mut clauses = vec![];
    for part in split_and(s.trim())? {
        if part.is_empty() {
            return Err(FilterError::Syntax("empty clause".into()));
        }
        let lower = part.to_ascii_lowercase();
        if lower.starts_with("startswith(") && part.ends_with(')') {
            let inner = &part["startswith(".len()..part.len() - 1];
            let (prop, val) = inner
                .split_once(',')
                .ok_or_else(|| FilterError::Syntax(part.clone()))?;
            clauses.push(Clause::StartsWith(prop.trim().to_string(), literal(val)?));
        } else if let Some(i) = lower.find("/any(") {
            if !part.ends_with(')') {
                return Err(FilterError::Syntax(part.clone()));
            }
            let coll = part[..i].trim().to_string();
            let lambda = &part[i + 5..part.len() - 1];
            let (var, body) = lambda
                .split_once(':')
                .ok_or_else(|| FilterError::Syntax(part.clone()))?;
            let body = body.trim();
            let mut words = body.splitn(3, ' ');
            let (lhs, op, rhs) = (words.next(), words.next(), words.next());
            match (lhs, op, rhs) {
                (Some(l), Some(o), Some(r)) if l == var.trim() && o.eq_ignore_ascii_case("eq") => {
                    clauses.push(Clause::AnyEq(coll, literal(r)?))
                }
                (Some(_), Some(o), Some(_)) if !o.eq_ignore_ascii_case("eq") => {
                    return Err(FilterError::Unsupported(coll));
                }
                _ => return Err(FilterError::Syntax(part.clone())),
            }
        } else {
            let mut words = part.splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some(p), Some(o), Some(v)) if o.eq_ignore_ascii_case("eq") => {
                    clauses.push(Clause::Eq(p.to_string(), literal(v)?))
                }
                (Some(p), Some(o), Some(v)) if o.eq_ignore_ascii_case("in") => {
                    clauses.push(Clause::In(p.to_string(), literal_list(v)?))
                }
                (Some(p), Some(o), Some(_))
                    if ["ne", "gt", "ge", "lt", "le", "has"]
                        .contains(&o.to_ascii_lowercase().as_str()) =>
                {
                    return Err(FilterError::Unsupported(p.to_string()));
                }
                _ => {
                    if let Some(p) = part.split('(').next()
                        && part.contains('(')
                    {
                        // endswith(...), contains(...): functions Graph rejects here.
                        return Err(FilterError::Unsupported(p.trim().to_string()));
                    }
                    return Err(FilterError::Syntax(part.clone()));
                }
            }
        }
    }
    Ok(clauses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_graph_accepts() {
        assert_eq!(
            parse_filter("displayName eq 'hal-siem-log-collector' and tags/any(t:t eq 'hal')")
                .unwrap(),
            vec![
                Clause::Eq("displayName".into(), "hal-siem-log-collector".into()),
                Clause::AnyEq("tags".into(), "hal".into())
            ]
        );
        assert_eq!(
            parse_filter("startswith(displayName,'hal')").unwrap(),
            vec![Clause::StartsWith("displayName".into(), "hal".into())]
        );
        assert_eq!(
            parse_filter("appId in ('a', 'b')").unwrap(),
            vec![Clause::In("appId".into(), vec!["a".into(), "b".into()])]
        );
        assert_eq!(
            parse_filter("displayName eq 'O''Brien and sons'").unwrap(),
            vec![Clause::Eq("displayName".into(), "O'Brien and sons".into())]
        );
    }

    #[test]
    fn rejects_what_graph_rejects() {
        assert!(matches!(
            parse_filter("displayName eq hal"),
            Err(FilterError::Syntax(_))
        ));
        assert!(matches!(
            parse_filter("displayName ne 'x'"),
            Err(FilterError::Unsupported(_))
        ));
        assert!(matches!(
            parse_filter("endswith(displayName,'x')"),
            Err(FilterError::Unsupported(_))
        ));
        assert!(matches!(
            parse_filter("a eq 'x' or b eq 'y'"),
            Err(FilterError::Unsupported(_))
        ));
        assert!(matches!(
            parse_filter("displayName eq 'x"),
            Err(FilterError::Syntax(_))
        ));
    }
}
