//! The PowerShell scripts hal-onboard runs. Fixed text: every value (token, organization,
//! account, environment) reaches PowerShell through the child's environment (`$env:HAL_EXO_*`),
//! so nothing a technician typed is ever spliced into code, and no secret is on a command line.
//!
//! Each script is one `& { … }` block followed by two blank lines: `-Command -` reads stdin like
//! an interactive prompt, statement by statement, and only a blank line ends a multi-line
//! statement (PowerShell issue #3223).

/// Environment variables the scripts read.
pub mod env {
    /// The Exchange Online access token (secret; scrubbed from everything we keep).
    pub const ACCESS_TOKEN: &str = "HAL_EXO_ACCESS_TOKEN";
    /// The tenant's primary domain, for `-Organization`.
    pub const ORGANIZATION: &str = "HAL_EXO_ORGANIZATION";
    /// The tenant ID (informational; the stand-in uses it for `-Device`).
    pub const TENANT_ID: &str = "HAL_EXO_TENANT_ID";
    /// The technician's account, for `-UserPrincipalName`.
    pub const UPN: &str = "HAL_EXO_UPN";
    /// `-ExchangeEnvironmentName`, e.g. `O365Default`.
    pub const ENVIRONMENT: &str = "HAL_EXO_ENVIRONMENT";
    /// `-DelegatedOrganization` (partner mode): the customer's initial domain or tenant ID.
    pub const DELEGATED_ORGANIZATION: &str = "HAL_EXO_DELEGATED_ORGANIZATION";
}

/// How `Connect-ExchangeOnline` signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connect {
    /// `-AccessToken $env:HAL_EXO_ACCESS_TOKEN -Organization …`, plus `-UserPrincipalName` when
    /// the account is known.
    AccessToken { with_upn: bool },
    /// `-Device`: the module prints a code and a URL; the person signs in in a browser.
    Device,
    /// Partner mode: `-AccessToken … -DelegatedOrganization …` (a partner technician's token
    /// issued at the customer's authority), then a check that the session acts on the
    /// organization asked for (`HAL_EXO_ORGANIZATION`) before anything else runs.
    Delegated,
}

/// Which cmdlets a session runs after connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The guide's Step 1: Get-OrganizationConfig, Get-AdminAuditLogConfig; then, only if
    /// ingestion is off: Enable-OrganizationCustomization when dehydrated,
    /// Set-AdminAuditLogConfig, Get-AdminAuditLogConfig.
    Onboard,
    /// Set-AdminAuditLogConfig, then Get-AdminAuditLogConfig (also after a failed Set).
    Retry,
    /// Get-OrganizationConfig only.
    OrgConfig,
    /// Enable-OrganizationCustomization only.
    EnableCustomization,
    /// Get-AdminAuditLogConfig only.
    Verify,
}

impl Plan {
    pub const ALL: [Plan; 5] = [
        Plan::Onboard,
        Plan::Retry,
        Plan::OrgConfig,
        Plan::EnableCustomization,
        Plan::Verify,
    ];
}

const PRELUDE: &str = r#"& {
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
[Console]::OutputEncoding = [System.Text.Encoding]::UTF8
function Send-HalResult {
    param([string]$Op, [bool]$Ok, $Data = $null, $Failure = $null)
    $result = [ordered]@{ op = $Op; ok = $Ok }
    if ($null -ne $Data) { $result.data = $Data }
    if ($null -ne $Failure) { $result.error = $Failure }
    [Console]::Out.WriteLine('##hal-result ' + (ConvertTo-Json -InputObject $result -Compress -Depth 6))
}
function ConvertTo-HalFailure {
    param($Record, [string]$Kind)
    [ordered]@{
        kind = $Kind
        message = [string]$Record.Exception.Message
        category = [string]$Record.CategoryInfo.Category
        reason = [string]$Record.CategoryInfo.Reason
        errorId = [string]$Record.FullyQualifiedErrorId
    }
}
Send-HalResult -Op 'host' -Ok $true -Data ([ordered]@{ psVersion = [string]$PSVersionTable.PSVersion; edition = [string]$PSVersionTable.PSEdition })
$module = Get-Module -ListAvailable -Name ExchangeOnlineManagement | Sort-Object -Property Version -Descending | Select-Object -First 1
if ($null -eq $module -or $module.Version -lt [version]'3.1.0') {
    $found = $null
    if ($null -ne $module) { $found = [string]$module.Version }
    Send-HalResult -Op 'module' -Ok $false -Failure ([ordered]@{ kind = 'moduleMissing'; message = 'ExchangeOnlineManagement 3.1 or later is not installed'; found = $found })
    return
}
Send-HalResult -Op 'module' -Ok $true -Data ([ordered]@{ version = [string]$module.Version; path = [string]$module.ModuleBase })
"#;

