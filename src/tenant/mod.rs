//! Naming a customer's tenant: a verified domain (`contoso.onmicrosoft.com`) or its GUID.

pub mod batch;

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// A customer's tenant as the technician names it for `tenant add`: a verified domain
/// (`contoso.onmicrosoft.com`) or the tenant ID (a GUID). Parsed once, where it comes in (the
/// command line, the prompt, a `--from` file); kept as typed, for messages and the sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantName {
    text: String,
    id: Option<Uuid>,
}

/// Text that names no tenant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TenantNameError(pub String);

impl fmt::Display for TenantNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is neither a domain (contoso.onmicrosoft.com) nor a tenant ID (GUID)",
            self.0
        )?;
        match self.suggestion() {
            Some(s) => write!(f, "; did you mean {s}?"),
            None => Ok(()),
        }
    }
}

impl TenantNameError {
    /// What the technician probably meant: an email address's domain, a bare word's
    /// `.onmicrosoft.com` domain.
    pub fn suggestion(&self) -> Option<String> {
        let t = self.0.trim();
        let candidate = match t.rsplit_once('@') {
            Some((_, domain)) => domain.to_string(),
            None if !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => {
                format!("{}.onmicrosoft.com", t.to_ascii_lowercase())
            }
            None => return None,
        };
        candidate.parse::<TenantName>().ok().map(|n| n.to_string())
    }
}

impl TenantName {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The tenant ID, when the tenant was named by it.
    pub fn id(&self) -> Option<Uuid> {
        self.id
    }
}

impl FromStr for TenantName {
    type Err = TenantNameError;

    fn from_str(s: &str) -> Result<TenantName, TenantNameError> {
        let text = s.trim();
        if let Ok(id) = Uuid::parse_str(text) {
            return Ok(TenantName {
                text: text.to_string(),
                id: Some(id),
            });
        }
        let labels: Vec<&str> = text.split('.').collect();
        let domain = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if domain {
            Ok(TenantName {
                text: text.to_string(),
                id: None,
            })
        } else {
            Err(TenantNameError(text.to_string()))
        }
    }
}

impl From<Uuid> for TenantName {
    fn from(id: Uuid) -> TenantName {
        TenantName {
            text: id.to_string(),
            id: Some(id),
        }
    }
}

impl fmt::Display for TenantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> bool {
        s.parse::<TenantName>().is_ok()
    }

    #[test]
    fn tenant_names() {
        assert!(ok("contoso.onmicrosoft.com"));
        assert!(ok("a-b.example.co.uk"));
        assert!(!ok("contoso"));
        assert!(!ok("-bad.com"));
        assert!(!ok("a..com"));
        assert!(!ok("https://contoso.com"));
    }

    #[test]
    fn a_name_is_kept_as_typed_and_a_guid_is_known() {
        let n: TenantName = "  Contoso.com ".parse().unwrap();
        assert_eq!((n.as_str(), n.id()), ("Contoso.com", None));
        let g: TenantName = "6F1C2A8E-3B4D-4E5F-8A9B-0C1D2E3F4A5B".parse().unwrap();
        assert_eq!(g.to_string(), "6F1C2A8E-3B4D-4E5F-8A9B-0C1D2E3F4A5B");
        assert_eq!(
            g.id(),
            Some(Uuid::parse_str("6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b").unwrap())
        );
        assert_eq!(
            "contoso".parse::<TenantName>().unwrap_err().to_string(),
            "\"contoso\" is neither a domain (contoso.onmicrosoft.com) nor a tenant ID (GUID); did you mean contoso.onmicrosoft.com?"
        );
    }

    #[test]
    fn an_email_or_a_bare_word_suggests_a_domain() {
        let e = |s: &str| s.parse::<TenantName>().unwrap_err().suggestion();
        assert_eq!(e("admin@Contoso.com").as_deref(), Some("Contoso.com"));
        assert_eq!(e("fabrikam").as_deref(), Some("fabrikam.onmicrosoft.com"));
        assert_eq!(e("https://contoso.com"), None);
        assert_eq!(e("a..com"), None);
    }
}
