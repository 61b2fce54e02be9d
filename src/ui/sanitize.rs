//! Text that came from a server (Graph, the sign-in service, the MSP portal, PowerShell) made
//! safe for the terminal: the one sanitizer every such string passes before it is printed.
//!
//! A tenant's display name is chosen by whoever administers that tenant. Printed raw, an OSC
//! sequence in it retitles the technician's terminal, a CSI sequence clears it, a bare `\r`
//! overwrites what came before on the line, and a bidirectional override makes
//! `evil.com\u{202e}moc.osotnoc` read as something else. The rule, applied the same way
//! everywhere:
//!
//! - escape sequences (ESC followed by CSI, OSC, DCS, SOS, PM, APC or a single character, and
//!   their 8-bit C1 forms) are dropped whole, parameters and payload included;
//! - line breaks and tabs (`\n`, `\r`, `\t`, `\x0b`, `\x0c`, U+0085, U+2028, U+2029) become one
//!   space, so a line stays one line and nothing is overwritten;
//! - every other C0/C1 control, DEL, and the Unicode bidirectional controls (U+061C,
//!   U+200E–U+200F, U+202A–U+202E, U+2066–U+2069) are dropped.
//!
//! Text with none of these is returned as it is, without a copy.

use std::borrow::Cow;
use std::fmt;

const ESC: char = '\u{1b}';
const BEL: char = '\u{07}';
/// The 8-bit String Terminator.
const ST: char = '\u{9c}';

/// Server text as it may be printed.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    clean(s, false)
}

/// The last line of defence, for a whole line on its way to stderr (`Ui`'s messages and
/// spinners): the same rule, except that it keeps the line breaks and the color sequences
/// (`ESC [ … m`) hal-onboard itself wrote. Server text should already have passed
/// [`sanitize`] where it was put into the message; this catches a place that forgot.
pub(crate) fn sanitize_line(s: &str) -> Cow<'_, str> {
    clean(s, true)
}

