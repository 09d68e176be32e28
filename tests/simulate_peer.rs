//! `voxguard simulate` with the CRM simulator and the LiveKit stand-in in a
//! `voxguard sim-peer` child process: the peer's own contract, a run across
//! the process boundary, and how a broken or dead peer fails the run.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use voxguard::config::Config;
use voxguard::simulate::peer::PeerReady;
use voxguard::simulate::{Peer, SimulationPlan};

const VOXGUARD: &str = env!("CARGO_BIN_EXE_voxguard");

fn simulate(args: &[&str]) -> (std::process::ExitStatus, serde_json::Value, String) {
    let out = Command::new(VOXGUARD)
        .arg("simulate")
        .args(args)
        .output()
        .expect("run voxguard simulate");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status, report, stderr)
}

fn assert_clean(report: &serde_json::Value) {
    for key in [
        "budget_overruns",
        "unpaired_tool_calls",
        "state_violations",
        "immediate_repeats",
        "false_promises",
        "panics",
        "sessions_failed",
    ] {
        assert_eq!(report[key], 0, "{key} in {report}");
    }
}

#[test]
fn simulate_runs_its_peer_in_a_child_process_by_default() {
    let (status, report, stderr) = simulate(&[
        "--scenario",
        "mixed",
        "--calls",
        "12",
        "--concurrency",
        "4",
        "--seed",
        "7",
        "--json",
    ]);
    assert!(status.success(), "{stderr}");
    assert_eq!(report["mode"], "child-process");
    assert_eq!(report["calls"], 12);
    assert!(report["sessions_peak"].as_u64().unwrap() >= 1, "{report}");
    assert!(report["tool_calls"].as_u64().unwrap() > 0, "{report}");
    let peer_rss = report["peer_rss_peak_bytes"].as_u64().expect("peer rss");
    assert!(peer_rss > 1 << 20, "peer VmHWM {peer_rss}");
    assert_clean(&report);
}

#[test]
fn in_process_keeps_everything_in_one_process() {
    let (status, report, stderr) = simulate(&[
        "--scenario",
        "healthy",
        "--calls",
        "4",
        "--concurrency",
        "2",
        "--in-process",
        "--json",
    ]);
    assert!(status.success(), "{stderr}");
    assert_eq!(report["mode"], "in-process");
    assert!(report.get("peer_rss_peak_bytes").is_none(), "{report}");
    assert_clean(&report);
}

#[test]
fn sim_peer_serves_its_control_api_and_exits_when_stdin_closes() {
    let mut peer = Command::new(VOXGUARD)
        .args(["sim-peer", "--seed", "7"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start sim-peer");
    let mut line = String::new();
    BufReader::new(peer.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("ready line");
    let ready: PeerReady = serde_json::from_str(&line).expect("ready JSON");
    assert_eq!(ready.pid, peer.id());
    assert!(!ready.emails.is_empty());

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let job = client
            .post(format!("{}/jobs", ready.control_url))
            .json(&serde_json::json!({ "room": "r1", "participant": "caller" }))
            .send()
            .await
            .unwrap();
        assert_eq!(job.status(), 503, "no worker is registered yet");
        let body: serde_json::Value = job.json().await.unwrap();
        assert_eq!(body["error"], "no registered worker");

        let leave: serde_json::Value = client
            .post(format!("{}/leaves", ready.control_url))
            .json(&serde_json::json!({ "room": "nowhere", "participant": "caller" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(leave["left"], false);

        let faults = client
            .put(format!("{}/_sim/faults", ready.crm_base_url))
            .json(&serde_json::json!({ "preset": "hang" }))
            .send()
            .await
            .unwrap();
        assert!(faults.status().is_success());
    });

    drop(peer.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = peer.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "sim-peer outlived its stdin");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_with_peer(program: &str) -> Result<voxguard::simulate::SimulationOutput, String> {
    let config = Config::load(None).unwrap();
    let mut plan = SimulationPlan::new("healthy", 2, 1, 7).unwrap();
    plan.peer = Peer::ChildProcess {
        program: program.into(),
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(async {
            tokio::time::timeout(
                Duration::from_secs(30),
                voxguard::simulate::run(&config, &plan, |_, _| {}),
            )
            .await
        })
        .expect("a broken peer must not hang the run")
}

#[test]
fn a_peer_that_prints_something_else_fails_the_run_clearly() {
    // `echo sim-peer --seed 7` prints its arguments, not a ready line.
    let err = run_with_peer("/bin/echo").err().expect("must fail");
    assert!(err.contains("not its addresses"), "{err}");
}

#[test]
fn a_peer_that_exits_before_it_is_ready_fails_the_run_clearly() {
    let err = run_with_peer("/bin/false").err().expect("must fail");
    assert!(err.contains("exited before it was ready"), "{err}");
}

#[test]
fn a_peer_that_cannot_start_fails_the_run_clearly() {
    let err = run_with_peer("/nonexistent/voxguard")
        .err()
        .expect("must fail");
    assert!(err.contains("cannot start the simulator peer"), "{err}");
}

#[test]
fn a_peer_killed_mid_run_fails_simulate_with_exit_code_1() {
    let mut sim = Command::new(VOXGUARD)
        .args([
            "simulate",
            "--scenario",
            "healthy",
            "--calls",
            "200",
            "--concurrency",
            "4",
            "--think-time",
            "1s",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start simulate");
    let deadline = Instant::now() + Duration::from_secs(20);
    let peer_pid = loop {
        if let Some(pid) = child_of(sim.id()) {
            break pid;
        }
        assert!(Instant::now() < deadline, "simulate started no peer");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Let calls get under way, then kill the peer outright.
    std::thread::sleep(Duration::from_secs(2));
    let killed = Command::new("kill")
        .args(["-KILL", &peer_pid])
        .status()
        .unwrap();
    assert!(killed.success());

    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = sim.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = sim.kill();
            panic!("simulate hung after its peer died");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut sim.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("exited during the run"), "{stderr}");
}

/// A child process of `pid`, whichever of its threads started it.
fn child_of(pid: u32) -> Option<String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    tasks.flatten().find_map(|task| {
        let listed = std::fs::read_to_string(task.path().join("children")).ok()?;
        listed.split_whitespace().next().map(str::to_owned)
    })
}
