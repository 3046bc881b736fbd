//! `login`: check credentials against a registry, then save them to `auth.json`.

use crate::cli::CliError;
use crate::config::Settings;
use crate::registry::credentials::{self, verify, Credentials};
use crate::registry::RegistryError;
use std::io::{BufRead, IsTerminal};

/// Longest user name or password accepted (upstream's limit).
const MAX_INPUT_LEN: usize = 128;

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// Registry (host[:port])
    #[arg(value_name = "SERVER")]
    pub server: Vec<String>,
    /// Username to access registry
    #[arg(short, long)]
    pub username: Option<String>,
    /// Read password from stdin
    #[arg(short = 'p', long = "password-stdin")]
    pub password_stdin: bool,
}

fn read_stdin_password() -> Result<String, CliError> {
    let mut pass = String::new();
    for line in std::io::stdin().lock().lines() {
        let line =
            line.map_err(|_| CliError::Other("could not read password from stdin".into()))?;
        pass.push_str(&line);
        if pass.len() > MAX_INPUT_LEN {
            return Err(CliError::Usage("length of input exceeded".into()));
        }
    }
    if pass.is_empty() {
        return Err(CliError::Usage("auth info can not be empty".into()));
    }
    Ok(pass)
}

fn prompt_username() -> Result<String, CliError> {
    eprint!("Username: ");
    let mut u = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut u)
        .map_err(|_| CliError::Other("could not read username from terminal".into()))?;
    let u = u.trim().to_string();
    if u.is_empty() {
        return Err(CliError::Usage("username can not be empty".into()));
    }
    if u.len() > MAX_INPUT_LEN {
        return Err(CliError::Usage("length of input exceeded".into()));
    }
    Ok(u)
}

fn prompt_password() -> Result<String, CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Other(
            "could not read password from terminal (use --password-stdin)".into(),
        ));
    }
    let p = rpassword::prompt_password("Password: ")
        .map_err(|_| CliError::Other("could not read password from terminal".into()))?;
    if p.len() > MAX_INPUT_LEN {
        return Err(CliError::Usage("length of input exceeded".into()));
    }
    if p.is_empty() {
        return Err(CliError::Usage("auth info can not be empty".into()));
    }
    Ok(p)
}

pub fn run(settings: &Settings, args: LoginArgs) -> Result<(), CliError> {
    let server = match args.server.as_slice() {
        [] => {
            return Err(CliError::Usage(
                "empty registry found, please input one registry".into(),
            ))
        }
        [s] => credentials::normalize_server(s)?,
        _ => {
            return Err(CliError::Usage(
                "too many arguments, login only accepts 1 argument".into(),
            ))
        }
    };
    if args.password_stdin && args.username.is_none() {
        return Err(CliError::Usage(
            "must provides --password-stdin with --username".into(),
        ));
    }
    let mut username = args.username.map(|u| u.trim().to_string());
    if username.is_none() {
        println!("try to login with existing credentials...\n");
        if let Some(c) = credentials::lookup(&settings.config_dir, &server)? {
            match verify(settings, &server, &c) {
                Ok(()) => {
                    println!("Login Succeed with AuthFile");
                    return Ok(());
                }
                Err(e @ (RegistryError::Unreachable { .. } | RegistryError::Tls { .. })) => {
                    println!("Login Failed");
                    return Err(e.into());
                }
                Err(_) => {}
            }
        }
        println!("Failed to authenticate existing credentials, please input auth info directly\n");
        username = Some(prompt_username()?);
    }
    let username = username.unwrap_or_default();
    if username.is_empty() {
        return Err(CliError::Usage("username can not be empty".into()));
    }
    if username.len() > MAX_INPUT_LEN {
        return Err(CliError::Usage("length of input exceeded".into()));
    }
    let password = if args.password_stdin {
        read_stdin_password()?
    } else {
        let p = prompt_password()?;
        println!();
        p
    };
    let creds = Credentials { username, password };
    match verify(settings, &server, &creds) {
        Ok(()) => {}
        Err(e @ RegistryError::Unauthorized { .. }) => {
            println!("Unauthorized login attempt");
            return Err(e.into());
        }
        Err(e) => {
            println!("Login Failed");
            return Err(e.into());
        }
    }
    if let Err(e) = credentials::store(&settings.config_dir, &server, &creds) {
        println!("Set Auth Failed");
        return Err(e.into());
    }
    println!("Login Succeeded");
    Ok(())
}