fn clean(s: &str, ours: bool) -> Cow<'_, str> {
    let risky = s
        .chars()
        .any(|c| needs_care(c) && !(ours && (c == '\n' || c == ESC)));
    let foreign_escape = ours && s.contains(ESC) && !only_sgr(s);
    if !risky && !foreign_escape {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\n' if ours => out.push('\n'),
            ESC => match it.next() {
                // CSI: parameters and intermediates up to a final byte (0x40–0x7E); a color
                // sequence of our own is kept by `sanitize_line`.
                Some('[') => {
                    let seq = take_csi(&mut it);
                    if ours && is_sgr(&seq) {
                        out.push(ESC);
                        out.push('[');
                        out.push_str(&seq);
                    }
                }
                // OSC, DCS, SOS, PM, APC: a string up to BEL (OSC only) or ST.
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut it),
                // Any other escape: ESC and the one character after it (`ESC c` resets the
                // terminal, `ESC 7`/`ESC 8` save and restore the cursor).
                Some(_) | None => {}
            },
            '\u{9b}' => {
                take_csi(&mut it);
            }
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut it),
            c if is_line_break(c) => {
                if !out.ends_with(' ') {
                    out.push(' ');
                }
            }
            c if needs_care(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Shows server text through [`sanitize`] wherever a `Display` is wanted:
/// `format!("Tenant: {}", Untrusted(&name))`.
#[derive(Debug, Clone, Copy)]
pub struct Untrusted<'a>(pub &'a str);

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` keeps width and alignment (`{:<20}`) working.
        f.pad(&sanitize(self.0))
    }
}

fn needs_care(c: char) -> bool {
    c.is_control() || is_bidi_control(c) || matches!(c, '\u{2028}' | '\u{2029}')
}

fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\t' | '\u{0b}' | '\u{0c}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// The Unicode bidirectional formatting characters.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// A CSI sequence after `ESC [`, up to and including its final byte.
fn take_csi(it: &mut std::iter::Peekable<std::str::Chars<'_>>) -> String {
    let mut seq = String::new();
    for c in it.by_ref() {
        // A control inside a CSI ends it in practice: the sequence is dropped either way.
        if c.is_control() {
            seq.clear();
            break;
        }
        seq.push(c);
        if ('\u{40}'..='\u{7e}').contains(&c) {
            break;
        }
    }
    seq
}

/// `ESC [` then digits and `;`, ending in `m`: Select Graphic Rendition, a color.
fn is_sgr(seq: &str) -> bool {
    seq.strip_suffix('m')
        .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit() || c == ';'))
}

/// Every ESC in `s` starts a color sequence.
fn only_sgr(s: &str) -> bool {
    s.split(ESC).skip(1).all(|rest| {
        rest.strip_prefix('[').is_some_and(|r| {
            let end = r.find(|c: char| !(c.is_ascii_digit() || c == ';'));
            end.is_some_and(|i| r[i..].starts_with('m'))
        })
    })
}

fn skip_string(it: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = it.next() {
        match c {
            BEL | ST => return,
            ESC => {
                // `ESC \` is ST; any other ESC ends the string too (and is dropped with it).
                if it.peek() == Some(&'\\') {
                    it.next();
                }
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(s: &str) -> String {
        sanitize(s).into_owned()
    }

    #[test]
    fn plain_text_is_not_copied() {
        assert!(matches!(
            sanitize("Contoso Ltd — Zürich (東京)"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn an_osc_title_sequence_goes_whole() {
        assert_eq!(clean("Contoso\x1b]0;pwned\x07 Ltd"), "Contoso Ltd");
        assert_eq!(clean("Contoso\x1b]0;pwned\x1b\\ Ltd"), "Contoso Ltd");
        assert_eq!(
            clean("a\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\b"),
            "alinkb"
        );
    }

    #[test]
    fn a_csi_clear_goes_whole() {
        assert_eq!(clean("\x1b[2J\x1b[HContoso"), "Contoso");
        assert_eq!(clean("red\x1b[1;31mtext\x1b[0m"), "redtext");
        assert_eq!(clean("\u{9b}2JContoso"), "Contoso");
    }

    #[test]
    fn a_bare_carriage_return_cannot_overwrite() {
        assert_eq!(clean("evil\rContoso"), "evil Contoso");
        assert_eq!(clean("one\r\ntwo\tthree"), "one two three");
    }

    #[test]
    fn bidi_overrides_are_dropped() {
        assert_eq!(clean("evil\u{202e}moc.osotnoc"), "evilmoc.osotnoc");
        assert_eq!(clean("\u{2066}a\u{2069}\u{200f}\u{061c}b"), "ab");
    }

    #[test]
    fn other_controls_and_lone_escapes_are_dropped() {
        assert_eq!(clean("a\x00b\x07c\x7fd\u{85}e"), "abcd e");
        assert_eq!(clean("a\x1bcb"), "ab");
        assert_eq!(clean("trailing\x1b"), "trailing");
        assert_eq!(clean("\x1bP1$r\x1b\\ok"), "ok");
    }

    #[test]
    fn the_result_never_holds_an_escape_or_bidi_control() {
        let nasty = "\x1b]0;t\x07\x1b[2J\r\u{202e}\u{9d}x\u{9c}\x1b[\x1b]\x1b";
        let out = clean(nasty);
        assert!(
            !out.chars().any(|c| c.is_control() || is_bidi_control(c)),
            "{out:?}"
        );
    }

    #[test]
    fn the_line_backstop_keeps_our_colors_and_line_breaks_only() {
        let ours = "\x1b[1mbold\x1b[0m\nnext";
        assert!(matches!(sanitize_line(ours), Cow::Borrowed(_)));
        assert_eq!(
            sanitize_line("\x1b[33mwarning:\x1b[0m T\x1b]0;pwned\x07\x1b[2J\r\u{202e}x"),
            "\x1b[33mwarning:\x1b[0m T x"
        );
    }

    #[test]
    fn untrusted_keeps_padding() {
        assert_eq!(format!("[{:<6}]", Untrusted("a\x1b[2Jb")), "[ab    ]");
    }
}
