//! VIP lists: `vip/NAME.txt`, one phone number per line, `#` comments.
//! Numbers are kept in canonical form ([`crate::number`]) so any way of
//! writing a number matches any way the trunk sends it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{FlowError, Loc};
use crate::number;
use crate::parse::valid_prompt_name;

/// One VIP list file.
#[derive(Debug, Clone)]
pub struct VipList {
    name: String,
    file: PathBuf,
    numbers: BTreeSet<String>,
}

impl VipList {
    /// The file stem: flows name a list by it.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Whether `caller` (in any written form) is on the list.
    pub fn contains(&self, caller: &str) -> bool {
        number::normalize(caller).is_ok_and(|n| self.numbers.contains(&n))
    }

    /// Canonical numbers on the list.
    pub fn numbers(&self) -> impl Iterator<Item = &str> {
        self.numbers.iter().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.numbers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
    }

    /// Reads one list from text; bad lines are errors, repeated numbers
    /// warnings.
    pub fn parse(name: &str, file: &Path, text: &str) -> (Self, Vec<FlowError>, Vec<FlowError>) {
        let mut numbers = BTreeSet::new();
        let mut first_line: BTreeMap<String, usize> = BTreeMap::new();
        let (mut errors, mut warnings) = (Vec::new(), Vec::new());
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let content = line.split('#').next().unwrap_or_default();
            let trimmed = content.trim_start();
            let lead = content.chars().count() - trimmed.chars().count();
            let trimmed = trimmed.trim_end();
            if trimmed.is_empty() {
                continue;
            }
            match number::normalize(trimmed) {
                Ok(n) => {
                    if let Some(first) = first_line.get(&n) {
                        warnings.push(FlowError::at(
                            file,
                            Loc::new(line_no, lead + 1),
                            format!("{n} is already listed on line {first}"),
                        ));
                    } else {
                        first_line.insert(n.clone(), line_no);
                        numbers.insert(n);
                    }
                }
                Err(e) => errors.push(FlowError::at(
                    file,
                    Loc::new(line_no, lead + e.index + 1),
                    format!(
                        "`{trimmed}` is not a phone number: {} (write one number per line, \
                         digits with an optional leading +; spaces and dashes are ignored)",
                        e.message
                    ),
                )),
            }
        }
        let list = Self {
            name: name.to_owned(),
            file: file.to_owned(),
            numbers,
        };
        (list, errors, warnings)
    }
}

/// Every `*.txt` in `dir` (`<flows>/vip`); a missing directory is no lists.
pub(crate) fn load_vip_lists(
    dir: &Path,
    errors: &mut Vec<FlowError>,
    warnings: &mut Vec<FlowError>,
) -> BTreeMap<String, Arc<VipList>> {
    let mut lists = BTreeMap::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return lists,
        Err(e) => {
            errors.push(FlowError::whole(dir, format!("cannot read VIP lists: {e}")));
            return lists;
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt") && p.is_file())
        .collect();
    files.sort();
    for path in files {
        let Some(stem) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
            continue;
        };
        if stem.starts_with('.') {
            continue;
        }
        if !valid_prompt_name(&stem) {
            errors.push(FlowError::whole(
                &path,
                "a VIP list name may only use letters, digits, `-`, `_` and `.`",
            ));
            continue;
        }
        let text = match fs::read(&path).map(String::from_utf8) {
            Ok(Ok(t)) => t,
            Ok(Err(_)) => {
                errors.push(FlowError::whole(&path, "file is not valid UTF-8"));
                continue;
            }
            Err(e) => {
                errors.push(FlowError::whole(&path, format!("cannot read: {e}")));
                continue;
            }
        };
        let (list, errs, warns) = VipList::parse(&stem, &path, &text);
        errors.extend(errs);
        warnings.extend(warns);
        lists.insert(stem, Arc::new(list));
    }
    lists
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_comments_and_bad_lines() {
        let text = "# gold\n  +36 30 123 4567  # boss\n\n06-20-765-4321\n  06 30 12x4567\n0036301234567\n12\n";
        let (list, errors, warnings) = VipList::parse("gold", Path::new("gold.txt"), text);
        assert_eq!(
            list.numbers().collect::<Vec<_>>(),
            ["+36207654321", "+36301234567"]
        );
        let e: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            e,
            [
                "gold.txt:5:11: `06 30 12x4567` is not a phone number: `x` is not allowed in a phone number (write one number per line, digits with an optional leading +; spaces and dashes are ignored)",
                "gold.txt:7:3: `12` is not a phone number: a phone number needs at least 3 digits (write one number per line, digits with an optional leading +; spaces and dashes are ignored)",
            ]
        );
        let w: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            w,
            ["gold.txt:6:1: +36301234567 is already listed on line 2"]
        );
        assert!(list.contains("06301234567"));
        assert!(!list.contains("06301234568"));
    }
}
