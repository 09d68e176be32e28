//! The container image's build stage must hold every file the build reads.
//! Docker cannot run here, so this reads the Dockerfile's `COPY` lines of
//! the build stage and checks that they cover the manifest and lock, every
//! workspace member's manifest, every target they declare that a build
//! compiles (library, binaries, benches), and every
//! file `src/` embeds with `include_str!`/`include_bytes!`. The runtime
//! stage must install what the voice loads at run time.

use std::path::{Component, Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The sources of the build stage's `COPY` lines, relative to the context.
fn copied(dockerfile: &str) -> Vec<PathBuf> {
    let mut sources = Vec::new();
    for line in dockerfile.lines() {
        let line = line.trim();
        if line.starts_with("FROM ") && line.contains(" AS runtime") {
            break;
        }
        let Some(rest) = line.strip_prefix("COPY ") else {
            continue;
        };
        if rest.starts_with("--from") {
            continue;
        }
        let parts: Vec<&str> = rest.split_whitespace().collect();
        let (_, files) = parts.split_last().expect("COPY has a destination");
        sources.extend(files.iter().map(PathBuf::from));
    }
    sources
}

/// `path` without `.` and `..` components.
fn normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Files the build reads: manifest, lock, declared targets, embedded files.
fn read_by_the_build() -> Vec<PathBuf> {
    let root = root();
    let mut needed = vec![PathBuf::from("Cargo.toml"), PathBuf::from("Cargo.lock")];
    let manifest: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    if let Some(path) = manifest
        .get("lib")
        .and_then(|l| l.get("path"))
        .and_then(|p| p.as_str())
    {
        needed.push(path.into());
    }
    let members: Vec<String> = manifest
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_str())
        .filter(|m| *m != ".")
        .map(String::from)
        .collect();
    let mut manifests = vec![(PathBuf::new(), manifest.clone())];
    for member in &members {
        let dir = PathBuf::from(member);
        needed.push(dir.join("Cargo.toml"));
        let text = std::fs::read_to_string(root.join(&dir).join("Cargo.toml")).unwrap();
        manifests.push((dir, text.parse().unwrap()));
    }
    for (dir, manifest) in &manifests {
        for bin in manifest
            .get("bin")
            .and_then(|b| b.as_array())
            .into_iter()
            .flatten()
        {
            if let Some(path) = bin.get("path").and_then(|p| p.as_str()) {
                needed.push(normal(&dir.join(path)));
            }
        }
    }
    assert!(
        needed.iter().any(|n| n.ends_with("src/main.rs")),
        "the binary's source is among the files the build reads: {needed:?}"
    );
    for bench in manifest
        .get("bench")
        .and_then(|b| b.as_array())
        .into_iter()
        .flatten()
    {
        let name = bench["name"].as_str().unwrap();
        let path = bench
            .get("path")
            .and_then(|p| p.as_str())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(format!("benches/{name}.rs")));
        needed.push(path);
    }
    let mut stack = vec![root.join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for marker in ["include_str!(\"", "include_bytes!(\""] {
                for (at, _) in text.match_indices(marker) {
                    let rest = &text[at + marker.len()..];
                    let target = &rest[..rest.find('"').unwrap()];
                    let file = path.parent().unwrap().join(target);
                    needed.push(normal(file.strip_prefix(&root).unwrap()));
                }
            }
        }
    }
    needed
}

#[test]
fn the_build_stage_copies_every_file_the_build_reads() {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let copied = copied(&dockerfile);
    assert!(!copied.is_empty(), "no COPY in the build stage");
    let missing: Vec<PathBuf> = read_by_the_build()
        .into_iter()
        .filter(|needed| !copied.iter().any(|c| needed.starts_with(c)))
        .collect();
    assert!(
        missing.is_empty(),
        "the image's build context lacks files the build reads: {missing:?} (COPY has {copied:?})"
    );
    // The check can fail: without config/ the embedded default is missing.
    let without_config: Vec<PathBuf> = copied
        .iter()
        .filter(|c| !c.starts_with("config"))
        .cloned()
        .collect();
    assert!(
        read_by_the_build()
            .iter()
            .any(|needed| !without_config.iter().any(|c| needed.starts_with(c))),
        "dropping config/ from the context would be caught"
    );
}

#[test]
fn the_runtime_stage_installs_what_the_voice_loads() {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let runtime = dockerfile
        .split("AS runtime")
        .nth(1)
        .expect("a runtime stage");
    for package in ["libopus0", "espeak-ng", "ca-certificates"] {
        assert!(
            runtime.contains(package),
            "the runtime image installs {package}"
        );
    }
}
