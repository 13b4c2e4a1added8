//! The core reports dial, listen, accept and close as `tracing` debug events,
//! with the network and both addresses as fields.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[test]
fn dial_listen_accept_and_close_are_traced() {
    let out = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(out.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let net = pipenet::Network::new("traced");
            let a = net.new_host("α").await.unwrap();
            let b = net.new_host("β").await.unwrap();
            let l = a.listen(":7").await.unwrap();
            let _conns = tokio::try_join!(b.dial("α:7"), l.accept()).unwrap();
            let _ = b.dial("α:9").await;
            a.close().await.unwrap();
            net.close().await.unwrap();
        });
    });
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    for line in [
        "virtnet: listen network=pipetraced addr=α:7",
        "virtnet: accept network=pipetraced src=β:1 dst=α:1 listener=α:7",
        "virtnet: dial network=pipetraced src=β:1 dst=α:1",
        "virtnet: dial failed network=pipetraced src=β:2 dst=α:9 error=dial pipetraced β:2->α:9: connection refused",
        "virtnet: host closed network=pipetraced host=α",
        "virtnet: network closed network=pipetraced",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

/// Two traces (as two processes would) append JSON lines to one file; each
/// line is a JSON object naming the process, the network and the event.
#[tokio::test]
async fn traces_of_several_networkers_merge_as_json_lines() {
    use tokio::io::AsyncWriteExt;
    use virtnet_core::trace::Trace;
    use virtnet_core::Networker;

    let dir = std::env::temp_dir().join(format!("virtnet-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("events.jsonl");
    let net = pipenet::Network::new("jsontrace");
    let server_trace = Trace::new().json_file(&path).unwrap();
    let client_trace = Trace::new().json_file(&path).unwrap();
    let alpha = server_trace.wrap(net.new_host("α").await.unwrap());
    let beta = client_trace.wrap(net.new_host("β").await.unwrap());
    let l = alpha.listen(":5").await.unwrap();
    let (c, s) = tokio::join!(beta.dial("α:5"), l.accept());
    let (mut c, _s) = (c.unwrap(), s.unwrap());
    c.write_all(b"x\n\"y\"").await.unwrap();
    client_trace.set_enabled(false);
    c.write_all(b"unrecorded").await.unwrap();
    drop(c);

    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["listen", "dial", "accept", "connect", "write"]);
    for e in &events {
        assert_eq!(e["network"], "pipejsontrace");
        assert_eq!(e["pid"], std::process::id());
        assert!(e["time_ns"].as_u64().is_some());
    }
    assert_eq!(events[4]["local"], "β:1");
    assert_eq!(events[4]["peer"], "α:1");
    assert_eq!(events[4]["data"], "x\n\"y\"");
    assert_eq!(
        client_trace.lines().len(),
        3,
        "dial, connect, write; then switched off"
    );
    net.close().await.unwrap();
}
