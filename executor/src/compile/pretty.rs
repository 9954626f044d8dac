//! Re-indents JSON text without parsing values, so numbers and strings keep their exact
//! spelling (`30.0` stays `30.0`, a 30-digit integer stays exact). The layout matches Ruby's
//! `JSON.pretty_generate`: two-space indent, `"key": value`, empty containers as `{}`/`[]`.

/// Pretty-prints `json`, which must be valid JSON (it always comes from a JSON generator).
pub fn format(json: &str) -> String {
    let mut out = String::with_capacity(json.len() * 2);
    let mut depth = 0usize;
    let mut chars = json.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => copy_string(&mut chars, &mut out),
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                skip_whitespace(&mut chars);
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(c);
                    out.push(close);
                } else {
                    depth += 1;
                    out.push(c);
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// Copies a string literal (opening quote already consumed), escapes included, verbatim.
fn copy_string(chars: &mut impl Iterator<Item = char>, out: &mut String) {
    out.push('"');
    let mut escaped = false;
    for c in chars.by_ref() {
        out.push(c);
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '"') => return,
            _ => {}
        }
    }
}

fn skip_whitespace(chars: &mut std::iter::Peekable<impl Iterator<Item = char>>) {
    while chars.peek().is_some_and(|c| c.is_whitespace()) {
        chars.next();
    }
}

fn newline(out: &mut String, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str("  ");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_pretty_generate() {
        let input = r#"{"a":{"b":[1,2.0,{}],"c":[]},"d":"x"}"#;
        let expected = "{\n  \"a\": {\n    \"b\": [\n      1,\n      2.0,\n      {}\n    ],\n    \"c\": []\n  },\n  \"d\": \"x\"\n}";
        assert_eq!(format(input), expected);
    }

    #[test]
    fn strings_are_copied_verbatim() {
        let input = r#"{"k: {[,]}":"a \"quoted\" \\ , : { é ✓"}"#;
        assert_eq!(
            format(input),
            "{\n  \"k: {[,]}\": \"a \\\"quoted\\\" \\\\ , : { é ✓\"\n}"
        );
    }

    #[test]
    fn numbers_keep_their_spelling_and_input_whitespace_is_ignored() {
        let input = "[ 123456789012345678901234567890 , 30.0 ,\n -1e-7 ]";
        assert_eq!(
            format(input),
            "[\n  123456789012345678901234567890,\n  30.0,\n  -1e-7\n]"
        );
    }
}
