//! docs/powershell-bridge.md section 2: the variables that hold other secrets are removed from
//! the PowerShell child's environment. A test binary of its own, with one test: it sets those
//! variables in this process (which is only sound while no other thread runs), then starts the
//! product's PowerShell and reads the child's environment.

use crate::support::contract as contract_support;

#[cfg(unix)]
#[test]
fn bridge_child_environment_lacks_the_documented_secrets() {
    use std::time::Duration;

    use contract_support::{FakePwsh, doc, table};
    use hal_onboard::microsoft::exchange::protocol::{Report, op};
    use hal_onboard::microsoft::exchange::{Pwsh, Quiet};

    const DOC: &str = "docs/powershell-bridge.md";
    let d = doc("powershell-bridge.md");
    let removed: Vec<String> = table(DOC, &d, "removed variable")
        .column("removed variable")
        .iter()
        .map(|c| c.trim_matches('`').to_string())
        .collect();
    assert!(!removed.is_empty());
    let control = "HAL_CONTRACT_CONTROL";
    // SAFETY: this binary's only test, before it starts any thread or child process.
    unsafe {
        for name in &removed {
            std::env::set_var(name, "inherited-secret-value");
        }
        std::env::set_var(control, "inherited");
    }

    let fake = FakePwsh::new(&[Report::success(op::INSTALL, serde_json::Value::Null).to_line()]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        Pwsh::new(fake.exe.clone(), Duration::from_secs(30))
            .install_module(&Quiet)
            .await
            .unwrap();
    });
    let env = fake.env();
    assert_eq!(
        env.get(control).map(String::as_str),
        Some("inherited"),
        "the child inherits the rest of the environment"
    );
    for name in &removed {
        assert!(
            !env.contains_key(name),
            "{name} reached PowerShell, but {DOC} says it is removed"
        );
    }
}
