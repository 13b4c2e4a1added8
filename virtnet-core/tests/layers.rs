//! The core's modules import only from lower layers (ARCHITECTURE.md,
//! "Layers of virtnet-core"): no module cycles.

use std::collections::BTreeMap;
use std::path::Path;

/// Each module's layer; a module may import only from lower layers.
const LAYERS: &[(&str, u32)] = &[
    ("addr", 0),
    ("quote", 0),
    ("fault", 1),
    ("registry", 2),
    ("error", 3),
    ("down", 4),
    ("engine", 4),
    ("queue", 5),
    ("pipe", 5),
    ("ports", 6),
    ("kernel", 7),
    ("trace", 8),
    ("conn", 9),
    ("listener", 10),
    ("networker", 11),
    ("host", 12),
    ("tcp", 12),
    ("trace/traced", 12),
    ("faults", 12),
    ("subnet", 13),
    ("integrations", 14),
];

/// What the crate root re-exports, by the module that defines it.
const ROOT_ITEMS: &[(&str, &str)] = &[
    ("lock", "root"),
    ("async_trait", "root"),
    ("Addr", "addr"),
    ("AddrError", "addr"),
    ("AddrErrorKind", "addr"),
    ("InvalidHostName", "addr"),
    ("join_host_port", "addr"),
    ("split_host_port", "addr"),
    ("Conn", "conn"),
    ("Faults", "faults"),
    ("Fault", "faults"),
    ("Links", "faults"),
    ("MAX_DELAY", "faults"),
    ("OpError", "error"),
    ("VirtError", "error"),
    ("Host", "host"),
    ("Listener", "listener"),
    ("ListenerCloser", "listener"),
    ("Networker", "networker"),
    ("Registry", "registry"),
    ("RegistryCause", "registry"),
    ("RegistryError", "registry"),
    ("SubNetwork", "subnet"),
];

fn layer(module: &str) -> u32 {
    if module == "root" {
        return 0;
    }
    let top = module.split('/').next().unwrap_or(module);
    LAYERS
        .iter()
        .find(|(m, _)| *m == module)
        .or_else(|| LAYERS.iter().find(|(m, _)| *m == top))
        .map(|(_, l)| *l)
        .unwrap_or_else(|| panic!("module {module} has no layer in this test"))
}

/// The modules a `use crate::…;` statement imports from.
fn imported(statement: &str) -> Vec<String> {
    let path = statement
        .trim_start_matches("use crate::")
        .trim_end_matches(';');
    let names: Vec<&str> = match path.strip_prefix('{') {
        Some(list) => list
            .trim_end_matches('}')
            .split(',')
            .map(str::trim)
            .collect(),
        None => vec![path],
    };
    names
        .into_iter()
        .filter(|n| !n.is_empty())
        .map(|name| {
            let head = name.split("::").next().unwrap_or(name);
            match ROOT_ITEMS.iter().find(|(item, _)| *item == head) {
                Some((_, module)) => (*module).to_owned(),
                None => head.to_owned(),
            }
        })
        .collect()
}

#[test]
fn modules_import_only_downwards() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    for entry in walk(&src) {
        let rel = entry.strip_prefix(&src).unwrap().with_extension("");
        let module = rel.to_string_lossy().replace("/mod", "");
        if module == "lib" {
            continue;
        }
        files.insert(module, std::fs::read_to_string(&entry).unwrap());
    }
    let mut wrong = Vec::new();
    for (module, text) in &files {
        // Only the code, not its tests.
        let code = text.split("#[cfg(test)]").next().unwrap_or(text);
        for statement in use_statements(code) {
            for from in imported(&statement) {
                let own = module.split('/').next().unwrap_or(module);
                if from != own && layer(&from) >= layer(module) {
                    wrong.push(format!("{module} imports {from}: `{statement}`"));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

/// Every `use crate::…;` (or `pub use crate::…;`) statement of `code`, on
/// one line each, as `use crate::…;`.
fn use_statements(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut open: Option<String> = None;
    for line in code.lines().map(str::trim) {
        let current = match open.take() {
            Some(started) => started + " " + line,
            None => match line
                .strip_prefix("pub ")
                .unwrap_or(line)
                .strip_prefix("use crate::")
            {
                Some(rest) => format!("use crate::{rest}"),
                None => continue,
            },
        };
        if current.ends_with(';') {
            out.push(current);
        } else {
            open = Some(current);
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}
