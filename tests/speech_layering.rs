//! The layering DESIGN.md promises for speech, held as a test: `speech/`
//! knows providers, the resilience engine and audio, never the session,
//! LiveKit, configuration files or the testbed; production code never
//! imports the testbed.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn offenders(dir: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join(dir);
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for needle in forbidden {
            if text.contains(needle) {
                found.push(format!("{} uses {needle}", file.display()));
            }
        }
    }
    found
}

#[test]
fn speech_knows_neither_sessions_nor_livekit_nor_config_nor_the_testbed() {
    let found = offenders(
        "src/speech",
        &[
            "crate::session",
            "crate::worker",
            "crate::config",
            "crate::testbed",
            "crate::dev",
            "crate::simulate",
            "crate::brain",
            "crate::recovery",
            "livekit",
        ],
    );
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_speech_simulator_is_not_imported_by_production_layers() {
    for dir in [
        "src/speech",
        "src/resilience",
        "src/media",
        "src/services",
        "src/config",
    ] {
        let found = offenders(dir, &["crate::testbed"]);
        assert!(found.is_empty(), "{found:#?}");
    }
}
