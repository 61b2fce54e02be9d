//! Every script the Exchange bridge can emit parses as PowerShell, with no ERROR or MISSING
//! node, by the tree-sitter PowerShell grammar (no PowerShell needed on the test machine).

use hal_onboard::microsoft::exchange::scripts;

fn problems(node: tree_sitter::Node, src: &str, out: &mut Vec<String>) {
    if node.is_error() || node.is_missing() {
        let start = node.start_position();
        let text = &src[node.byte_range()];
        out.push(format!(
            "{} at line {} col {}: {:?}",
            if node.is_missing() {
                "MISSING"
            } else {
                "ERROR"
            },
            start.row + 1,
            start.column + 1,
            text.chars().take(80).collect::<String>()
        ));
    }
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        problems(child, src, out);
    }
}

#[test]
fn exchange_every_script_parses_as_powershell() {
    let mut parser = tree_sitter::Parser::new();
    parser
        .set_language(&tree_sitter_powershell::LANGUAGE.into())
        .expect("the grammar loads");
    let all = scripts::all();
    assert!(all.len() >= 17);
    for (name, src) in all {
        let tree = parser.parse(&src, None).expect("parses");
        let mut found = Vec::new();
        problems(tree.root_node(), &src, &mut found);
        assert!(
            found.is_empty() && !tree.root_node().has_error(),
            "{name}:\n{}\n---\n{src}",
            found.join("\n")
        );
    }
}

#[test]
fn exchange_parser_check_catches_broken_powershell() {
    let mut parser = tree_sitter::Parser::new();
    parser
        .set_language(&tree_sitter_powershell::LANGUAGE.into())
        .unwrap();
    let broken = "& {\n    if ($x.Y {\n        Set-Thing -A $true\n    }\n";
    let tree = parser.parse(broken, None).unwrap();
    assert!(tree.root_node().has_error(), "the check is not vacuous");
}

#[test]
#[ignore = "prints the onboard script for docs: cargo test --test exchange_scripts_parse -- --ignored --nocapture"]
fn exchange_print_onboard_script() {
    println!(
        "{}",
        scripts::session(
            scripts::Connect::AccessToken { with_upn: true },
            scripts::Plan::Onboard
        )
    );
}
