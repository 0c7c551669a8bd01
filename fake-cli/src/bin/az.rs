//! The fake `az`: see `fake_cli::az_main`.

fn main() -> std::process::ExitCode {
    fake_cli::az_main::main()
}
