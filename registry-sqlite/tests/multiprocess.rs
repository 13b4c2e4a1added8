//! Many processes, one registry file: 16 child processes, started at the
//! same moment, open a brand-new registry file and announce 50 hosts each;
//! then every one of them must see all 800 entries, and no process may have
//! seen a single error. Repeated for 20 rounds on fresh files, and for 5
//! rounds on a file that already exists (processes joining a network).
//!
//! The reference fails this (its setup transaction reads, then writes, and
//! gets SQLITE_BUSY: 9 failures in 30 trials with 8 processes).
//!
//! The children are this same binary, run again with `REGISTRY_SQLITE_CHILD`
//! set, so this test has its own `main` instead of libtest's harness. A
//! child talks to the parent over its stdin and stdout, one line per step:
//!
//! ```text
//! child:  ready          (started; blocks reading stdin)
//! parent: g              (to all children at once: open and announce)
//! child:  announced      (or: error <text>)
//! parent: c              (once all have announced: check)
//! child:  seen 800       (or: error <text>)
//! ```

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use registry_sqlite::SqliteRegistry;
use virtnet_core::Registry;

const CHILDREN: usize = 16;
const HOSTS: usize = 50;
const FRESH_ROUNDS: usize = 20;
const JOIN_ROUNDS: usize = 5;
const ROLE: &str = "REGISTRY_SQLITE_CHILD";
const NETWORK: &str = "multiproc";
const NAME: &str = "many_processes_announce_at_once";
/// Kills the whole test if it hangs.
const DEADLINE: Duration = Duration::from_secs(300);

fn host(child: usize, j: usize) -> String {
    format!("p{child}-h{j}")
}

fn data(child: usize, j: usize) -> String {
    format!("127.0.0.1:{}", 10_000 + child * 100 + j)
}

fn expected() -> BTreeMap<String, String> {
    (0..CHILDREN)
        .flat_map(|c| (0..HOSTS).map(move |j| (host(c, j), data(c, j))))
        .collect()
}

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        child(&role);
        return;
    }
    // Behave like a libtest binary towards `cargo test <filter>` and
    // `--list`, enough not to surprise anyone.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("{NAME}: test");
        return;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty() && !filters.iter().any(|f| NAME.contains(f.as_str())) {
        println!("running 0 tests ({NAME} filtered out)");
        return;
    }

    std::thread::spawn(|| {
        std::thread::sleep(DEADLINE);
        eprintln!("{NAME}: still running after {DEADLINE:?}; giving up");
        std::process::exit(1);
    });

    println!("running 1 test");
    let start = Instant::now();
    let mut failures = Vec::new();
    for round in 0..FRESH_ROUNDS + JOIN_ROUNDS {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("registry.db");
        let join = round >= FRESH_ROUNDS;
        if join {
            // An existing network: the file is there, with the tables.
            let reg = SqliteRegistry::open_blocking(&path, NETWORK).expect("create registry");
            drop(reg);
        }
        for f in run_round(&path) {
            failures.push(format!("round {round} (join: {join}): {f}"));
        }
    }
    let took = start.elapsed();
    if failures.is_empty() {
        println!(
            "test {NAME} ... ok ({} rounds x {CHILDREN} processes x {HOSTS} hosts, 0 errors, {took:.1?})",
            FRESH_ROUNDS + JOIN_ROUNDS
        );
        println!("\ntest result: ok. 1 passed; 0 failed");
    } else {
        for f in &failures {
            eprintln!("{f}");
        }
        println!(
            "test {NAME} ... FAILED ({} failures, {took:.1?})",
            failures.len()
        );
        std::process::exit(1);
    }
}

struct Kid {
    index: usize,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Kid {
    fn line(&mut self) -> String {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) => "error: exited without a word".to_owned(),
            Ok(_) => line.trim_end().to_owned(),
            Err(e) => format!("error: reading its output: {e}"),
        }
    }

    fn say(&mut self, byte: u8) {
        // A child that died is reported by its next line.
        let _ = self.stdin.write_all(&[byte]);
        let _ = self.stdin.flush();
    }
}

