//! The `isula-build` binary: argv[0] dispatch, nothing else.

fn main() -> std::process::ExitCode {
    isula_build::cli::main_with_args(std::env::args_os())
}
