//! The README states the worker's defaults; they must be the shipped
//! config's, read through the same path `voxguard start` uses.

use voxguard::config::Config;

#[test]
fn the_readme_states_the_shipped_worker_defaults() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let worker = Config::embedded_default().unwrap().worker;
    let stated = [
        format!("{} sessions", worker.max_sessions),
        format!(
            "FULL at {} % load",
            (worker.load_full_threshold * 100.0).round()
        ),
        format!("{} s drain", worker.drain_timeout.as_secs()),
        format!("ping every {} s", worker.ping_interval.as_secs()),
        format!("dead link after {} s", worker.ping_timeout.as_secs()),
    ];
    for figure in stated {
        assert!(
            readme.contains(&figure),
            "README states {figure:?} as a default (the shipped config/voxguard.toml has it)"
        );
    }
    if worker.reconnect_max_retries == 0 {
        assert!(readme.contains("reconnect forever"));
    }
}

#[test]
fn a_pipe_or_an_endless_file_is_refused_as_a_config() {
    let dir = std::env::temp_dir().join(format!("voxguard-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("fifo.toml");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    // Returns at once (opening a FIFO would wait for a writer forever).
    let error = Config::load(Some(&fifo)).unwrap_err().to_string();
    assert!(error.contains("not a regular file"), "{error}");
    let error = Config::load(Some(std::path::Path::new("/dev/zero")))
        .unwrap_err()
        .to_string();
    assert!(error.contains("not a regular file"), "{error}");
    let big = dir.join("big.toml");
    std::fs::write(&big, "# padding\n".repeat(500_000)).unwrap();
    let error = Config::load(Some(&big)).unwrap_err().to_string();
    assert!(error.contains("larger than 4 MiB"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_display_name_too_long_to_say_is_refused() {
    let text = voxguard::config::DEFAULT_TOML.replacen(
        "display_name = ",
        &format!("display_name = \"{}\"\n# was: ", "x".repeat(10_000)),
        1,
    );
    let error = Config::from_toml(&text, "long.toml")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("display_name") && error.contains("too long to say aloud"),
        "{error}"
    );
}