/// One round on `path`; returns what went wrong.
fn run_round(path: &Path) -> Vec<String> {
    let exe = std::env::current_exe().expect("path of this test binary");
    let mut failures = Vec::new();
    let mut kids: Vec<Kid> = (0..CHILDREN)
        .map(|index| {
            let mut child = Command::new(&exe)
                .env(ROLE, format!("{index}\t{}", path.display()))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn child");
            let stdin = child.stdin.take().expect("child stdin");
            let stdout = BufReader::new(child.stdout.take().expect("child stdout"));
            Kid {
                index,
                child,
                stdin,
                stdout,
            }
        })
        .collect();

    // All started; then all go at once.
    for k in &mut kids {
        let l = k.line();
        if l != "ready" {
            failures.push(format!("child {}: {l}", k.index));
        }
    }
    for k in &mut kids {
        k.say(b'g');
    }
    for k in &mut kids {
        let l = k.line();
        if l != "announced" {
            failures.push(format!("child {}: {l}", k.index));
        }
    }
    for k in &mut kids {
        k.say(b'c');
    }
    let want = format!("seen {}", CHILDREN * HOSTS);
    for k in &mut kids {
        let l = k.line();
        if l != want {
            failures.push(format!("child {}: {l}", k.index));
        }
    }
    for mut k in kids {
        drop(k.stdin);
        match k.child.wait() {
            Ok(s) if s.success() => {}
            Ok(s) => failures.push(format!("child {}: {s}", k.index)),
            Err(e) => failures.push(format!("child {}: wait: {e}", k.index)),
        }
    }

    // And afterwards, from here: exactly the 800 entries.
    match SqliteRegistry::open_blocking(path, NETWORK) {
        Ok(reg) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime");
            match rt.block_on(reg.list()) {
                Ok(list) => {
                    let got: BTreeMap<String, String> = list.into_iter().collect();
                    if got != expected() {
                        failures.push(format!("parent lists {} entries, not the 800", got.len()));
                    }
                }
                Err(e) => failures.push(format!("parent: {e}")),
            }
            let _ = rt.block_on(reg.close());
        }
        Err(e) => failures.push(format!("parent: {e}")),
    }
    failures
}

/// A child: `role` is `<index>\t<path>`.
fn child(role: &str) {
    let out = std::io::stdout();
    let say = |line: &str| {
        let mut out = out.lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    let Some((index, path)) = role.split_once('\t') else {
        say("error: bad role");
        std::process::exit(2);
    };
    let Ok(index) = index.parse::<usize>() else {
        say("error: bad index");
        std::process::exit(2);
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let wait = |what: u8| {
        let mut b = [0u8];
        match std::io::stdin().read(&mut b) {
            Ok(1) if b[0] == what => {}
            // The parent went away or said something else: stop.
            _ => std::process::exit(3),
        }
    };

    say("ready");
    wait(b'g');
    let result = rt.block_on(async {
        let reg = SqliteRegistry::open(path, NETWORK)
            .await
            .map_err(|e| e.to_string())?;
        for j in 0..HOSTS {
            reg.announce(&host(index, j), &data(index, j))
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(reg)
    });
    let reg = match result {
        Ok(reg) => reg,
        Err(e) => {
            say(&format!("error: {e}"));
            std::process::exit(1);
        }
    };
    say("announced");
    wait(b'c');
    let result = rt.block_on(async {
        let want = expected();
        let list: BTreeMap<String, String> = reg
            .list()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        if list != want {
            return Err(format!(
                "lists {} entries, not the {}",
                list.len(),
                want.len()
            ));
        }
        for (h, d) in &want {
            let got = reg.query(h).await.map_err(|e| e.to_string())?;
            if &got != d {
                return Err(format!("query {h:?} = {got:?}, want {d:?}"));
            }
        }
        reg.close().await.map_err(|e| e.to_string())?;
        Ok(want.len())
    });
    match result {
        Ok(n) => say(&format!("seen {n}")),
        Err(e) => {
            say(&format!("error: {e}"));
            std::process::exit(1);
        }
    }
}
