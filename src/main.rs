//! The `isula-build` binary: argv[0] dispatch, nothing else.

fn main() -> std::process::ExitCode {
    // The RUN sandbox helper: dispatched before anything else (no thread may exist yet).
    if isula_build::sandbox::is_hidden_invocation() {
        isula_build::sandbox::helper_main()
    }
    // The isula-builder server and its build workers are root's: a setuid invocation by a
    // group member must not reach them (they take data roots, groups and jobs from argv/stdin).
    let argv0 = std::env::args_os().next().unwrap_or_default();
    if isula_build::privilege::is_setuid_invocation()
        && (isula_build::compat::is_worker_invocation()
            || isula_build::compat::is_server_name(&argv0))
    {
        eprintln!("permission denied: the isula-builder server is for root only");
        return std::process::ExitCode::from(1);
    }
    // A build worker of the isula-builder server (also before any thread exists).
    if isula_build::compat::is_worker_invocation() {
        return isula_build::compat::worker_main();
    }
    if isula_build::compat::is_server_name(&argv0) {
        return isula_build::compat::main_with_args(std::env::args_os());
    }
    isula_build::cli::main_with_args(std::env::args_os())
}
