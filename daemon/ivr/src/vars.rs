//! `${name}` in `set` values: the few call variables a value may copy
//! (`${caller}`, `${called}`, `${flow}`, or a variable set earlier).

use std::collections::BTreeMap;

/// Each `${name}` in `s`: (char offset of the `$`, name). Unclosed `${` is
/// not a reference (the parser reports it with [`check`]).
pub(crate) fn refs(s: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut rest = s;
    let mut consumed_chars = 0;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else { break };
        let offset = consumed_chars + rest[..i].chars().count();
        out.push((offset, &after[..end]));
        let used = i + 2 + end + 1;
        consumed_chars += rest[..used].chars().count();
        rest = &rest[used..];
    }
    out
}

/// Syntax: every `${` closed, names non-empty and plain.
pub(crate) fn check(s: &str) -> Result<(), (usize, String)> {
    let mut rest = s;
    let mut consumed_chars = 0;
    while let Some(i) = rest.find("${") {
        let offset = consumed_chars + rest[..i].chars().count();
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            return Err((offset, "`${` is not closed with `}`".to_owned()));
        };
        let name = &after[..end];
        if !valid_name(name) {
            return Err((
                offset,
                format!("`${{{name}}}` is not a variable name (letters, digits, `_`, `-`, `.`)"),
            ));
        }
        let used = i + 2 + end + 1;
        consumed_chars += rest[..used].chars().count();
        rest = &rest[used..];
    }
    Ok(())
}

/// Variable names: a letter or `_`, then letters, digits, `_`, `-`, `.`.
pub(crate) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `s` with each `${name}` replaced by its value ("" when unset).
pub(crate) fn expand(s: &str, lookup: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else { break };
        out.push_str(&rest[..i]);
        if let Some(v) = lookup.get(&after[..end]) {
            out.push_str(v);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_expands() {
        assert_eq!(refs("a${x}é${yy}"), vec![(1, "x"), (6, "yy")]);
        assert_eq!(refs("no ${ref"), vec![]);
        assert!(check("ok ${caller}").is_ok());
        assert_eq!(check("é${x").unwrap_err().0, 1);
        assert!(check("${1x}").is_err());
        let vars = BTreeMap::from([("caller".to_owned(), "+3630".to_owned())]);
        assert_eq!(expand("from ${caller}${nope}!", &vars), "from +3630!");
    }
}
