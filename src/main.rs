//! The `voxguard` binary: every command is in [`voxguard::cli`].

fn main() -> std::process::ExitCode {
    voxguard::cli::main()
}
