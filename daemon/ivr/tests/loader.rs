//! Loader errors: every one reported, each at its exact file:line:col.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{TempFlows, brief};
use hotline_ivr::load_dir;

/// A valid flow; tests break one thing at a time.
const GOOD: &str = r#"name = "main"
numbers = ["100"]
default = true
start = "hello"

[steps.hello]
type = "play"
prompts = ["hello"]
next = "menu"

[steps.menu]
type = "menu"
prompt = "menu"
choices = { "1" = "bye" }
on_fail = "bye"

[steps.bye]
type = "hangup"
prompts = ["bye"]
"#;

fn dir(tag: &str) -> TempFlows {
    let t = TempFlows::new(tag);
    t.prompts(&["hello", "menu", "bye"]);
    t
}

fn errors_of(t: &TempFlows) -> Vec<String> {
    match load_dir(t.path()) {
        Ok(_) => panic!("expected errors"),
        Err(e) => brief(&e),
    }
}

#[test]
fn good_flow_loads() {
    let t = dir("good");
    t.flow("main.toml", GOOD);
    let set = load_dir(t.path()).unwrap();
    assert_eq!(set.flows().len(), 1);
    assert_eq!(set.for_number("100").unwrap().name, "main");
}

#[test]
fn display_is_file_line_col_message() {
    let t = dir("display");
    t.flow(
        "main.toml",
        &GOOD.replace("next = \"menu\"", "next = \"menu2\""),
    );
    let errors = load_dir(t.path()).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].to_string(),
        format!(
            "{}:9:8: no step named `menu2` (did you mean `menu`?)",
            t.path().join("main.toml").display()
        )
    );
}

#[test]
fn toml_syntax_error() {
    let t = dir("syntax");
    t.flow(
        "main.toml",
        &GOOD.replace("prompt = \"menu\"", "prompt = \"menu"),
    );
    let errors = errors_of(&t);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0] == "main.toml:13:15: TOML syntax error: invalid basic string, expected `\"`",
        "{errors:#?}"
    );
}

#[test]
fn unknown_step_type() {
    let t = dir("type");
    t.flow(
        "main.toml",
        &GOOD.replace("type = \"play\"", "type = \"plya\""),
    );
    assert_eq!(
        errors_of(&t),
        [
            "main.toml:7:8: unknown step type `plya` (did you mean `play`? known types: play, menu, schedule, caller, queue, callback, set, transfer, hangup, goto)"
        ]
    );
}

#[test]
fn undefined_steps_in_next_and_choices() {
    let t = dir("undefined");
    let text = GOOD
        .replace("next = \"menu\"", "next = \"meny\"")
        .replace(
            "{ \"1\" = \"bye\" }",
            "{ \"1\" = \"bye\", \"2\" = \"sales\" }",
        )
        .replace("on_fail = \"bye\"", "on_fail = \"byebye\"");
    t.flow("main.toml", &text);
    assert_eq!(
        errors_of(&t),
        [
            "main.toml:9:8: no step named `meny` (did you mean `menu`?)",
            "main.toml:14:32: no step named `sales`",
            "main.toml:15:11: no step named `byebye`",
        ]
    );
}

#[test]
fn missing_and_undefined_start() {
    let t = dir("start");
    t.flow("a.toml", &GOOD.replace("start = \"hello\"\n", ""));
    t.flow(
        "b.toml",
        &GOOD
            .replace("name = \"main\"", "name = \"b\"")
            .replace("numbers = [\"100\"]\ndefault = true\n", "")
            .replace("start = \"hello\"", "start = \"nope\""),
    );
    assert_eq!(
        errors_of(&t),
        [
            "a.toml:1:1: the flow is missing required key `start`",
            "b.toml:2:9: no step named `nope`",
        ]
    );
}

#[test]
fn two_default_flows() {
    let t = dir("defaults");
    t.flow("a.toml", GOOD);
    t.flow(
        "b.toml",
        &GOOD
            .replace("name = \"main\"", "name = \"other\"")
            .replace("[\"100\"]", "[\"200\"]"),
    );
    assert_eq!(
        errors_of(&t),
        [format!(
            "b.toml:3:11: only one flow may be the default; `main` already is ({}:3:11)",
            t.path().join("a.toml").display()
        )]
    );
}

#[test]
fn duplicate_numbers_across_flows() {
    let t = dir("numbers");
    t.flow("a.toml", GOOD);
    t.flow(
        "b.toml",
        &GOOD
            .replace("name = \"main\"", "name = \"other\"")
            .replace("[\"100\"]", "[\"200\", \"100\"]")
            .replace("default = true\n", ""),
    );
    assert_eq!(
        errors_of(&t),
        [format!(
            "b.toml:2:19: number `100` is already answered by flow `main` ({}:2:12)",
            t.path().join("a.toml").display()
        )]
    );
}

#[test]
fn missing_prompt_wav() {
    let t = dir("prompt");
    t.flow(
        "main.toml",
        &GOOD.replace("prompts = [\"bye\"]", "prompts = [\"bye\", \"thanks\"]"),
    );
    let wav = t.path().join("prompts").join("thanks.wav");
    assert_eq!(
        errors_of(&t),
        [format!(
            "main.toml:19:19: prompt `thanks`: file {} not found",
            wav.display()
        )]
    );
}

