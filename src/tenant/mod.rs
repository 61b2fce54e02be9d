//! Naming a customer's tenant: a verified domain (`contoso.onmicrosoft.com`) or its GUID.

pub mod batch;

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

#[cfg(test)]
mod tests {
    use super::*;

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
