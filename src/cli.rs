//! The `voxguard` command line: parses the arguments and runs a command.
//! `src/main.rs` only calls [`main`]; the commands live here, in the
//! library, so the binary carries the library's optimization.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{self, Checked, Config, ConfigError, profile_cli};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "voxguard",
    version,
    about = "Realtime voice-agent worker for LiveKit with a recovery layer you can trust and tune"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the production worker against LIVEKIT_URL.
    Start {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run the embedded default: CRM simulator, loopback dispatcher, browser page.
    Dev {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Talk to the agent in the terminal.
    Console {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Drive simulated calls through the full stack and report.
    Simulate(SimulateArgs),
    /// The CRM simulator and LiveKit stand-in for `simulate`, in a process of
    /// their own: prints its addresses as one JSON line, exits when stdin closes.
    #[command(hide = true)]
    SimPeer {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value = "text")]
        media: crate::simulate::Media,
        /// Share of forwarded audio packets the stand-in drops.
        #[arg(long, default_value_t = 0.0)]
        media_loss: f64,
        /// Forwarded audio is delayed by up to this many milliseconds.
        #[arg(long, default_value_t = 0)]
        media_jitter_ms: u64,
    },
    /// Check, explain or tune timeout profiles.
    Profile {
        #[command(subcommand)]
        action: ProfileAction,
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
    /// Run the fault-injecting CRM simulator on its own.
    CrmSim {
        #[arg(long, default_value = "127.0.0.1:8090")]
        addr: String,
    },
    /// Run the fault-injecting STT/TTS simulator on its own (Deepgram,
    /// OpenAI-compatible and Cartesia protocols).
    SpeechSim {
        #[arg(long, default_value = "127.0.0.1:8091")]
        addr: String,
    },
}

#[derive(Subcommand)]
enum ProfileAction {
    /// Validate the configuration as `start` would (exit 2 where it would
    /// refuse), print each worst case and the credentials not set.
    Check,
    /// Show a profile's timeline.
    Explain { name: String },
    /// Recommend settings from observed latencies.
    Tune {
        #[arg(long)]
        latencies: PathBuf,
    },
}

/// glibc's allocator gives each thread that allocates its own arena (up to
/// eight per core). Sessions migrate between the runtime's threads, so a
/// call's memory ends up spread over many half-empty arenas: about 10% more
/// resident memory per session at 1,000 sessions. One arena per core (at
/// least two) matches the runtime's worker threads, which do the
/// allocating. `MALLOC_ARENA_MAX`, when set, wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let arenas = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
        let arenas = libc::c_int::try_from(arenas).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only changes the allocator's settings; it is called
        // first thing in main, before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

/// Parse the process arguments and run the command; the process exit code.
pub fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    match cli.command {
        Command::Profile { action, config } => run_profile(action, config.as_deref()),
        Command::CrmSim { addr } => run_crm_sim(&addr),
        Command::SpeechSim { addr } => run_speech_sim(&addr),
        Command::Dev { config } => run_dev(config.as_deref()),
        Command::Console { config } => run_console(config.as_deref()),
        Command::Start { config } => run_start(config.as_deref()),
        Command::SimPeer {
            seed,
            media,
            media_loss,
            media_jitter_ms,
        } => run_sim_peer(crate::simulate::peer::PeerOptions {
            seed,
            media,
            media_loss,
            media_jitter: std::time::Duration::from_millis(media_jitter_ms),
        }),
        Command::Simulate(args) => run_simulate(args),
    }
}

/// Load the configuration and check it for what `command` will do, or say
/// what to fix: every command refuses an invalid config with exit code 2,
/// before it starts anything.
fn load_config(command: config::Command, path: Option<&Path>) -> Result<Checked, ExitCode> {
    Config::load_for(command, path).map_err(invalid_config)
}

fn invalid_config(err: ConfigError) -> ExitCode {
    eprintln!("voxguard: invalid configuration\n{err}");
    ExitCode::from(2)
}

