use std::fmt;
use std::path::PathBuf;

/// A 1-based position in a flow file; columns count characters, as editors do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Loc {
    pub line: usize,
    pub col: usize,
}

impl Loc {
    pub const fn new(line: usize, col: usize) -> Self {
        Self { line, col }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// One problem found while loading flows.
///
/// `line == 0` means the problem has no position inside the file (an
/// unreadable file or directory); it then prints as `file: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct FlowError {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl FlowError {
    pub fn at(file: impl Into<PathBuf>, loc: Loc, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line: loc.line,
            col: loc.col,
            message: message.into(),
        }
    }

    /// An error about a whole file or directory, without a position.
    pub fn whole(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::at(file, Loc::new(0, 0), message)
    }

    pub fn loc(&self) -> Loc {
        Loc::new(self.line, self.col)
    }

    fn render(&self) -> String {
        if self.line == 0 {
            format!("{}: {}", self.file.display(), self.message)
        } else {
            format!(
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.col,
                self.message
            )
        }
    }
}
