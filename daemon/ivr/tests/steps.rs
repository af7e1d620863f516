//! The branch and hand-over steps through the interpreter: `caller` (VIP
//! lists, prefixes, withheld numbers), `set`, `goto`, `transfer`.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{Clock, TempFlows, call, drain, play};
use hotline_ivr::{Action, FlowSet, TransferTarget};

const QUEUES: &str = "[queues.support]\n[queues.sales]\ndisplay_name = \"Sales team\"\n";

fn set(tag: &str, flow: &str) -> (TempFlows, FlowSet) {
    let t = TempFlows::new(tag);
    t.prompts(&["vip", "mobile", "anon", "other", "wait", "sorry", "bye"])
        .file("queues.toml", QUEUES)
        .file(
            "vip/gold.txt",
            "# gold customers\n+36 30 123 4567\n06-20-765-4321  # second\n\n1234\n",
        )
        .flow("f.toml", flow);
    let set = t.load();
    (t, set)
}

const CALLER_FLOW: &str = r#"name = "f"
numbers = ["1"]
start = "who"

[steps.who]
type = "caller"
rules = [
  { anonymous = true, next = "anon" },
  { vip = "gold", next = "vip" },
  { prefix = ["06 30", "+3670"], next = "mobile" },
]
default = "other"

[steps.anon]
type = "hangup"
prompts = "anon"

[steps.vip]
type = "hangup"
prompts = "vip"

[steps.mobile]
type = "hangup"
prompts = "mobile"

[steps.other]
type = "hangup"
prompts = "other"
"#;

#[test]
fn caller_rules_first_match_wins() {
    let (_t, set) = set("caller", CALLER_FLOW);
    let branch = |caller: &str| {
        let clock = Clock::new();
        let run = call(&set, "1", caller, "2026-03-02T10:00:00+01:00", &clock);
        run.path()[1].clone()
    };
    let cases = [
        // The VIP list entry `+36 30 123 4567` in every written form.
        ("+36301234567", "vip"),
        ("06301234567", "vip"),
        ("0036301234567", "vip"),
        ("06 30 123 4567", "vip"),
        // `06-20-765-4321` on the list; `+36…` from the trunk.
        ("+36207654321", "vip"),
        // A short internal number on the list.
        ("1234", "vip"),
        // Not on the list: the 06 30 / +36 70 prefixes (both forms).
        ("06301111111", "mobile"),
        ("+36301111111", "mobile"),
        ("06701111111", "mobile"),
        ("+36201111111", "other"),
        ("0612345678", "other"),
        // Withheld numbers, whatever the trunk writes.
        ("anonymous", "anon"),
        ("Anonymous", "anon"),
        ("", "anon"),
        ("restricted", "anon"),
        // A SIP name is not a number: no VIP, no prefix.
        ("alice", "other"),
    ];
    let got: Vec<(&str, String)> = cases.iter().map(|(c, _)| (*c, branch(c))).collect();
    let want: Vec<(&str, String)> = cases.iter().map(|(c, b)| (*c, b.to_string())).collect();
    assert_eq!(got, want);
}

#[test]
fn vip_list_is_in_the_set() {
    let (_t, set) = set("viplist", CALLER_FLOW);
    let list = &set.vip_lists()["gold"];
    assert_eq!(
        list.numbers().collect::<Vec<_>>(),
        ["+36207654321", "+36301234567", "1234"]
    );
    assert!(list.contains("06 30 123 4567"));
    assert!(!list.contains("anonymous"));
    // The flow holds the same list: a call keeps it across reloads.
    let flow = set.for_number("1").unwrap();
    assert!(std::sync::Arc::ptr_eq(&flow.vip_lists["gold"], list));
}

