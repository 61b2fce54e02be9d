//! Issue 10 (5): server text never reaches the terminal raw. A tenant whose display name
//! carries escape sequences, a bare carriage return and a bidirectional override is onboarded
//! and listed: neither command writes an ESC or a bidi control.

use crate::support::common::{Env, assert_ok, stderr, stdout, tenant};

const HOSTILE: &str = "Evil\x1b]0;pwned\x07\x1b[2J\x1b[31m Corp\rFake\u{202e}moc.osotnoc\u{2066}";

fn assert_clean(what: &str, text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| {
            c == '\x1b'
                || c == '\r'
                || c == '\u{9b}'
                || c == '\u{9d}'
                || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect();
    assert!(bad.is_empty(), "{what} holds {bad:?}:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_display_name_is_shown_sanitized_by_tenant_add_and_list() {
    let mut t = tenant(4301);
    t.display_name = HOSTILE.into();
    let env = Env::start(t).await;

    let out = env.add().await;
    assert_ok(&out);
    assert_clean("tenant add's stdout", &stdout(&out));
    assert_clean("tenant add's stderr", &stderr(&out));
    // The name is still shown, only without its controls.
    assert!(
        stderr(&out).contains("Evil Corp Fakemoc.osotnoc"),
        "{}",
        stderr(&out)
    );

    let out = env.run(&["list"]).await;
    assert_ok(&out);
    assert_clean("list's stdout", &stdout(&out));
    assert_clean("list's stderr", &stderr(&out));
    assert!(stdout(&out).contains("Evil Corp Fake"), "{}", stdout(&out));
}
