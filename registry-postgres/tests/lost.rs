//! A server that cannot be reached: a connection killed by the server, a
//! server stopped and started again, a closed port, a port that never
//! answers. Calls fail with `Unreachable` and the handle comes back by
//! itself.

mod common;

use std::io;
use std::path::Path;

use common::{bounded, unique, Schema};
use registry_postgres::PostgresRegistry;
use virtnet_core::fault::{FaultRules, Link};
use virtnet_core::{Registry, RegistryCause, RegistryError, VirtError};

/// The `.ci/postgres` script: starts and stops a private server.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../.ci/postgres");

/// Asserts that `e` says the server cannot be reached, as an I/O error
/// too, and returns its text.
#[track_caller]
fn assert_unreachable(e: RegistryError) -> String {
    assert!(
        matches!(e.cause(), RegistryCause::Unreachable(_)),
        "not Unreachable: {e}"
    );
    let text = e.to_string();
    let io: io::Error = e.into();
    assert_eq!(io.kind(), io::ErrorKind::NetworkDown);
    assert_eq!(VirtError::of(&io), Some(VirtError::RegistryDown));
    text
}

/// Terminates the server processes of the connections named `app`
/// (`application_name`) whose last statement starts with `query`, waiting
/// until they are gone; returns how many.
async fn terminate(url: &str, app: &str, query: &str) -> i64 {
    let c = common::client(url).await;
    let row = c
        .query_one(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 30000)) \
             FROM pg_stat_activity WHERE application_name = $1 AND query LIKE $2",
            &[&app, &format!("{query}%")],
        )
        .await
        .expect("terminate");
    row.get(0)
}

/// Like [`terminate`], from another thread, blocking this one meanwhile:
/// on a current-thread runtime, the handle's connection task cannot run,
/// so the handle has not noticed the loss when its next call starts.
fn terminate_unnoticed(url: &str, app: &str) -> i64 {
    let (url, app) = (url.to_owned(), app.to_owned());
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(terminate(&url, &app, ""))
    })
    .join()
    .expect("terminating thread")
}

/// The server kills the handle's connection (`pg_terminate_backend`, as an
/// administrator or a failover would). What the handle guarantees: a read
/// succeeds, on the old connection's replacement (if the call finds the
/// connection lost only when it tries it, it is tried once more on a new
/// one); a write that finds the connection already closed runs on a new
/// one, and one that finds the loss only when it tries fails with
/// `Unreachable` (it is never repeated: in general it may have been
/// carried out) and the next call succeeds.
#[tokio::test(flavor = "current_thread")]
async fn killed_connection_is_replaced() {
    let server = common::server_url();
    let schema = Schema::new(&server).await;
    let app = unique("killed");
    let url = common::with_param(&schema.url, "application_name", &app);
    let reg = PostgresRegistry::connect(&url, "net").await.unwrap();
    reg.announce("α", "1").await.unwrap();

    // The handle may have seen the loss (its connection task ran while
    // the termination was awaited) or not.
    assert_eq!(terminate(&server, &app, "").await, 1);
    assert_eq!(reg.query("α").await.unwrap(), "1");
    assert_eq!(terminate(&server, &app, "").await, 1);
    assert_eq!(reg.list().await.unwrap().len(), 1);
    assert_eq!(terminate(&server, &app, "").await, 1);
    match reg.announce("β", "2").await {
        Ok(()) => {}
        Err(e) => {
            assert_unreachable(e);
            reg.announce("β", "2").await.unwrap();
        }
    }
    assert_eq!(reg.query("β").await.unwrap(), "2");

    // The handle has not seen the loss: the read finds it, and is tried
    // again on a new connection.
    assert_eq!(terminate_unnoticed(&server, &app), 1);
    assert_eq!(reg.query("α").await.unwrap(), "1");
    assert_eq!(terminate_unnoticed(&server, &app), 1);
    assert_eq!(reg.list().await.unwrap().len(), 2);

    // A write finds it: it fails, with what the server said, and is not
    // repeated; the next call gets a new connection.
    assert_eq!(terminate_unnoticed(&server, &app), 1);
    let text = assert_unreachable(reg.announce("γ", "3").await.unwrap_err());
    assert!(
        text.starts_with(&format!(
            r#"{url}#net: announce "γ" "3": registry is down: "#
        )),
        "{text}"
    );
    assert!(
        text.ends_with("FATAL: terminating connection due to administrator command"),
        "{text}"
    );
    assert!(matches!(
        reg.query("γ").await.unwrap_err().cause(),
        RegistryCause::NoHost
    ));
    reg.announce("γ", "3").await.unwrap();
    assert_eq!(reg.query("γ").await.unwrap(), "3");
    reg.close().await.unwrap();
}

/// A private server, stopped and started again under the same handle.
struct Private {
    dir: tempfile::TempDir,
}

