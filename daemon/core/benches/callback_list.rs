//! The shared callback list with 100,000 open entries, on SQLite (a file, as the daemon
//! runs it) and on PostgreSQL: how fast entries are noted and claimed (one operator after
//! another, and eight at once racing for the same entries), and how long the reads behind
//! the missed-calls widget and the auto-callback scheduler take.
//!
//! `cargo bench -p hotline-core --bench callback_list` (PostgreSQL from
//! `HOTLINE_TEST_POSTGRES_URL`, default the local `test` database; a schema of its own is
//! dropped afterwards). Prints figures; asserts nothing but correctness of the race.

use std::time::{Duration, Instant};

use hotline_core::callbacks::{CallbackSource, NewCallbackNote};
use hotline_core::store::Store;

const ENTRIES: i64 = 100_000;
const T0: i64 = 1_800_000_000_000;
const CLAIM_MS: i64 = 10 * 60 * 1000;

type BenchResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> BenchResult {
    let dir = std::env::temp_dir().join(format!("hotline-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sqlite = Store::connect(&format!(
        "sqlite://{}?mode=rwc",
        dir.join("bench.db").display()
    ))
    .await?;
    sqlite.migrate().await?;
    run("SQLite", &sqlite).await?;
    sqlite.close().await;
    std::fs::remove_dir_all(&dir)?;

    let url = std::env::var("HOTLINE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let schema = format!("hl_bench_{}", std::process::id());
    let admin = Store::connect(&url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(admin.pool())
        .await?;
    let sep = if url.contains('?') { '&' } else { '?' };
    let pg = Store::connect(&format!("{url}{sep}options=-c%20search_path%3D{schema}")).await?;
    pg.migrate().await?;
    let result = run("PostgreSQL", &pg).await;
    pg.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(admin.pool())
        .await?;
    admin.close().await;
    result
}

async fn run(name: &str, store: &Store) -> BenchResult {
    println!("== {name}");
    // Fill: multi-row inserts, 1,000 per transaction.
    let started = Instant::now();
    for chunk in 0..ENTRIES / 1000 {
        let mut sql = String::from(
            "INSERT INTO callback_entries (number, state, queue, source, call_count, first_at, last_at) VALUES ",
        );
        for i in 0..1000 {
            let n = chunk * 1000 + i;
            let queue = if n % 2 == 0 { "support" } else { "sales" };
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "('+3620{n:07}', 'open', '{queue}', 'missed', 1, {t}, {t})",
                t = T0 + n
            ));
        }
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(store.pool())
            .await?;
    }
    println!(
        "filled {ENTRIES} entries in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Notes: repeat callers (an update of their entry) and new numbers.
    let started = Instant::now();
    for i in 0..1000i64 {
        let number = if i % 2 == 0 {
            format!("+3620{:07}", i * 37)
        } else {
            format!("+3630{:07}", i)
        };
        store
            .note_callback(&NewCallbackNote {
                number: &number,
                queue: Some("support"),
                source: CallbackSource::Missed,
                promised_at_ms: None,
                call_id: None,
                now_ms: T0 + ENTRIES + i,
            })
            .await?;
    }
    rate("notes (half repeat callers)", 1000, started.elapsed());

    // Reads behind the widget and the scheduler, with the whole list open.
    let now = T0 + 2 * ENTRIES;
    let mut widget = Vec::new();
    let mut scheduler = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        store.callback_list(now, 50).await?;
        widget.push(t.elapsed());
        let t = Instant::now();
        store
            .auto_callback_candidates("support", 3, now, 20)
            .await?;
        scheduler.push(t.elapsed());
    }
    latency("widget list (50 of them)", &mut widget);
    latency("scheduler candidates (20 due in one queue)", &mut scheduler);

    // One operator claims and finishes, entry after entry.
    let list = store.callback_list(now, 1000).await?;
    let started = Instant::now();
    for e in list.iter().take(500) {
        store.claim_callback(e.id, "anna", CLAIM_MS, now).await?;
    }
    rate("claims, one after another", 500, started.elapsed());
    let started = Instant::now();
    for e in list.iter().take(500) {
        store
            .finish_callback(
                e.id,
                "anna",
                hotline_core::callbacks::AttemptOutcome::NoAnswer,
                None,
                0,
                now,
            )
            .await?;
    }
    rate("outcomes recorded", 500, started.elapsed());

    // Eight operators race for the same 500 entries: each entry has exactly one winner.
    let targets: Vec<i64> = list.iter().skip(500).take(500).map(|e| e.id).collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for op in 0..8 {
        let store = store.clone();
        let targets = targets.clone();
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            for id in targets {
                if store
                    .claim_callback(id, &format!("op{op}"), CLAIM_MS, now)
                    .await
                    .is_ok()
                {
                    won.push(id);
                }
            }
            won
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await?);
    }
    let elapsed = started.elapsed();
    let total = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(total, 500, "every entry claimed exactly once");
    assert_eq!(all.len(), 500);
    println!(
        "claim race: 8 operators x 500 entries, 4000 attempts in {:.2} s ({:.0} attempts/s), 500 winners, 0 double claims",
        elapsed.as_secs_f64(),
        4000.0 / elapsed.as_secs_f64()
    );
    Ok(())
}

fn rate(what: &str, n: u32, d: Duration) {
    println!(
        "{what}: {n} in {:.2} s = {:.0}/s",
        d.as_secs_f64(),
        f64::from(n) / d.as_secs_f64()
    );
}

fn latency(what: &str, v: &mut [Duration]) {
    v.sort_unstable();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1000.0;
    println!(
        "{what}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        at(0.5),
        at(0.99),
        at(1.0)
    );
}
