//! The validated form of a flow file. Every name that points somewhere
//! (a step, a prompt) keeps its position so later checks can report it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::Loc;

/// A name written in a flow file (a step or a prompt), with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    pub name: String,
    pub at: Loc,
}

/// One flow, loaded from one file.
#[derive(Debug, Clone)]
pub struct Flow {
    pub name: String,
    pub name_at: Loc,
    /// Short content hash of this file.
    pub version: String,
    /// `>0`: send 180 Ringing and wait this long before answering.
    pub ring_ms: u64,
    pub file: PathBuf,
    pub numbers: Vec<Ref>,
    /// `Some(position of the key)` when this flow catches unlisted numbers.
    pub default: Option<Loc>,
    pub start: Ref,
    pub steps: BTreeMap<String, Step>,
}

impl Flow {
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.get(name)
    }

    pub fn is_default(&self) -> bool {
        self.default.is_some()
    }
}

#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    /// Where the step's table starts (its `[steps.NAME]` header).
    pub at: Loc,
    pub kind: StepKind,
}

/// What a step does. New step types are a new variant plus a parser arm
/// (`parse.rs`), their references here, and an interpreter arm (`run.rs`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum StepKind {
    Play(Play),
    Menu(Menu),
    Hangup(Hangup),
}

/// Play prompts, then go on.
#[derive(Debug, Clone)]
pub struct Play {
    pub prompts: Vec<Ref>,
    /// A digit stops the playback and is kept for the next menu.
    pub interruptible: bool,
    pub next: Ref,
}

/// Play a prompt, collect a choice.
#[derive(Debug, Clone)]
pub struct Menu {
    pub prompts: Vec<Ref>,
    /// Silence allowed after the prompt ends (and between digits of a
    /// multi-digit choice).
    pub timeout_ms: u64,
    /// Re-prompts after an invalid entry or a timeout.
    pub retries: u32,
    pub invalid_prompts: Vec<Ref>,
    /// `None`: same as `invalid_prompts`.
    pub timeout_prompts: Option<Vec<Ref>>,
    pub choices: Vec<Choice>,
    pub on_fail: Ref,
}

#[derive(Debug, Clone)]
pub struct Choice {
    /// One or more of `0-9*#`; no choice is a prefix of another.
    pub digits: String,
    pub at: Loc,
    pub target: Ref,
}

/// Optionally play prompts, then hang up.
#[derive(Debug, Clone)]
pub struct Hangup {
    pub prompts: Vec<Ref>,
}

/// How a menu entry compares to the menu's choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup<'a> {
    Choice(&'a Ref),
    /// The start of a longer choice: wait for more digits.
    Partial,
    Invalid,
}

impl Menu {
    pub fn timeout_prompts(&self) -> &[Ref] {
        self.timeout_prompts
            .as_deref()
            .unwrap_or(&self.invalid_prompts)
    }

    pub(crate) fn lookup(&self, entry: &str) -> Lookup<'_> {
        let mut partial = false;
        for c in &self.choices {
            if c.digits == entry {
                return Lookup::Choice(&c.target);
            }
            partial |= c.digits.starts_with(entry);
        }
        if partial {
            Lookup::Partial
        } else {
            Lookup::Invalid
        }
    }
}

impl StepKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            StepKind::Play(_) => "play",
            StepKind::Menu(_) => "menu",
            StepKind::Hangup(_) => "hangup",
        }
    }

    /// Every step this step can lead to.
    pub fn step_refs(&self) -> Vec<&Ref> {
        match self {
            StepKind::Play(p) => vec![&p.next],
            StepKind::Menu(m) => m
                .choices
                .iter()
                .map(|c| &c.target)
                .chain(std::iter::once(&m.on_fail))
                .collect(),
            StepKind::Hangup(_) => Vec::new(),
        }
    }

    /// Every prompt this step can play.
    pub fn prompt_refs(&self) -> Vec<&Ref> {
        match self {
            StepKind::Play(p) => p.prompts.iter().collect(),
            StepKind::Menu(m) => m
                .prompts
                .iter()
                .chain(&m.invalid_prompts)
                .chain(m.timeout_prompts.iter().flatten())
                .collect(),
            StepKind::Hangup(h) => h.prompts.iter().collect(),
        }
    }
}