#[test]
fn set_goto_and_variables() {
    let (_t, set) = set(
        "set",
        r#"name = "f"
numbers = ["1"]
start = "mark"

[steps.mark]
type = "set"
variables = { from = "${caller}", to = "${called}", line = "${flow}/main", who = "caller ${from}" }
tags = ["first", "vip"]
next = "jump"

[steps.jump]
type = "goto"
next = "again"

[steps.again]
type = "set"
tags = ["vip", "second"]
variables = { from = "changed" }
next = "bye"

[steps.bye]
type = "hangup"
prompts = "bye"
"#,
    );
    let clock = Clock::new();
    let mut run = call(
        &set,
        "1",
        "06301234567",
        "2026-03-02T10:00:00+01:00",
        &clock,
    );
    let set_var = |n: &str, v: &str| Action::SetVariable {
        name: n.to_owned(),
        value: v.to_owned(),
    };
    // Table keys come in name order; `who` sees `from` set just before it.
    assert_eq!(
        drain(&mut run),
        [
            set_var("from", "06301234567"),
            set_var("line", "f/main"),
            set_var("to", "1"),
            set_var("who", "caller 06301234567"),
            set_var("tags", "first,vip"),
            set_var("from", "changed"),
            set_var("tags", "first,vip,second"),
            play(&["bye"]),
        ]
    );
    assert_eq!(run.path(), ["mark", "jump", "again", "bye"]);
    let vars: Vec<(&str, &str)> = run
        .variables()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        vars,
        [
            ("from", "changed"),
            ("line", "f/main"),
            ("tags", "first,vip,second"),
            ("to", "1"),
            ("who", "caller 06301234567"),
        ]
    );
}

const TRANSFER_FLOW: &str = r#"name = "f"
numbers = ["1", "2", "3"]
start = "pick"

[steps.pick]
type = "caller"
rules = [
  { prefix = "1", next = "to_anna" },
  { prefix = "2", next = "to_sales" },
]
default = "to_outside"

[steps.to_anna]
type = "transfer"
operator = "anna"
on_fail = "sorry"

[steps.to_sales]
type = "transfer"
queue = "sales"
prompts = "wait"
on_fail = "sorry"

[steps.to_outside]
type = "transfer"
number = "06 30 555 0100"
on_fail = "sorry"

[steps.sorry]
type = "hangup"
prompts = "sorry"
"#;

#[test]
fn transfer_to_operator_queue_and_number() {
    let (_t, set) = set("transfer", TRANSFER_FLOW);
    let clock = Clock::new();

    // To an operator at once; success ends the flow without a hangup.
    let mut run = call(&set, "1", "100", "2026-03-02T10:00:00+01:00", &clock);
    assert_eq!(
        drain(&mut run),
        [Action::Transfer {
            target: TransferTarget::Operator("anna".into())
        }]
    );
    assert!(!run.is_finished());
    // Digits while the transfer is pending change nothing.
    run.on_digit(clock.at(10), '5');
    assert_eq!(drain(&mut run), []);
    run.on_transfer_result(clock.at(20), true);
    assert_eq!(drain(&mut run), []);
    assert!(run.is_finished());
    assert_eq!(run.current_step(), None);

    // To a queue after the prompts; a failure runs `on_fail`.
    let mut run = call(&set, "1", "200", "2026-03-02T10:00:00+01:00", &clock);
    assert_eq!(drain(&mut run), [play(&["wait"])]);
    // A result before the transfer was asked for is ignored.
    run.on_transfer_result(clock.at(5), true);
    assert!(!run.is_finished());
    run.on_playback_done(clock.at(1000));
    assert_eq!(
        drain(&mut run),
        [Action::Transfer {
            target: TransferTarget::Queue("sales".into())
        }]
    );
    run.on_transfer_result(clock.at(1500), false);
    assert_eq!(drain(&mut run), [play(&["sorry"])]);
    run.on_playback_done(clock.at(2000));
    assert_eq!(drain(&mut run), [Action::Hangup]);
    assert_eq!(run.path(), ["pick", "to_sales", "sorry"]);

    // An outside number, in canonical form.
    let mut run = call(&set, "1", "300", "2026-03-02T10:00:00+01:00", &clock);
    assert_eq!(
        drain(&mut run),
        [Action::Transfer {
            target: TransferTarget::External("+36305550100".into())
        }]
    );
}

#[test]
fn queues_file_is_in_the_set() {
    let (_t, set) = set("queues", TRANSFER_FLOW);
    let q: Vec<(&str, &str)> = set
        .queues()
        .values()
        .map(|q| (q.name.as_str(), q.display_name.as_str()))
        .collect();
    assert_eq!(q, [("sales", "Sales team"), ("support", "support")]);
}
