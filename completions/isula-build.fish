# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_isula_build_global_optspecs
    string join \n dataroot= runroot= config= storage-driver= storage-opt= log-level= D/debug experimental h/help
end

function __fish_isula_build_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_isula_build_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_isula_build_using_subcommand
    set -l cmd (__fish_isula_build_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c isula-build -n "__fish_isula_build_needs_command" -l dataroot -d 'Persistent data root [default: /var/lib/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_needs_command" -l runroot -d 'Run root for per-boot state [default: /var/run/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_needs_command" -l config -d 'Directory of configuration.toml, storage.toml, registries.toml, policy.json' -r -F
complete -c isula-build -n "__fish_isula_build_needs_command" -l storage-driver -d 'Storage driver (only "overlay")' -r
complete -c isula-build -n "__fish_isula_build_needs_command" -l storage-opt -d 'Storage driver option (repeatable)' -r
complete -c isula-build -n "__fish_isula_build_needs_command" -l log-level -d 'Log level: debug, info, warn or error [default: error]' -r
complete -c isula-build -n "__fish_isula_build_needs_command" -s D -l debug -d 'Debug mode (log level debug)'
complete -c isula-build -n "__fish_isula_build_needs_command" -l experimental -d 'Enable experimental features (also ISULABUILD_CLI_EXPERIMENTAL=enabled)'
complete -c isula-build -n "__fish_isula_build_needs_command" -s h -l help -d 'Print help'
complete -c isula-build -n "__fish_isula_build_needs_command" -f -a "ctr-img" -d 'Container image operations'
complete -c isula-build -n "__fish_isula_build_needs_command" -f -a "info" -d 'Show isula-build system information'
complete -c isula-build -n "__fish_isula_build_needs_command" -f -a "version" -d 'Show the isula-build version information'
complete -c isula-build -n "__fish_isula_build_needs_command" -f -a "login" -d 'Login to an image registry'
complete -c isula-build -n "__fish_isula_build_needs_command" -f -a "logout" -d 'Logout from an image registry'
complete -c isula-build -n "__fish_isula_build_needs_command" -f -a "manifest" -d 'Manipulate manifest lists (experimental)'
complete -c isula-build -n "__fish_isula_build_needs_command" -f -a "completion" -d 'Generate a shell completion script (bash, zsh, fish, ...)'
complete -c isula-build -n "__fish_isula_build_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and not __fish_seen_subcommand_from build images import load rm save tag pull push help" -l dataroot -d 'Persistent data root [default: /var/lib/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and not __fish_seen_subcommand_from build images import load rm save tag pull push help" -l runroot -d 'Run root for per-boot state [default: /var/run/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and not __fish_seen_subcommand_from build images import load rm save tag pull push help" -l config -d 'Directory of configuration.toml, storage.toml, registries.toml, policy.json' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and not __fish_seen_subcommand_from build images import load rm save tag pull push help" -l storage-driver -d 'Storage driver (only "overlay")' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and not __fish_seen_subcommand_from build images import load rm save tag pull push help" -l storage-opt -d 'Storage driver option (repeatable)' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and not __fish_seen_subcommand_from build images import load rm save tag pull push help" -l log-level -d 'Log level: debug, info, warn or error [default: error]' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and not __fish_seen_subcommand_from build images import load rm save tag pull push help" -s D -l debug -d 'Debug mode (log level debug)'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and not __fish_seen_subcommand_from build images import load rm save tag pull push help" -l experimental -d 'Enable experimental features (also ISULABUILD_CLI_EXPERIMENTAL=enabled)'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and not __fish_seen_subcommand_from build images import load rm save tag pull push help" -s h -l help -d 'Print help'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and not __fish_seen_subcommand_from build images import load rm save tag pull push help" -f -a "build" -d 'Build container images'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and not __fish_seen_subcommand_from build images import load rm save tag pull push help" -f -a "images" -d 'List locally stored images'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and not __fish_seen_subcommand_from build images import load rm save tag pull push help" -f -a "import" -d 'Import the base image from a tarball to the image store'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and not __fish_seen_subcommand_from build images import load rm save tag pull push help" -f -a "load" -d 'Load images from a docker-archive or OCI archive, or separated images'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and not __fish_seen_subcommand_from build images import load rm save tag pull push help" -f -a "rm" -d 'Remove one or more locally stored images'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and not __fish_seen_subcommand_from build images import load rm save tag pull push help" -f -a "save" -d 'Save image to tarball'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and not __fish_seen_subcommand_from build images import load rm save tag pull push help" -f -a "tag" -d 'Create a tag for source image'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and not __fish_seen_subcommand_from build images import load rm save tag pull push help" -f -a "pull" -d 'Pull image from remote repository'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and not __fish_seen_subcommand_from build images import load rm save tag pull push help" -f -a "push" -d 'Push image to remote repository'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and not __fish_seen_subcommand_from build images import load rm save tag pull push help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from build" -s f -l filename -d 'Path of the Dockerfile, or - to read it from stdin [default: CONTEXT_DIR/Dockerfile]' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from build" -l build-arg -d 'Build-time variable KEY=VALUE (KEY alone takes the value from the environment)' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from build" -s t -l tag -d 'Name for the built image; NAME means NAME:latest' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from build" -l iidfile -d 'Write the image ID to this file' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from build" -s o -l output -d 'Also export the image: docker-archive:PATH[:NAME:TAG], oci-archive:PATH[:NAME:TAG], docker://REGISTRY/REPO:TAG (push), docker-daemon:NAME:TAG (load into the local Docker engine; DOCKER_HOST=unix://SOCKET picks its socket), isulad:NAME:TAG (`isula load`)' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from build" -l build-static -d 'Static build: build-time="YYYY-MM-DD HH:MM:SS" fixes every timestamp' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from build" -l proxy -d 'Give RUN the proxy variables of this environment' -r -f -a "true\t''
false\t''"
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from build" -l cap-add -d 'Add a Linux capability for RUN' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from build" -l format -d 'Image format: docker or oci (experimental)' -r -f -a "docker\t''
oci\t''"
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from build" -l target -d 'Build up to this stage' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from build" -l dataroot -d 'Persistent data root [default: /var/lib/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from build" -l runroot -d 'Run root for per-boot state [default: /var/run/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from build" -l config -d 'Directory of configuration.toml, storage.toml, registries.toml, policy.json' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from build" -l storage-driver -d 'Storage driver (only "overlay")' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from build" -l storage-opt -d 'Storage driver option (repeatable)' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from build" -l log-level -d 'Log level: debug, info, warn or error [default: error]' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from build" -s D -l debug -d 'Debug mode (log level debug)'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from build" -l experimental -d 'Enable experimental features (also ISULABUILD_CLI_EXPERIMENTAL=enabled)'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from build" -s h -l help -d 'Print help'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from images" -l format -d 'Output format: table (default) or json' -r -f -a "table\t''
json\t''"
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from images" -l dataroot -d 'Persistent data root [default: /var/lib/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from images" -l runroot -d 'Run root for per-boot state [default: /var/run/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from images" -l config -d 'Directory of configuration.toml, storage.toml, registries.toml, policy.json' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from images" -l storage-driver -d 'Storage driver (only "overlay")' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from images" -l storage-opt -d 'Storage driver option (repeatable)' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from images" -l log-level -d 'Log level: debug, info, warn or error [default: error]' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from images" -s q -l quiet -d 'Only print image IDs'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from images" -s D -l debug -d 'Debug mode (log level debug)'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from images" -l experimental -d 'Enable experimental features (also ISULABUILD_CLI_EXPERIMENTAL=enabled)'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from images" -s h -l help -d 'Print help'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from import" -l dataroot -d 'Persistent data root [default: /var/lib/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from import" -l runroot -d 'Run root for per-boot state [default: /var/run/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from import" -l config -d 'Directory of configuration.toml, storage.toml, registries.toml, policy.json' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from import" -l storage-driver -d 'Storage driver (only "overlay")' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from import" -l storage-opt -d 'Storage driver option (repeatable)' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from import" -l log-level -d 'Log level: debug, info, warn or error [default: error]' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from import" -s D -l debug -d 'Debug mode (log level debug)'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from import" -l experimental -d 'Enable experimental features (also ISULABUILD_CLI_EXPERIMENTAL=enabled)'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from import" -s h -l help -d 'Print help'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from load" -s i -l input -d 'Path to local tarball (or app image name when loading separated images)' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from load" -s d -l dir -d 'Path to separated image tarballs directory' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from load" -s b -l base -d 'Base image tarball path of separated images' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from load" -s l -l lib -d 'Library image tarball path of separated images' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from load" -l dataroot -d 'Persistent data root [default: /var/lib/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from load" -l runroot -d 'Run root for per-boot state [default: /var/run/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from load" -l config -d 'Directory of configuration.toml, storage.toml, registries.toml, policy.json' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from load" -l storage-driver -d 'Storage driver (only "overlay")' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from load" -l storage-opt -d 'Storage driver option (repeatable)' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from load" -l log-level -d 'Log level: debug, info, warn or error [default: error]' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from load" -l no-check -d 'Skip sha256 check sum for legacy separated images loading'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from load" -s D -l debug -d 'Debug mode (log level debug)'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from load" -l experimental -d 'Enable experimental features (also ISULABUILD_CLI_EXPERIMENTAL=enabled)'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from load" -s h -l help -d 'Print help'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from rm" -l dataroot -d 'Persistent data root [default: /var/lib/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from rm" -l runroot -d 'Run root for per-boot state [default: /var/run/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from rm" -l config -d 'Directory of configuration.toml, storage.toml, registries.toml, policy.json' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from rm" -l storage-driver -d 'Storage driver (only "overlay")' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from rm" -l storage-opt -d 'Storage driver option (repeatable)' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from rm" -l log-level -d 'Log level: debug, info, warn or error [default: error]' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from rm" -s a -l all -d 'Remove all images'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from rm" -s p -l prune -d 'Remove all untagged images'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from rm" -s D -l debug -d 'Debug mode (log level debug)'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from rm" -l experimental -d 'Enable experimental features (also ISULABUILD_CLI_EXPERIMENTAL=enabled)'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from save" -s o -l output -d 'Path to save the tarball' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from save" -s f -l format -d 'Format of image saving to local tarball: docker or oci (experimental; default oci when experimental features are on, as upstream)' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from save" -s d -l dest -d 'Destination file directory to store separated images [default: Images]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from save" -s b -l base -d 'Base image name of separated images' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from save" -s l -l lib -d 'Lib image name of separated images' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from save" -s r -l rename -d 'Rename json file path of separated images' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from save" -l dataroot -d 'Persistent data root [default: /var/lib/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from save" -l runroot -d 'Run root for per-boot state [default: /var/run/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from save" -l config -d 'Directory of configuration.toml, storage.toml, registries.toml, policy.json' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from save" -l storage-driver -d 'Storage driver (only "overlay")' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from save" -l storage-opt -d 'Storage driver option (repeatable)' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from save" -l log-level -d 'Log level: debug, info, warn or error [default: error]' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from save" -s D -l debug -d 'Debug mode (log level debug)'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from save" -l experimental -d 'Enable experimental features (also ISULABUILD_CLI_EXPERIMENTAL=enabled)'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from save" -s h -l help -d 'Print help'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from tag" -l dataroot -d 'Persistent data root [default: /var/lib/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from tag" -l runroot -d 'Run root for per-boot state [default: /var/run/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from tag" -l config -d 'Directory of configuration.toml, storage.toml, registries.toml, policy.json' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from tag" -l storage-driver -d 'Storage driver (only "overlay")' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from tag" -l storage-opt -d 'Storage driver option (repeatable)' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from tag" -l log-level -d 'Log level: debug, info, warn or error [default: error]' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from tag" -s D -l debug -d 'Debug mode (log level debug)'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from tag" -l experimental -d 'Enable experimental features (also ISULABUILD_CLI_EXPERIMENTAL=enabled)'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from tag" -s h -l help -d 'Print help'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from pull" -l dataroot -d 'Persistent data root [default: /var/lib/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from pull" -l runroot -d 'Run root for per-boot state [default: /var/run/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from pull" -l config -d 'Directory of configuration.toml, storage.toml, registries.toml, policy.json' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from pull" -l storage-driver -d 'Storage driver (only "overlay")' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from pull" -l storage-opt -d 'Storage driver option (repeatable)' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from pull" -l log-level -d 'Log level: debug, info, warn or error [default: error]' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from pull" -s D -l debug -d 'Debug mode (log level debug)'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from pull" -l experimental -d 'Enable experimental features (also ISULABUILD_CLI_EXPERIMENTAL=enabled)'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from pull" -s h -l help -d 'Print help'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from push" -s f -l format -d 'Format for image pushing to a registry: docker or oci' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from push" -l chunk-size -d 'Upload blobs in chunks of this many bytes instead of one request each' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from push" -l dataroot -d 'Persistent data root [default: /var/lib/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from push" -l runroot -d 'Run root for per-boot state [default: /var/run/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from push" -l config -d 'Directory of configuration.toml, storage.toml, registries.toml, policy.json' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from push" -l storage-driver -d 'Storage driver (only "overlay")' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from push" -l storage-opt -d 'Storage driver option (repeatable)' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from push" -l log-level -d 'Log level: debug, info, warn or error [default: error]' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from push" -s D -l debug -d 'Debug mode (log level debug)'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from push" -l experimental -d 'Enable experimental features (also ISULABUILD_CLI_EXPERIMENTAL=enabled)'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from push" -s h -l help -d 'Print help'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from help" -f -a "build" -d 'Build container images'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from help" -f -a "images" -d 'List locally stored images'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from help" -f -a "import" -d 'Import the base image from a tarball to the image store'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from help" -f -a "load" -d 'Load images from a docker-archive or OCI archive, or separated images'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from help" -f -a "rm" -d 'Remove one or more locally stored images'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from help" -f -a "save" -d 'Save image to tarball'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from help" -f -a "tag" -d 'Create a tag for source image'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from help" -f -a "pull" -d 'Pull image from remote repository'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from help" -f -a "push" -d 'Push image to remote repository'
complete -c isula-build -n "__fish_isula_build_using_subcommand ctr-img; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c isula-build -n "__fish_isula_build_using_subcommand info" -l dataroot -d 'Persistent data root [default: /var/lib/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand info" -l runroot -d 'Run root for per-boot state [default: /var/run/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand info" -l config -d 'Directory of configuration.toml, storage.toml, registries.toml, policy.json' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand info" -l storage-driver -d 'Storage driver (only "overlay")' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand info" -l storage-opt -d 'Storage driver option (repeatable)' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand info" -l log-level -d 'Log level: debug, info, warn or error [default: error]' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand info" -s H -l human-readable -d 'Print memory info in human readable format, use powers of 1024'
complete -c isula-build -n "__fish_isula_build_using_subcommand info" -s V -l verbose -d 'Print this process\'s memory info'
complete -c isula-build -n "__fish_isula_build_using_subcommand info" -s D -l debug -d 'Debug mode (log level debug)'
complete -c isula-build -n "__fish_isula_build_using_subcommand info" -l experimental -d 'Enable experimental features (also ISULABUILD_CLI_EXPERIMENTAL=enabled)'
complete -c isula-build -n "__fish_isula_build_using_subcommand info" -s h -l help -d 'Print help'
complete -c isula-build -n "__fish_isula_build_using_subcommand version" -l dataroot -d 'Persistent data root [default: /var/lib/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand version" -l runroot -d 'Run root for per-boot state [default: /var/run/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand version" -l config -d 'Directory of configuration.toml, storage.toml, registries.toml, policy.json' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand version" -l storage-driver -d 'Storage driver (only "overlay")' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand version" -l storage-opt -d 'Storage driver option (repeatable)' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand version" -l log-level -d 'Log level: debug, info, warn or error [default: error]' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand version" -s D -l debug -d 'Debug mode (log level debug)'
complete -c isula-build -n "__fish_isula_build_using_subcommand version" -l experimental -d 'Enable experimental features (also ISULABUILD_CLI_EXPERIMENTAL=enabled)'
complete -c isula-build -n "__fish_isula_build_using_subcommand version" -s h -l help -d 'Print help'
complete -c isula-build -n "__fish_isula_build_using_subcommand login" -s u -l username -d 'Username to access registry' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand login" -l dataroot -d 'Persistent data root [default: /var/lib/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand login" -l runroot -d 'Run root for per-boot state [default: /var/run/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand login" -l config -d 'Directory of configuration.toml, storage.toml, registries.toml, policy.json' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand login" -l storage-driver -d 'Storage driver (only "overlay")' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand login" -l storage-opt -d 'Storage driver option (repeatable)' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand login" -l log-level -d 'Log level: debug, info, warn or error [default: error]' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand login" -s p -l password-stdin -d 'Read password from stdin'
complete -c isula-build -n "__fish_isula_build_using_subcommand login" -s D -l debug -d 'Debug mode (log level debug)'
complete -c isula-build -n "__fish_isula_build_using_subcommand login" -l experimental -d 'Enable experimental features (also ISULABUILD_CLI_EXPERIMENTAL=enabled)'
complete -c isula-build -n "__fish_isula_build_using_subcommand login" -s h -l help -d 'Print help'
complete -c isula-build -n "__fish_isula_build_using_subcommand logout" -l dataroot -d 'Persistent data root [default: /var/lib/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand logout" -l runroot -d 'Run root for per-boot state [default: /var/run/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand logout" -l config -d 'Directory of configuration.toml, storage.toml, registries.toml, policy.json' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand logout" -l storage-driver -d 'Storage driver (only "overlay")' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand logout" -l storage-opt -d 'Storage driver option (repeatable)' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand logout" -l log-level -d 'Log level: debug, info, warn or error [default: error]' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand logout" -s a -l all -d 'Logout all registries'
complete -c isula-build -n "__fish_isula_build_using_subcommand logout" -s D -l debug -d 'Debug mode (log level debug)'
complete -c isula-build -n "__fish_isula_build_using_subcommand logout" -l experimental -d 'Enable experimental features (also ISULABUILD_CLI_EXPERIMENTAL=enabled)'
complete -c isula-build -n "__fish_isula_build_using_subcommand logout" -s h -l help -d 'Print help'
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and not __fish_seen_subcommand_from create annotate inspect push help" -l dataroot -d 'Persistent data root [default: /var/lib/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and not __fish_seen_subcommand_from create annotate inspect push help" -l runroot -d 'Run root for per-boot state [default: /var/run/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and not __fish_seen_subcommand_from create annotate inspect push help" -l config -d 'Directory of configuration.toml, storage.toml, registries.toml, policy.json' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and not __fish_seen_subcommand_from create annotate inspect push help" -l storage-driver -d 'Storage driver (only "overlay")' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and not __fish_seen_subcommand_from create annotate inspect push help" -l storage-opt -d 'Storage driver option (repeatable)' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and not __fish_seen_subcommand_from create annotate inspect push help" -l log-level -d 'Log level: debug, info, warn or error [default: error]' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and not __fish_seen_subcommand_from create annotate inspect push help" -s D -l debug -d 'Debug mode (log level debug)'
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and not __fish_seen_subcommand_from create annotate inspect push help" -l experimental -d 'Enable experimental features (also ISULABUILD_CLI_EXPERIMENTAL=enabled)'
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and not __fish_seen_subcommand_from create annotate inspect push help" -s h -l help -d 'Print help'
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and not __fish_seen_subcommand_from create annotate inspect push help" -f -a "create" -d 'Create a local manifest list'
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and not __fish_seen_subcommand_from create annotate inspect push help" -f -a "annotate" -d 'Annotate a local manifest list'
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and not __fish_seen_subcommand_from create annotate inspect push help" -f -a "inspect" -d 'Inspect a local manifest list'
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and not __fish_seen_subcommand_from create annotate inspect push help" -f -a "push" -d 'Push a local manifest list to a repository'
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and not __fish_seen_subcommand_from create annotate inspect push help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from create" -l dataroot -d 'Persistent data root [default: /var/lib/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from create" -l runroot -d 'Run root for per-boot state [default: /var/run/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from create" -l config -d 'Directory of configuration.toml, storage.toml, registries.toml, policy.json' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from create" -l storage-driver -d 'Storage driver (only "overlay")' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from create" -l storage-opt -d 'Storage driver option (repeatable)' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from create" -l log-level -d 'Log level: debug, info, warn or error [default: error]' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from create" -s D -l debug -d 'Debug mode (log level debug)'
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from create" -l experimental -d 'Enable experimental features (also ISULABUILD_CLI_EXPERIMENTAL=enabled)'
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from annotate" -l arch -d 'Set architecture' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from annotate" -l os -d 'Set operating system' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from annotate" -l os-features -d 'Set operating system feature' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from annotate" -l variant -d 'Set architecture variant' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from annotate" -l dataroot -d 'Persistent data root [default: /var/lib/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from annotate" -l runroot -d 'Run root for per-boot state [default: /var/run/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from annotate" -l config -d 'Directory of configuration.toml, storage.toml, registries.toml, policy.json' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from annotate" -l storage-driver -d 'Storage driver (only "overlay")' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from annotate" -l storage-opt -d 'Storage driver option (repeatable)' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from annotate" -l log-level -d 'Log level: debug, info, warn or error [default: error]' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from annotate" -s D -l debug -d 'Debug mode (log level debug)'
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from annotate" -l experimental -d 'Enable experimental features (also ISULABUILD_CLI_EXPERIMENTAL=enabled)'
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from annotate" -s h -l help -d 'Print help'
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from inspect" -l dataroot -d 'Persistent data root [default: /var/lib/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from inspect" -l runroot -d 'Run root for per-boot state [default: /var/run/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from inspect" -l config -d 'Directory of configuration.toml, storage.toml, registries.toml, policy.json' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from inspect" -l storage-driver -d 'Storage driver (only "overlay")' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from inspect" -l storage-opt -d 'Storage driver option (repeatable)' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from inspect" -l log-level -d 'Log level: debug, info, warn or error [default: error]' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from inspect" -s D -l debug -d 'Debug mode (log level debug)'
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from inspect" -l experimental -d 'Enable experimental features (also ISULABUILD_CLI_EXPERIMENTAL=enabled)'
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from inspect" -s h -l help -d 'Print help'
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from push" -l dataroot -d 'Persistent data root [default: /var/lib/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from push" -l runroot -d 'Run root for per-boot state [default: /var/run/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from push" -l config -d 'Directory of configuration.toml, storage.toml, registries.toml, policy.json' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from push" -l storage-driver -d 'Storage driver (only "overlay")' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from push" -l storage-opt -d 'Storage driver option (repeatable)' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from push" -l log-level -d 'Log level: debug, info, warn or error [default: error]' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from push" -s D -l debug -d 'Debug mode (log level debug)'
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from push" -l experimental -d 'Enable experimental features (also ISULABUILD_CLI_EXPERIMENTAL=enabled)'
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from push" -s h -l help -d 'Print help'
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from help" -f -a "create" -d 'Create a local manifest list'
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from help" -f -a "annotate" -d 'Annotate a local manifest list'
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from help" -f -a "inspect" -d 'Inspect a local manifest list'
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from help" -f -a "push" -d 'Push a local manifest list to a repository'
complete -c isula-build -n "__fish_isula_build_using_subcommand manifest; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c isula-build -n "__fish_isula_build_using_subcommand completion" -l dataroot -d 'Persistent data root [default: /var/lib/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand completion" -l runroot -d 'Run root for per-boot state [default: /var/run/isula-build]' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand completion" -l config -d 'Directory of configuration.toml, storage.toml, registries.toml, policy.json' -r -F
complete -c isula-build -n "__fish_isula_build_using_subcommand completion" -l storage-driver -d 'Storage driver (only "overlay")' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand completion" -l storage-opt -d 'Storage driver option (repeatable)' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand completion" -l log-level -d 'Log level: debug, info, warn or error [default: error]' -r
complete -c isula-build -n "__fish_isula_build_using_subcommand completion" -s D -l debug -d 'Debug mode (log level debug)'
complete -c isula-build -n "__fish_isula_build_using_subcommand completion" -l experimental -d 'Enable experimental features (also ISULABUILD_CLI_EXPERIMENTAL=enabled)'
complete -c isula-build -n "__fish_isula_build_using_subcommand completion" -s h -l help -d 'Print help'
complete -c isula-build -n "__fish_isula_build_using_subcommand help; and not __fish_seen_subcommand_from ctr-img info version login logout manifest completion help" -f -a "ctr-img" -d 'Container image operations'
complete -c isula-build -n "__fish_isula_build_using_subcommand help; and not __fish_seen_subcommand_from ctr-img info version login logout manifest completion help" -f -a "info" -d 'Show isula-build system information'
complete -c isula-build -n "__fish_isula_build_using_subcommand help; and not __fish_seen_subcommand_from ctr-img info version login logout manifest completion help" -f -a "version" -d 'Show the isula-build version information'
complete -c isula-build -n "__fish_isula_build_using_subcommand help; and not __fish_seen_subcommand_from ctr-img info version login logout manifest completion help" -f -a "login" -d 'Login to an image registry'
complete -c isula-build -n "__fish_isula_build_using_subcommand help; and not __fish_seen_subcommand_from ctr-img info version login logout manifest completion help" -f -a "logout" -d 'Logout from an image registry'
complete -c isula-build -n "__fish_isula_build_using_subcommand help; and not __fish_seen_subcommand_from ctr-img info version login logout manifest completion help" -f -a "manifest" -d 'Manipulate manifest lists (experimental)'
complete -c isula-build -n "__fish_isula_build_using_subcommand help; and not __fish_seen_subcommand_from ctr-img info version login logout manifest completion help" -f -a "completion" -d 'Generate a shell completion script (bash, zsh, fish, ...)'
complete -c isula-build -n "__fish_isula_build_using_subcommand help; and not __fish_seen_subcommand_from ctr-img info version login logout manifest completion help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c isula-build -n "__fish_isula_build_using_subcommand help; and __fish_seen_subcommand_from ctr-img" -f -a "build" -d 'Build container images'
complete -c isula-build -n "__fish_isula_build_using_subcommand help; and __fish_seen_subcommand_from ctr-img" -f -a "images" -d 'List locally stored images'
complete -c isula-build -n "__fish_isula_build_using_subcommand help; and __fish_seen_subcommand_from ctr-img" -f -a "import" -d 'Import the base image from a tarball to the image store'
complete -c isula-build -n "__fish_isula_build_using_subcommand help; and __fish_seen_subcommand_from ctr-img" -f -a "load" -d 'Load images from a docker-archive or OCI archive, or separated images'
complete -c isula-build -n "__fish_isula_build_using_subcommand help; and __fish_seen_subcommand_from ctr-img" -f -a "rm" -d 'Remove one or more locally stored images'
complete -c isula-build -n "__fish_isula_build_using_subcommand help; and __fish_seen_subcommand_from ctr-img" -f -a "save" -d 'Save image to tarball'
complete -c isula-build -n "__fish_isula_build_using_subcommand help; and __fish_seen_subcommand_from ctr-img" -f -a "tag" -d 'Create a tag for source image'
complete -c isula-build -n "__fish_isula_build_using_subcommand help; and __fish_seen_subcommand_from ctr-img" -f -a "pull" -d 'Pull image from remote repository'
complete -c isula-build -n "__fish_isula_build_using_subcommand help; and __fish_seen_subcommand_from ctr-img" -f -a "push" -d 'Push image to remote repository'
complete -c isula-build -n "__fish_isula_build_using_subcommand help; and __fish_seen_subcommand_from manifest" -f -a "create" -d 'Create a local manifest list'
complete -c isula-build -n "__fish_isula_build_using_subcommand help; and __fish_seen_subcommand_from manifest" -f -a "annotate" -d 'Annotate a local manifest list'
complete -c isula-build -n "__fish_isula_build_using_subcommand help; and __fish_seen_subcommand_from manifest" -f -a "inspect" -d 'Inspect a local manifest list'
complete -c isula-build -n "__fish_isula_build_using_subcommand help; and __fish_seen_subcommand_from manifest" -f -a "push" -d 'Push a local manifest list to a repository'
