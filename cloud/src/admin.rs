//! The operator's commands, `lastseen-cloud add-user` and `lastseen-cloud
//! invite`: each opens the database of the configuration it is given (the
//! same file, `LASTSEEN_*` variables and flags as the service), does one
//! thing, and exits. They work whatever `registration` says, and while the
//! service runs.

use std::io::{BufRead, IsTerminal, Write};

use crate::StartupError;
use crate::auth::AuthError;
use crate::auth::registration::{self, RegistrationMode};
use crate::config::{Command, Config};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Input(String),
    #[error("cannot write the answer: {0}")]
    Output(std::io::Error),
}

/// Runs `command`. `input` is where `add-user` reads the password (its first
/// line), `output` where the result goes (for `invite`, the code alone on
/// its line, so a script can take it); notes go to standard error.
pub async fn run_command(
    config: &Config,
    command: &Command,
    input: &mut dyn BufRead,
    output: &mut dyn Write,
) -> Result<(), AdminError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartupError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    let store = crate::open_store(config).await?;
    match command {
        Command::AddUser { username } => {
            let password = read_password(input, username)?;
            let hasher = config.auth.hasher().map_err(StartupError::from)?;
            let id = registration::add_user(store.as_ref(), &hasher, username, &password).await?;
            writeln!(output, "added user {username} ({id})").map_err(AdminError::Output)?;
        }
        Command::Invite { expires_days } => {
            let days = expires_days.unwrap_or(config.auth.invite_ttl_days);
            let invite = registration::operator_invite(store.as_ref(), days).await?;
            writeln!(output, "{}", invite.code).map_err(AdminError::Output)?;
            eprintln!(
                "single-use invite code, valid until {}",
                invite.expires_at.to_rfc3339()
            );
            let mode = match config.auth.registration {
                RegistrationMode::Invite => None,
                RegistrationMode::Open => Some("open"),
                RegistrationMode::Closed => Some("closed"),
            };
            if let Some(mode) = mode {
                eprintln!(
                    "note: registration is `{mode}` here; the code admits someone only while it is `invite`"
                );
            }
        }
    }
    Ok(())
}

/// The first line of `input`, without its line ending. On a terminal the
/// prompt goes to standard error (the typed password is echoed: pipe it in
/// to keep it off the screen).
fn read_password(input: &mut dyn BufRead, username: &str) -> Result<String, AdminError> {
    if std::io::stdin().is_terminal() {
        eprint!("password for {username} (shown as typed): ");
    }
    let mut line = String::new();
    input
        .read_line(&mut line)
        .map_err(|e| AdminError::Input(format!("cannot read the password: {e}")))?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err(AdminError::Input(
            "no password on standard input: pipe it in, e.g. `printf '%s\\n' \"$PASSWORD\" | lastseen-cloud add-user --username NAME`".to_owned(),
        ));
    }
    Ok(password.to_owned())
}
