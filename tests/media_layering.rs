//! `media/` is a library anyone could lift out: no file under src/media
//! names another voxguard module.

use std::path::Path;

fn rust_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/media exists") {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn media_imports_no_other_voxguard_module() {
    let media = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("src/media");
    let mut files = Vec::new();
    rust_files(&media, &mut files);
    assert!(files.len() >= 8, "{files:?}");
    let mut offences = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let mut rest = code;
            while let Some(at) = rest.find("crate::") {
                let path = &rest[at + "crate::".len()..];
                if !path.starts_with("media") {
                    offences.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
                rest = path;
            }
            if code.contains("voxguard::") && !code.contains("voxguard::media") {
                offences.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "media reaches outside itself:\n{}",
        offences.join("\n")
    );
}
