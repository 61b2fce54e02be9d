//! Shared by the contract_* tests: reading the documents in docs/ that the code is held to
//! (tables, marked code blocks), and a fake PowerShell that prints lines the test took from
//! those documents and keeps what hal-onboard gave it (arguments, stdin, environment).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The text of `docs/<name>`.
pub fn doc(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A Markdown table: its header cells and rows of cells (trimmed, `\|` unescaped).
#[derive(Debug)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// The cells of column `name` (a header cell, exactly).
    pub fn column(&self, name: &str) -> Vec<&str> {
        let i = self
            .header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("the table {:?} has no column {name:?}", self.header));
        self.rows.iter().map(|r| r[i].as_str()).collect()
    }
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner
        .replace("\\|", "\u{0}")
        .split('|')
        .map(|c| c.replace('\u{0}', "|").trim().to_string())
        .collect()
}

/// The one table in `doc` whose header starts with the cell `first` (exactly). Panics, naming
/// `doc_name`, when there is none or more than one.
pub fn table(doc_name: &str, doc: &str, first: &str) -> Table {
    let lines: Vec<&str> = doc.lines().collect();
    let mut found = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let starts_table = l.trim_start().starts_with('|')
            && (i == 0 || !lines[i - 1].trim_start().starts_with('|'));
        if starts_table && cells(l).first().map(String::as_str) == Some(first) {
            let header = cells(l);
            let rows: Vec<Vec<String>> = lines[i + 2..]
                .iter()
                .take_while(|r| r.trim_start().starts_with('|'))
                .map(|r| cells(r))
                .collect();
            for r in &rows {
                assert_eq!(
                    r.len(),
                    header.len(),
                    "{doc_name}: a row of the table {first:?} has {} cells, its header {}: {r:?}",
                    r.len(),
                    header.len()
                );
            }
            found.push(Table { header, rows });
        }
    }
    assert_eq!(
        found.len(),
        1,
        "{doc_name} must have exactly one table whose first header cell is {first:?}"
    );
    found.pop().expect("one")
}

/// The text inside backticks in `cell`, in order.
pub fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_string())
        .collect()
}

/// The lines (trimmed) of the fenced code block right after `<!-- contract:{marker} -->`.
pub fn marked_block(doc_name: &str, doc: &str, marker: &str) -> Vec<String> {
    let tag = format!("<!-- contract:{marker} -->");
    let mut lines = doc.lines().skip_while(|l| l.trim() != tag);
    assert!(
        lines.next().is_some(),
        "{doc_name} has no {tag} (the test reads the code block after it)"
    );
    let mut lines = lines.skip_while(|l| l.trim().is_empty());
    assert!(
        lines.next().is_some_and(|l| l.trim().starts_with("```")),
        "{doc_name}: {tag} must be followed by a fenced code block"
    );
    let block: Vec<String> = lines
        .take_while(|l| l.trim() != "```")
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    assert!(
        !block.is_empty(),
        "{doc_name}: the block after {tag} is empty"
    );
    block
}

/// A PowerShell that ignores its script and prints `stdout`, keeping its arguments, stdin and
/// environment for the test to read. Each one is a symlink to one shared shell script (written
/// once per test binary, before any child starts, so no child can be started while the script
/// is still open for writing: "text file busy").
#[cfg(unix)]
pub struct FakePwsh {
    pub dir: tempfile::TempDir,
    pub exe: PathBuf,
}

#[cfg(unix)]
fn shared_script() -> &'static Path {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::OnceLock;
    static SCRIPT: OnceLock<PathBuf> = OnceLock::new();
    SCRIPT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let path = dir.join("fake-pwsh.sh");
        std::fs::write(
            &path,
            "#!/bin/sh\nd=$(dirname \"$0\")\nprintf '%s\\n' \"$@\" > \"$d/args.txt\"\ncat > \"$d/stdin.ps1\"\nenv -0 > \"$d/env.bin\"\ncat \"$d/stdout.txt\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    })
}

#[cfg(unix)]
impl FakePwsh {
    pub fn new(stdout: &[String]) -> FakePwsh {
        let script = shared_script();
        let dir = tempfile::tempdir().unwrap();
        let mut out = stdout.join("\n");
        out.push('\n');
        std::fs::write(dir.path().join("stdout.txt"), out).unwrap();
        let exe = dir.path().join("pwsh");
        std::os::unix::fs::symlink(script, &exe).unwrap();
        FakePwsh { dir, exe }
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name))
            .unwrap_or_else(|e| panic!("the fake PowerShell did not write {name}: {e}"))
    }

    /// The arguments it was started with.
    pub fn args(&self) -> Vec<String> {
        self.read("args.txt").lines().map(str::to_string).collect()
    }

    /// The script it read on stdin.
    pub fn stdin(&self) -> String {
        self.read("stdin.ps1")
    }

    /// Its environment.
    pub fn env(&self) -> std::collections::BTreeMap<String, String> {
        self.read("env.bin")
            .split('\0')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}