const END: &str = r#"Send-HalResult -Op 'done' -Ok $true
}

"#;

/// Reports PowerShell's version and the newest ExchangeOnlineManagement installed.
pub fn module_check() -> String {
    format!("{PRELUDE}{END}")
}

/// Installs ExchangeOnlineManagement for the current user (no administrator rights needed).
/// `-Force` answers the untrusted-repository and NuGet-provider prompts, which cannot be
/// answered under `-NonInteractive`: the person already said yes in hal-onboard.
pub fn install_module() -> String {
    INSTALL.to_string()
}

const INSTALL: &str = r#"& {
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
[Console]::OutputEncoding = [System.Text.Encoding]::UTF8
try {
    Install-Module -Name ExchangeOnlineManagement -Scope CurrentUser -MinimumVersion 3.1.0 -Force -AllowClobber -ErrorAction Stop
    [Console]::Out.WriteLine('##hal-result {"op":"install","ok":true}')
} catch {
    $failure = [ordered]@{ op = 'install'; ok = $false; error = [ordered]@{ kind = 'cmdlet'; message = [string]$_.Exception.Message; category = [string]$_.CategoryInfo.Category; reason = [string]$_.CategoryInfo.Reason; errorId = [string]$_.FullyQualifiedErrorId } }
    [Console]::Out.WriteLine('##hal-result ' + (ConvertTo-Json -InputObject $failure -Compress -Depth 6))
}
}

"#;

fn connect_block(connect: Connect) -> String {
    let call = match connect {
        Connect::AccessToken { with_upn } => format!(
            "Connect-ExchangeOnline -AccessToken $env:{} -Organization $env:{}{} -ExchangeEnvironmentName $env:{} -ShowBanner:$false -ErrorAction Stop",
            env::ACCESS_TOKEN,
            env::ORGANIZATION,
            if with_upn {
                format!(" -UserPrincipalName $env:{}", env::UPN)
            } else {
                String::new()
            },
            env::ENVIRONMENT
        ),
        // `-Device` signs in whoever the person picks: check the organization connected to is
        // the tenant asked for before anything runs in it.
        Connect::Device => format!(
            "Connect-ExchangeOnline -Device -ExchangeEnvironmentName $env:{env} -ShowBanner:$false -ErrorAction Stop
    $halConnection = Get-ConnectionInformation -ErrorAction SilentlyContinue | Select-Object -First 1
    if ($halConnection -and ([string]$halConnection.TenantID) -ne $env:{tid}) {{ Disconnect-ExchangeOnline -Confirm:$false -ErrorAction SilentlyContinue; throw ('signed in to the wrong tenant: ' + [string]$halConnection.TenantID + ', not ' + $env:{tid} + '; nothing was changed') }}",
            env = env::ENVIRONMENT,
            tid = env::TENANT_ID
        ),
        // An access token with -DelegatedOrganization has been reported to act silently on
        // the partner's own organization: read which organization the session is in
        // (Get-OrganizationConfig's Name and Identity are the initial domain) and stop before
        // any change when it is not the customer's.
        Connect::Delegated => format!(
            "Connect-ExchangeOnline -AccessToken $env:{token} -DelegatedOrganization $env:{delegated} -ExchangeEnvironmentName $env:{env} -ShowBanner:$false -ErrorAction Stop
    $halOrg = Get-OrganizationConfig -ErrorAction Stop
    if ($halOrg.Name -ne $env:{org} -and $halOrg.Identity -ne $env:{org}) {{
        Disconnect-ExchangeOnline -Confirm:$false -ErrorAction SilentlyContinue
        throw ('connected to the wrong organization: ' + [string]$halOrg.Name + ', not ' + $env:{org} + '; nothing was changed')
    }}",
            token = env::ACCESS_TOKEN,
            delegated = env::DELEGATED_ORGANIZATION,
            env = env::ENVIRONMENT,
            org = env::ORGANIZATION
        ),
    };
    format!(
        r#"try {{
    Import-Module -Name ExchangeOnlineManagement -MinimumVersion 3.1.0 -ErrorAction Stop
    {call}
    Send-HalResult -Op 'connect' -Ok $true
}} catch {{
    Send-HalResult -Op 'connect' -Ok $false -Failure (ConvertTo-HalFailure $_ 'connect')
    return
}}
"#
    )
}

const ORG_CONFIG: &str = r#"    try {
        $org = Get-OrganizationConfig -ErrorAction Stop
        Send-HalResult -Op 'orgConfig' -Ok $true -Data ([ordered]@{ isDehydrated = [bool]$org.IsDehydrated })
    } catch {
        Send-HalResult -Op 'orgConfig' -Ok $false -Failure (ConvertTo-HalFailure $_ 'cmdlet')
        return
    }