fn run_profile(action: ProfileAction, config_path: Option<&Path>) -> ExitCode {
    // The check answers for `start`; `explain` and `tune` read profiles.
    let loaded = match action {
        ProfileAction::Check => load_config(config::Command::Start, config_path),
        _ => Config::load(config_path)
            .map(|config| Checked {
                config,
                warnings: Vec::new(),
            })
            .map_err(invalid_config),
    };
    let checked = match loaded {
        Ok(checked) => checked,
        Err(code) => return code,
    };
    let config = &checked.config;
    match action {
        ProfileAction::Check => {
            let (report, ok) = profile_cli::check_for_start(&checked);
            print!("{report}");
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        ProfileAction::Explain { name } => match profile_cli::explain(config, &name) {
            Ok(timeline) => {
                print!("{timeline}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("voxguard: {err}");
                ExitCode::from(2)
            }
        },
        ProfileAction::Tune { latencies } => match profile_cli::tune_file(config, &latencies) {
            Ok(diff) => {
                print!("{diff}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("voxguard: {err}");
                ExitCode::from(2)
            }
        },
    }
}

fn init_tracing(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VOXGUARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn run_crm_sim(addr: &str) -> ExitCode {
    init_tracing("info");
    finish(
        "crm-sim",
        runtime().block_on(crate::testbed::crm::run_standalone(addr)),
    )
}

fn run_speech_sim(addr: &str) -> ExitCode {
    init_tracing("info");
    match runtime().block_on(crate::testbed::speech::run_standalone(addr)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("voxguard speech-sim: {err}");
            ExitCode::from(1)
        }
    }
}

fn run_dev(config_path: Option<&Path>) -> ExitCode {
    if std::env::var_os("LIVEKIT_URL").is_some() {
        println!(
            "voxguard dev: LIVEKIT_URL is set; running the worker against it with dev logging"
        );
        return run_start(config_path);
    }
    let config = match load_config(config::Command::Dev, config_path) {
        Ok(checked) => checked.config,
        Err(code) => return code,
    };
    init_tracing(&config.log.filter);
    runtime().block_on(async {
        let stack = match crate::dev::start_default(&config, config.dev.addr, 42).await {
            Ok(stack) => stack,
            Err(err) => {
                eprintln!("voxguard dev: {}", error_chain(&err));
                return ExitCode::from(1);
            }
        };
        println!("voxguard dev is running");
        println!(
            "  open http://{}/ to talk to the agent and break services",
            stack.addr
        );
        match &stack.state.voice {
            crate::dev::VoiceAvailability::Ready if stack.state.hears => {
                println!("  spoken calls: the agent's recognizer hears your microphone")
            }
            crate::dev::VoiceAvailability::Ready => println!(
                "  spoken calls: your browser recognizes your words (no recognizer configured: DEEPGRAM_API_KEY or OPENAI_API_KEY)"
            ),
            crate::dev::VoiceAvailability::Missing(why) => {
                println!("  typed calls only: {why}")
            }
        }
        if let Some(speech) = &stack.state.speech_sim {
            println!(
                "  voices: a simulated network voice ({}, break it from the page), then the local voice",
                speech.openai_base_url()
            );
        }
        println!(
            "  CRM simulator: {} (admin API at /_sim/faults)",
            stack.state.sim.base_url()
        );
        println!(
            "  loopback LiveKit dispatcher: {}",
            stack.state.loopback.url()
        );
        println!("  press Ctrl-C to stop");
        let _ = tokio::signal::ctrl_c().await;
        stack.state.worker.shutdown_now();
        ExitCode::SUCCESS
    })
}

fn run_console(config_path: Option<&Path>) -> ExitCode {
    let config = match load_config(config::Command::Console, config_path) {
        Ok(checked) => checked.config,
        Err(code) => return code,
    };
    init_tracing("warn");
    finish(
        "console",
        runtime().block_on(crate::dev::console::run(&config)),
    )
}

fn run_start(config_path: Option<&Path>) -> ExitCode {
    let Checked { config, warnings } = match load_config(config::Command::Start, config_path) {
        Ok(checked) => checked,
        Err(code) => return code,
    };
    init_tracing(&config.log.filter);
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    runtime().block_on(async {
        let started = match crate::agent::Production::build(&config, rand::random()) {
            Ok(production) => production.run_until_signal().await,
            Err(err) => Err(err),
        };
        match started {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("voxguard start: {}", error_chain(&err));
                ExitCode::from(if err.is_config() { 2 } else { 1 })
            }
        }
    })
}

/// Exit 0 on success; otherwise say what failed (with its causes) and exit 1.
fn finish<E: std::error::Error>(command: &str, result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("voxguard {command}: {}", error_chain(&err));
            ExitCode::from(1)
        }
    }
}

