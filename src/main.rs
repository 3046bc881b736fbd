//! The `isula-build` binary: argv[0] dispatch, nothing else.

fn main() -> std::process::ExitCode {
    // The RUN sandbox helper: dispatched before anything else (no thread may exist yet).
    if isula_build::sandbox::is_hidden_invocation() {
        isula_build::sandbox::helper_main()
    }
    isula_build::cli::main_with_args(std::env::args_os())
}