"#;

const ENABLE: &str = r#"    try {
        Enable-OrganizationCustomization -ErrorAction Stop
        Send-HalResult -Op 'enableCustomization' -Ok $true
    } catch {
        Send-HalResult -Op 'enableCustomization' -Ok $false -Failure (ConvertTo-HalFailure $_ 'cmdlet')
    }
"#;

const SET_UAL: &str = r#"    try {
        Set-AdminAuditLogConfig -UnifiedAuditLogIngestionEnabled $true -ErrorAction Stop
        Send-HalResult -Op 'setUal' -Ok $true
    } catch {
        Send-HalResult -Op 'setUal' -Ok $false -Failure (ConvertTo-HalFailure $_ 'cmdlet')
    }
"#;

const GET_UAL: &str = r#"    try {
        $audit = Get-AdminAuditLogConfig -ErrorAction Stop
        Send-HalResult -Op 'getUal' -Ok $true -Data ([ordered]@{ unifiedAuditLogIngestionEnabled = [bool]$audit.UnifiedAuditLogIngestionEnabled })
    } catch {
        Send-HalResult -Op 'getUal' -Ok $false -Failure (ConvertTo-HalFailure $_ 'cmdlet')
    }
"#;

/// Indents a block by four more spaces.
fn nest(block: &str) -> String {
    block
        .lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("    {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// One session: check the module, connect once, run the plan's cmdlets, disconnect.
pub fn session(connect: Connect, plan: Plan) -> String {
    let body = match plan {
        Plan::Onboard => {
            let inner = format!(
                "    if ($org.IsDehydrated) {{\n{}    }}\n{SET_UAL}{GET_UAL}",
                nest(ENABLE)
            );
            format!(
                "{ORG_CONFIG}{GET_UAL}    if (-not $audit.UnifiedAuditLogIngestionEnabled) {{\n{}    }}\n",
                nest(&inner)
            )
        }
        Plan::Retry => format!("{SET_UAL}{GET_UAL}"),
        Plan::OrgConfig => ORG_CONFIG.to_string(),
        Plan::EnableCustomization => ENABLE.to_string(),
        Plan::Verify => GET_UAL.to_string(),
    };
    format!(
        "{PRELUDE}{}try {{\n{body}}} finally {{\n    Disconnect-ExchangeOnline -Confirm:$false -ErrorAction SilentlyContinue | Out-Null\n}}\n{END}",
        connect_block(connect)
    )
}

/// Every script the bridge can emit, named, for the parser test and the docs.
pub fn all() -> Vec<(String, String)> {
    let mut out = vec![
        ("module_check".to_string(), module_check()),
        ("install_module".to_string(), install_module()),
    ];
    for connect in [
        Connect::AccessToken { with_upn: true },
        Connect::AccessToken { with_upn: false },
        Connect::Device,
        Connect::Delegated,
    ] {
        for plan in Plan::ALL {
            out.push((
                format!("session {connect:?} {plan:?}"),
                session(connect, plan),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_one_block_ending_in_blank_lines() {
        for (name, s) in all() {
            assert!(s.starts_with("& {\n"), "{name}");
            assert!(s.ends_with("}\n\n"), "{name}");
            let opens = s.matches('{').count();
            let closes = s.matches('}').count();
            assert_eq!(opens, closes, "{name}: braces balance");
            assert!(!s.contains("eyJ"), "{name}: no token in the text");
        }
    }

    #[test]
    fn onboard_runs_the_guides_cmdlets_in_order() {
        let s = session(Connect::AccessToken { with_upn: true }, Plan::Onboard);
        let pos = |needle: &str| s.find(needle).unwrap_or_else(|| panic!("{needle}"));
        assert!(
            pos("Connect-ExchangeOnline -AccessToken $env:HAL_EXO_ACCESS_TOKEN")
                < pos("Get-OrganizationConfig")
        );
        assert!(pos("Get-OrganizationConfig") < pos("Enable-OrganizationCustomization"));
        assert!(pos("Enable-OrganizationCustomization") < pos("Set-AdminAuditLogConfig"));
        assert!(s.contains("-UserPrincipalName $env:HAL_EXO_UPN"));
        assert!(s.contains("-ExchangeEnvironmentName $env:HAL_EXO_ENVIRONMENT"));
        let device = session(Connect::Device, Plan::Retry);
        assert!(device.contains("Connect-ExchangeOnline -Device"));
        assert!(!device.contains("AccessToken"));
    }
}
