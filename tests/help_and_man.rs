//! `--help`, `completions`, `man` and `doctor`'s hints, as a newcomer reads them.

use std::process::{Output, Stdio};

fn hal(args: &[&str]) -> Output {
    crate::support::hal_onboard_std()
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
        .env("NO_COLOR", "1")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn help_puts_global_options_under_their_own_heading() {
    for args in [
        &["--help"][..],
        &["tenant", "add", "--help"],
        &["list", "-h"],
    ] {
        let text = stdout(&hal(args));
        let (own, global) = text
            .split_once("Global options:")
            .unwrap_or_else(|| panic!("no Global options heading in {args:?}: {text}"));
        for g in ["--home", "--json", "--no-input", "--sandbox", "--cloud"] {
            assert!(
                !own.contains(g),
                "{g} outside Global options in {args:?}: {text}"
            );
            assert!(
                global.contains(g),
                "{g} under Global options in {args:?}: {text}"
            );
        }
    }
}

#[test]
fn completions_and_man_list_no_option_that_means_nothing_to_them() {
    for args in [&["completions", "--help"][..], &["man", "--help"]] {
        let text = stdout(&hal(args));
        assert!(text.contains("Usage: hal-onboard"), "{text}");
        for g in [
            "--home",
            "--json",
            "--no-input",
            "--sandbox",
            "--cloud",
            "--color",
        ] {
            assert!(!text.contains(g), "{g} in {args:?}: {text}");
        }
    }
    // And they still run.
    assert!(stdout(&hal(&["completions", "bash"])).contains("hal-onboard"));
}

#[test]
fn man_writes_a_page_for_every_see_also() {
    let dir = tempfile::tempdir().unwrap();
    let out = hal(&["man", "--out-dir", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let main = std::fs::read_to_string(dir.path().join("hal-onboard.1")).unwrap();
    for s in [
        "EXIT STATUS",
        "ENVIRONMENT",
        "FILES",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        assert!(
            main.contains(&format!(".SH \"{s}\"")),
            "{s} in the main page"
        );
    }
    assert!(main.contains("HAL_ONBOARD_HOME") && main.contains("130"));
    let mut refs = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let page = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        // Every `hal-onboard-x-y(1)` (roff escapes the dashes) names a page that exists.
        let plain = page.replace("\\-", "-");
        for (i, _) in plain.match_indices("hal-onboard-") {
            let name: String = plain[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if plain[i + name.len()..].starts_with("(1)") {
                refs += 1;
                assert!(
                    dir.path().join(format!("{name}.1")).exists(),
                    "{name}(1) is named but not written"
                );
            }
        }
    }
    assert!(refs > 10, "the pages name their subcommands ({refs})");
    assert!(dir.path().join("hal-onboard-tenant-add.1").exists());
    // Without --out-dir, the main page goes to stdout.
    assert!(stdout(&hal(&["man"])).contains(".SH \"EXIT STATUS\""));
}

#[test]
fn sandbox_scenario_has_a_description() {
    let text = stdout(&hal(&["--help"]));
    let line = text
        .lines()
        .skip_while(|l| !l.contains("--sandbox-scenario"))
        .nth(1)
        .unwrap_or_default();
    assert!(line.contains("scenario file"), "{text}");
    let main = stdout(&hal(&["man"]));
    let at = main.find("sandbox\\-scenario").unwrap();
    assert!(
        main[at..].contains("scenario file"),
        "described in the man page"
    );
}

/// `doctor` with no PowerShell and no portal: its hints name commands, not variables, and
/// never send the technician back to `doctor`.
#[test]
fn doctor_hints_name_commands() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::hal_onboard_std()
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
        .env("NO_COLOR", "1")
        .env("HAL_ONBOARD_PWSH", dir.path().join("no-such-pwsh"))
        .arg("--home")
        .arg(dir.path().join("home"))
        .arg("doctor")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("`hal-onboard portal login`"), "{all}");
    assert!(all.contains("--skip-exchange"), "{all}");
    for bad in ["HAL_PORTAL_URL", "HAL_ONBOARD_PWSH", "hal-onboard doctor"] {
        assert!(!all.contains(bad), "{bad} in doctor's output: {all}");
    }
}

/// Without a keyring, a command that keeps no secret says nothing about it (`portal status`
/// with the token from the environment used to warn).
#[test]
fn no_keyring_warning_when_no_secret_is_at_stake() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::hal_onboard_std()
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
        .env("NO_COLOR", "1")
        .env("HAL_PORTAL_URL", "https://127.0.0.1:9/")
        .env("HAL_PORTAL_TOKEN", "not-a-real-token")
        .arg("--home")
        .arg(dir.path().join("home"))
        .args(["portal", "status", "--offline"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("keyring"), "{stderr}");
}

/// `--sandbox` is throwaway only without `--home`: its help says how to keep one.
#[test]
fn sandbox_help_says_home_keeps_it() {
    let text = stdout(&hal(&["--help"]));
    let block: String = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("--sandbox"))
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(!block.contains("in a throwaway home"), "{block}");
    assert!(block.contains("--home"), "{block}");
}
