//! Text from servers, certificates and config files on its way to a terminal or a log line
//! (issue 16, items 8 and 12).
//!
//! - [`term`] / [`escape_control`]: control characters (C0, DEL, C1) and the Unicode bidi
//!   controls are shown escaped (`\x1b`, `\r`, `\n`, `\u{202e}`), so a certificate CN such as
//!   `ESC[2K\r ESC[32mOK fake` prints as inert text instead of repainting the row.
//! - [`quote`]: the same, and cut to [`MAX_ECHO`] characters with the full length named, for
//!   echoing a value in an error message (a 20 MB `sni:` is not copied into a log line).
//! - [`chain`]: an error and its `source()` chain as one line (`a: b: c`), the way anyhow's
//!   `{:#}` prints it: library errors name their own context and keep the cause as `source`.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// Characters of a value quoted in an error message, at most.
pub const MAX_ECHO: usize = 96;

/// Unicode controls that reorder displayed text (Trojan Source); escaped like control characters.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Whether `c` must not reach a terminal as is.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\0' => out.push_str("\\0"),
        c if (c as u32) < 0x100 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// `s` with every control character shown escaped (borrowed when there is none).
pub fn escape_control(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe_char(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A `Display` wrapper that writes its text through [`escape_control`].
#[derive(Debug, Clone, Copy)]
pub struct Term<'a>(pub &'a str);

impl fmt::Display for Term<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&escape_control(self.0))
    }
}

/// Terminal-safe display of a string from a server, a certificate or a config file.
pub fn term(s: &str) -> Term<'_> {
    Term(s)
}

/// The first unsafe character of `s`, named for a message ("a carriage return (\r)").
pub fn first_unsafe_char(s: &str) -> Option<String> {
    let c = s.chars().find(|c| is_unsafe_char(*c))?;
    let name = match c {
        '\n' => "a newline",
        '\r' => "a carriage return",
        '\t' => "a tab",
        '\0' => "a NUL byte",
        '\u{1b}' => "an escape character",
        c if is_bidi_control(c) => "a bidirectional-text control",
        _ => "a control character",
    };
    let mut esc = String::new();
    push_escaped(&mut esc, c);
    Some(format!("{name} ({esc})"))
}

/// `s` escaped and cut to [`MAX_ECHO`] characters, with the original length when cut: what an
/// error message may quote of a user- or server-supplied value.
pub fn quote(s: &str) -> Cow<'_, str> {
    let n = s.chars().count();
    if n <= MAX_ECHO {
        return escape_control(s);
    }
    let head: String = s.chars().take(MAX_ECHO).collect();
    Cow::Owned(format!(
        "{}… ({} bytes in all)",
        escape_control(&head),
        s.len()
    ))
}

/// `s` cut to its first `max` characters (with `…` when cut) and control characters shown
/// escaped: a remote string (a banner, a CRL issuer, a URL) kept in a report or a label.
pub fn bounded(s: &str, max: usize) -> String {
    let mut chars = s.chars();
    let head: String = chars.by_ref().take(max).collect();
    let mut out = escape_control(&head).into_owned();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// A message for one log field: control characters escaped, and at most 4 KiB (a message
/// quoting a huge config value is cut, with its full length named).
pub fn quote_message(s: &str) -> Cow<'_, str> {
    const MAX: usize = 4096;
    if s.len() <= MAX {
        return escape_control(s);
    }
    let mut cut = MAX;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    Cow::Owned(format!(
        "{}… ({} bytes in all)",
        escape_control(&s[..cut]),
        s.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_escaped() {
        let cn = "\u{1b}[2K\r \u{1b}[32mOK fake-endpoint\u{7}\n\t\0\u{9b}\u{202e}";
        let e = escape_control(cn);
        assert_eq!(
            e,
            "\\x1b[2K\\r \\x1b[32mOK fake-endpoint\\x07\\n\\t\\0\\x9b\\u{202e}"
        );
        assert!(!e.chars().any(is_unsafe_char));
        assert!(matches!(escape_control("plain, ü ok"), Cow::Borrowed(_)));
        assert_eq!(format!("{:<6}|", term("a\rb")), "a\\rb  |");
    }

    #[test]
    fn quote_cuts_long_values_and_names_their_size() {
        let long = "a".repeat(20 * 1024 * 1024);
        let q = quote(&long);
        assert!(q.len() < 200, "{}", q.len());
        assert!(q.ends_with("(20971520 bytes in all)"), "{q}");
        assert_eq!(quote("short\n"), "short\\n");
    }

    #[test]
    fn first_unsafe_char_names_it() {
        assert_eq!(first_unsafe_char("a\nb").unwrap(), "a newline (\\n)");
        assert_eq!(
            first_unsafe_char("a\u{1b}b").unwrap(),
            "an escape character (\\x1b)"
        );
        assert_eq!(first_unsafe_char("ok"), None);
    }
}

#[cfg(test)]
mod bounded_tests {
    use super::*;

    #[test]
    fn bounded_cuts_and_escapes() {
        assert_eq!(bounded("ok", 10), "ok");
        assert_eq!(bounded("abcdef", 3), "abc…");
        assert_eq!(bounded("a\x1b[2Kb", 10), "a\\x1b[2Kb");
    }
}

/// `e` and each of its sources, joined by `": "` (as anyhow's `{:#}`).
pub fn chain<'a>(e: &'a (dyn std::error::Error + 'static)) -> Chain<'a> {
    Chain(e)
}

/// See [`chain`].
#[derive(Clone, Copy)]
pub struct Chain<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cur = self.0.source();
        while let Some(s) = cur {
            write!(f, ": {s}")?;
            cur = s.source();
        }
        Ok(())
    }
}
