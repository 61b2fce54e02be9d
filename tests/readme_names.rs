//! The public names (issue contracts) are documented where a technician looks: every global
//! option in README's "Global options", every variable hal-onboard reads in its Environment
//! table, and every option of every command in README or docs/.

use std::path::Path;

fn read(p: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(p)).unwrap()
}

fn readme_section(readme: &str, start: &str, end: &str) -> String {
    let i = readme
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} in README"));
    let j = readme[i..].find(end).map_or(readme.len(), |j| i + j);
    readme[i..j].to_string()
}

#[test]
fn every_global_option_and_variable_is_in_the_readme() {
    let readme = read("README.md");
    let globals = readme_section(&readme, "Global options:", "## ");
    let env_table = readme_section(&readme, "## Environment", "\n## ");
    let cmd = hal_onboard::cli::Cli::command_tree();
    let mut missing = Vec::new();
    let mut seen = 0;
    for a in cmd.get_arguments() {
        if !a.is_global_set() {
            continue;
        }
        seen += 1;
        if let Some(l) = a.get_long()
            && !globals.contains(&format!("`--{l}"))
        {
            missing.push(format!("--{l} (Global options)"));
        }
    }
    assert!(seen >= 6, "the global options are found: {seen}");
    // The variables hal-onboard reads, as declared in config.rs.
    let config = read("src/config.rs");
    let vars: Vec<&str> = config
        .lines()
        .filter(|l| l.starts_with("pub const ENV_"))
        .filter_map(|l| l.split('"').nth(1))
        .collect();
    assert!(vars.len() >= 10, "the variables are found: {vars:?}");
    for v in vars {
        if !env_table.contains(&format!("`{v}`")) {
            missing.push(format!("{v} (Environment)"));
        }
    }
    // Every long option of every command is named somewhere a technician reads.
    let docs: String = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs"))
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
        .collect();
    let all = format!("{readme}{docs}");
    fn walk(c: &clap::Command, all: &str, missing: &mut Vec<String>) {
        for a in c.get_arguments() {
            if let Some(l) = a.get_long()
                && l != "help"
                && !all.contains(&format!("--{l}"))
            {
                missing.push(format!("{} --{l}", c.get_name()));
            }
        }
        for s in c.get_subcommands() {
            walk(s, all, missing);
        }
    }
    walk(&cmd, &all, &mut missing);
    assert!(missing.is_empty(), "undocumented public names: {missing:?}");
}
