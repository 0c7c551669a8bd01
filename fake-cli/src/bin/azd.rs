//! The fake `azd`: see `fake_cli::azd_main`.

fn main() -> std::process::ExitCode {
    fake_cli::azd_main::main()
}