impl Private {
    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("pg")
    }

    async fn run(&self, cmd: &str) -> String {
        let out = tokio::process::Command::new("bash")
            .arg(SCRIPT)
            .arg(cmd)
            .arg(self.path())
            .output()
            .await
            .expect("run .ci/postgres");
        assert!(
            out.status.success(),
            ".ci/postgres {cmd} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        // Stopped even if the test failed.
        let _ = std::process::Command::new("bash")
            .arg(SCRIPT)
            .arg("stop")
            .arg(self.path())
            .output();
    }
}

fn make_private() -> Private {
    let dir = tempfile::tempdir().expect("temporary directory");
    // The server may run as another user (`postgres`, when root runs the
    // tests): it must reach its directory.
    set_mode_755(dir.path());
    Private { dir }
}

fn set_mode_755(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod 755");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_server_is_unreachable_until_it_is_back() {
    // Needs PostgreSQL installed, as a server at VIRTNET_POSTGRES_URL shows.
    common::server_url();
    let private = make_private();
    let url = bounded(300, "starting a private server", private.run("start")).await;
    let reg = PostgresRegistry::connect(&url, "net").await.unwrap();
    let other = PostgresRegistry::connect(&url, "net").await.unwrap();
    reg.announce("α", "1").await.unwrap();
    let faults = reg.faults().unwrap();
    assert_eq!(faults.load().await.unwrap().version, 0);
    // A watch parked on the server when it stops.
    let watching = {
        let faults = faults.clone();
        tokio::spawn(async move { faults.changed(0).await })
    };

    bounded(120, "stopping the server", private.run("stop")).await;
    let refused = |text: &str| text.contains("Connection refused");
    let text = assert_unreachable(reg.query("α").await.unwrap_err());
    assert!(refused(&text), "{text}");
    assert!(
        text.starts_with(&format!(r#"{url}#net: query "α": registry is down: "#)),
        "{text}"
    );
    let text = assert_unreachable(reg.announce("β", "2").await.unwrap_err());
    assert!(refused(&text), "{text}");
    assert_unreachable(reg.list().await.unwrap_err());
    assert_unreachable(other.replace("α", "1", "2").await.unwrap_err());
    let e = bounded(60, "the parked watch", watching)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NetworkDown, "{e}");
    assert_eq!(VirtError::of(&e), Some(VirtError::RegistryDown), "{e}");
    let e = faults.changed(0).await.unwrap_err();
    assert!(refused(&e.to_string()), "{e}");
    let e = faults.load().await.unwrap_err();
    assert_eq!(VirtError::of(&e), Some(VirtError::RegistryDown), "{e}");
    // A connect now fails the same way.
    let e = PostgresRegistry::connect(&url, "net").await.unwrap_err();
    assert!(refused(&assert_unreachable(e)));

    // Back on the same port: the same handles answer again.
    assert_eq!(
        bounded(300, "starting the server again", private.run("start")).await,
        url
    );
    assert_eq!(reg.query("α").await.unwrap(), "1");
    reg.announce("β", "2").await.unwrap();
    assert_eq!(other.query("β").await.unwrap(), "2");
    // The watch works again, and sees a change made by the other handle.
    let watching = {
        let faults = faults.clone();
        tokio::spawn(async move { faults.changed(0).await })
    };
    let mut rules = FaultRules {
        version: 1,
        ..FaultRules::default()
    };
    rules.update(&Link::new("α", "β"), |f| f.partition = true);
    assert!(other.faults().unwrap().store_if(0, &rules).await.unwrap());
    let seen = bounded(60, "the watch after the restart", watching)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, rules);
    reg.close().await.unwrap();
    other.close().await.unwrap();
}

/// A port nothing listens on: connecting fails at once with what the OS
/// said.
#[tokio::test]
async fn closed_port_is_unreachable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("postgres://virtnet:hunter2@127.0.0.1:{port}/postgres");
    let e = bounded(30, "connect", PostgresRegistry::connect(&url, "net"))
        .await
        .unwrap_err();
    assert_eq!(e.op(), "connect");
    let text = assert_unreachable(e);
    assert_eq!(
        text,
        format!(
            "postgres://virtnet:***@127.0.0.1:{port}/postgres#net: connect \"net\": registry is down: \
             error connecting to server: Connection refused (os error 111)"
        )
    );
    let e = bounded(30, "networks", registry_postgres::networks(&url))
        .await
        .unwrap_err();
    assert_unreachable(e);
}

/// A port that accepts connections but never answers: connecting gives
/// up after the URL's connect_timeout.
#[tokio::test]
async fn silent_server_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Connections complete in the backlog; nobody ever answers them.
    let url = format!("postgres://virtnet@127.0.0.1:{port}/postgres?connect_timeout=1");
    let e = bounded(30, "connect", PostgresRegistry::connect(&url, "net"))
        .await
        .unwrap_err();
    let text = assert_unreachable(e);
    assert!(
        text.ends_with("registry is down: no answer from the server within 1s (connect_timeout)"),
        "{text}"
    );
    drop(listener);
}