#[test]
fn prompt_in_wrong_format() {
    let t = dir("format");
    t.flow("main.toml", GOOD);
    let mut wav = hotline_ivr::silent_wav(100);
    // Stereo: channels, byte rate and block align agree, as a real stereo file's do.
    wav[22] = 2;
    wav[28..32].copy_from_slice(&32_000u32.to_le_bytes());
    wav[32] = 4;
    let path = t.path().join("prompts").join("menu.wav");
    std::fs::write(&path, wav).unwrap();
    assert_eq!(
        errors_of(&t),
        [format!(
            "main.toml:13:10: prompt `menu`: {}: 8000 Hz stereo 16-bit; prompts must be \
             8000 Hz mono 16-bit PCM (see prompts/make-prompts.sh)",
            path.display()
        )]
    );
}

#[test]
fn prompt_cut_short_is_an_error() {
    // Playback would fail on the missing samples, so the check must too.
    let t = dir("truncated");
    t.flow("main.toml", GOOD);
    let wav = hotline_ivr::silent_wav(100);
    let path = t.path().join("prompts").join("menu.wav");
    std::fs::write(&path, &wav[..wav.len() - 1]).unwrap();
    let errors = errors_of(&t);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let prefix = format!(
        "main.toml:13:10: prompt `menu`: {}: not a valid WAV file: ",
        path.display()
    );
    assert!(errors[0].starts_with(&prefix), "{errors:#?}");
    assert!(hotline_media::load_prompt(&path).is_err());
}

#[test]
fn all_errors_in_one_run() {
    let t = dir("all");
    let a = GOOD
        .replace("type = \"hangup\"", "type = \"hang_up\"")
        .replace("prompt = \"menu\"", "prompt = \"../../etc/passwd\"")
        .replace(
            "on_fail = \"bye\"",
            "on_fail = \"bye\"\nretries = \"two\"\ntimout_ms = 1",
        );
    t.flow("a.toml", &a);
    t.flow("b.toml", "name = [\n");
    t.flow(
        "c.toml",
        &GOOD.replace("ring_ms", "x").replace(
            "numbers = [\"100\"]",
            "numbers = [\"100\", \"100\"]\nring_ms = -1",
        ),
    );
    t.flow("notes.txt", "not a flow");
    let errors = errors_of(&t);
    assert_eq!(
        errors,
        [
            "a.toml:13:10: prompt name `../../etc/passwd` may only use letters, digits, `-`, `_` and `.` (it names prompts/NAME.wav)",
            "a.toml:16:11: `retries` must be a whole number, found string",
            "a.toml:17:1: unknown key `timout_ms` in step `menu` (did you mean `timeout_ms`? known keys: type, prompt, timeout_ms, retries, invalid_prompt, timeout_prompt, choices, on_fail)",
            "a.toml:20:8: unknown step type `hang_up` (did you mean `hangup`? known types: play, menu, schedule, caller, queue, callback, set, transfer, hangup, goto)",
            "b.toml:1:9: TOML syntax error: unclosed array, expected `]`",
            "c.toml:1:8: flow name `main` is already used by A:1:8",
            "c.toml:2:12: number `100` is already answered by flow `main` (A:2:12)",
            "c.toml:2:19: number `100` is listed twice (first at 2:12)",
            "c.toml:3:11: `ring_ms` must be between 0 and 300000, found -1",
            "c.toml:4:11: only one flow may be the default; `main` already is (A:3:11)",
        ]
        .map(|s| s.replace("A:", &format!("{}:", t.path().join("a.toml").display())))
    );
}

#[test]
fn choices_that_extend_another_are_rejected() {
    let t = dir("prefix");
    t.flow(
        "main.toml",
        &GOOD.replace(
            "{ \"1\" = \"bye\" }",
            "{ \"1\" = \"bye\", \"12\" = \"bye\", \"x\" = \"bye\" }",
        ),
    );
    assert_eq!(
        errors_of(&t),
        [
            "main.toml:14:26: choice `12` can never be picked: the menu acts on `1` as soon as it is pressed",
            "main.toml:14:40: choice `x` must be keypad digits (0-9, * or #)",
        ]
    );
}

#[test]
fn empty_or_missing_directory() {
    let t = TempFlows::new("empty");
    let errors = load_dir(t.path()).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].line, 0);
    assert_eq!(
        errors[0].to_string(),
        format!(
            "{}: no flow files (*.toml) in this directory",
            t.path().display()
        )
    );

    let missing = t.path().join("nope");
    let errors = load_dir(&missing).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0]
            .message
            .starts_with("cannot read flow directory: ")
    );
}

#[test]
fn versions_follow_content() {
    let t = dir("version");
    t.flow("main.toml", GOOD);
    let v1 = load_dir(t.path()).unwrap();
    let again = load_dir(t.path()).unwrap();
    assert_eq!(v1.version(), again.version());
    // Same as `sha256sum main.toml | cut -c1-12`.
    assert_eq!(v1.for_number("100").unwrap().version.len(), 12);

    t.flow(
        "main.toml",
        &GOOD.replace("numbers = [\"100\"]", "numbers = [\"101\"]"),
    );
    let v2 = load_dir(t.path()).unwrap();
    assert_ne!(v1.version(), v2.version());
    assert_ne!(
        v1.for_number("100").unwrap().version,
        v2.for_number("101").unwrap().version
    );
}