/// An error and its causes on one line, outermost first.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[derive(clap::Args)]
struct SimulateArgs {
    #[arg(long, default_value_t = 100)]
    calls: usize,
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    #[arg(long, default_value = "mixed")]
    scenario: String,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long)]
    json: bool,
    #[arg(long)]
    latencies_out: Option<PathBuf>,
    #[arg(long)]
    config: Option<PathBuf>,
    /// Pause between the agent listening and the caller's next line (e.g. 20ms, 2s).
    #[arg(long, value_parser = humantime::parse_duration)]
    think_time: Option<std::time::Duration>,
    /// Spread call starts evenly over this long (e.g. 30s).
    #[arg(long, value_parser = humantime::parse_duration)]
    ramp: Option<std::time::Duration>,
    /// Run the CRM simulator and LiveKit stand-in in this process
    /// instead of a child process.
    #[arg(long)]
    in_process: bool,
    /// `text` (words as text) or `audio` (callers speak and listen over
    /// WebRTC; needs espeak-ng and libopus).
    #[arg(long, default_value = "text")]
    media: crate::simulate::Media,
}

fn run_sim_peer(options: crate::simulate::peer::PeerOptions) -> ExitCode {
    init_tracing("error");
    let served = runtime().block_on(crate::simulate::peer::serve(options));
    finish("sim-peer", served.map_err(std::io::Error::other))
}

fn run_simulate(args: SimulateArgs) -> ExitCode {
    use std::io::IsTerminal;
    let config = match load_config(config::Command::Simulate, args.config.as_deref()) {
        Ok(checked) => checked.config,
        Err(code) => return code,
    };
    init_tracing("error");
    let mut plan = match crate::simulate::SimulationPlan::new(
        &args.scenario,
        args.calls,
        args.concurrency,
        args.seed,
    )
    .and_then(|plan| plan.with_media(args.media))
    {
        Ok(plan) => plan,
        Err(err) => {
            eprintln!("voxguard simulate: {err}");
            return ExitCode::from(2);
        }
    };
    plan.think_time = args.think_time.unwrap_or(plan.think_time);
    plan.ramp = args.ramp.unwrap_or(plan.ramp);
    if !args.in_process {
        plan.peer = match std::env::current_exe() {
            Ok(program) => crate::simulate::Peer::ChildProcess { program },
            Err(err) => {
                eprintln!(
                    "voxguard simulate: cannot find this program to start its peer: {err} (--in-process runs without one)"
                );
                return ExitCode::from(1);
            }
        };
    }
    let show_progress = std::io::stderr().is_terminal();
    let progress = move |done: usize, total: usize| {
        if show_progress && (done == total || done.is_multiple_of(10)) {
            let width = 40;
            let filled = done * width / total.max(1);
            eprint!(
                "\r  [{}{}] {done}/{total} calls",
                "#".repeat(filled),
                " ".repeat(width - filled)
            );
            if done == total {
                eprintln!();
            }
        }
    };
    let output = match runtime().block_on(crate::simulate::run(&config, &plan, progress)) {
        Ok(output) => output,
        Err(err) => {
            eprintln!("voxguard simulate: {err}");
            return ExitCode::from(1);
        }
    };
    let report = output.report;
    if let Some(path) = &args.latencies_out {
        let written = std::fs::File::create(path).and_then(|file| {
            profile_cli::write_jsonl(std::io::BufWriter::new(file), &output.samples)
        });
        if let Err(err) = written {
            eprintln!("voxguard simulate: cannot write {}: {err}", path.display());
            return ExitCode::from(1);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        print!("{}", report.to_table());
    }
    let violations = report.violations();
    if !violations.is_empty() {
        eprintln!("voxguard simulate: invariants violated: {violations:?}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
