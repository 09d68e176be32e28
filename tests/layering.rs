//! The layering in ../shared/DESIGN.md as a test: each top-level module of
//! `src/` may name only the modules listed for it. A production module that
//! reaches up (the session importing the worker) or into the testbed (the
//! other side of every boundary) fails here, naming the file and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What each module may import, besides itself. Modules not listed (cli,
/// dev, simulate, testbed) sit at the top and may use anything.
fn allowed() -> BTreeMap<&'static str, Vec<&'static str>> {
    let leaves: [(&str, &[&str]); 15] = [
        // Libraries anyone could lift out.
        ("resilience", &[]),
        ("media", &[]),
        ("secret", &[]),
        ("edge", &["resilience"]),
        // Shared state, and configuration: config parses into the settings
        // types of the layers it configures; only the composition root (and
        // the commands on top) import config.
        ("fleet", &["resilience"]),
        (
            "config",
            &[
                "resilience",
                "fleet",
                "recovery",
                "secret",
                "speech",
                "media",
                "voice",
            ],
        ),
        // The conversation, text only.
        ("brain", &["resilience", "secret", "edge"]),
        ("recovery", &["resilience", "brain"]),
        ("session", &["brain", "recovery", "resilience", "fleet"]),
        // The outside world.
        ("services", &["resilience", "secret", "edge"]),
        ("speech", &["resilience", "media", "secret", "edge"]),
        ("room", &["media", "secret"]),
        (
            "voice",
            &["media", "speech", "session", "recovery", "resilience"],
        ),
        (
            "worker",
            &["room", "session", "fleet", "resilience", "secret"],
        ),
        // The composition root knows every production layer.
        (
            "agent",
            &[
                "worker",
                "room",
                "voice",
                "session",
                "brain",
                "recovery",
                "speech",
                "services",
                "media",
                "resilience",
                "fleet",
                "config",
                "secret",
                "edge",
            ],
        ),
    ];
    leaves
        .into_iter()
        .map(|(module, deps)| (module, deps.to_vec()))
        .collect()
}

/// The top-level modules of the crate, from src/lib.rs.
fn crate_modules(src: &Path) -> Vec<String> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    lib.lines()
        .filter_map(|line| line.trim().strip_prefix("pub mod "))
        .map(|rest| rest.trim_end_matches(';').to_string())
        .collect()
}

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("readable source dir") {
            rust_files(&entry.expect("dir entry").path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// Every `crate::NAME` a line of code names (comments are skipped, as are
/// doc comments: they may describe other layers).
fn named_modules(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let names: Vec<&str> = if let Some(group) = after.strip_prefix('{') {
            // `crate::{a, b::c}`: the first segment of each item.
            let inner = group.split('}').next().unwrap_or("");
            inner
                .split(',')
                .map(|item| item.trim().split("::").next().unwrap_or("").trim())
                .collect()
        } else {
            vec![
                after
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or(""),
            ]
        };
        found.extend(
            names
                .into_iter()
                .filter(|n| !n.is_empty())
                .map(String::from),
        );
        rest = after;
    }
    found
}

/// Files of `module` (src/module.rs or src/module/**) with the modules each
/// line names, as (file, line number, named module).
fn imports_of(src: &Path, module: &str) -> Vec<(PathBuf, usize, String)> {
    let mut files = Vec::new();
    rust_files(&src.join(module), &mut files);
    let single = src.join(format!("{module}.rs"));
    if single.exists() {
        files.push(single);
    }
    let mut imports = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable source");
        for (index, line) in text.lines().enumerate() {
            for named in named_modules(line) {
                imports.push((file.clone(), index + 1, named));
            }
        }
    }
    imports
}

#[test]
fn every_module_imports_only_the_layers_below_it() {
    let src = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("src");
    let modules = crate_modules(&src);
    let rules = allowed();
    let mut violations = Vec::new();
    for (module, deps) in &rules {
        for (file, line, named) in imports_of(&src, module) {
            let known = modules.contains(&named);
            if known && named != *module && !deps.contains(&named.as_str()) {
                violations.push(format!(
                    "{}:{line}: `{module}` may not use `crate::{named}`",
                    file.display()
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layering violations:\n{}",
        violations.join("\n")
    );
}

#[test]
fn production_modules_never_name_the_testbed() {
    let src = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("src");
    let mut offenders = Vec::new();
    for module in allowed().keys() {
        for (file, line, named) in imports_of(&src, module) {
            if named == "testbed" || named == "dev" || named == "simulate" {
                offenders.push(format!("{}:{line}: crate::{named}", file.display()));
            }
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}

#[test]
fn every_top_level_module_has_a_layer_or_sits_on_top() {
    let src = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("src");
    let rules = allowed();
    let on_top = ["cli", "dev", "simulate", "testbed"];
    for module in crate_modules(&src) {
        assert!(
            rules.contains_key(module.as_str()) || on_top.contains(&module.as_str()),
            "module `{module}` has no place in the layering; add it to tests/layering.rs"
        );
    }
}

#[test]
fn the_checker_sees_grouped_and_nested_paths() {
    assert_eq!(
        named_modules("use crate::session::{AgentEvent};"),
        ["session"]
    );
    assert_eq!(
        named_modules("use crate::{room::signal, worker};"),
        ["room", "worker"]
    );
    assert_eq!(
        named_modules("let x = crate::fleet::Fleet::new(); // crate::testbed"),
        ["fleet"]
    );
    assert!(named_modules("//! see crate::testbed").is_empty());
}
