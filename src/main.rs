//! The `ec2d` binary: parse configuration, start logging, run the app until SIGINT or SIGTERM.

use std::process::ExitCode;

use ec2d::config::{Command, Config};
use ec2d::{shutdown, telemetry, App};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::from_env();
    telemetry::init(&config.log, config.log_format);
    let result = match config.command.clone() {
        None | Some(Command::Serve) => App::run(config, shutdown::os_signal())
            .await
            .map_err(|e| e.to_string()),
        Some(Command::Healthcheck) => ec2d::cli::healthcheck(config.listen).await,
        Some(Command::Status { instance }) => {
            let base = format!("http://{}", config.listen);
            ec2d::cli::status(&base, instance.as_deref())
                .await
                .map(|table| print!("{table}"))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::debug!(%error, "ec2d failed");
            eprintln!("ec2d: {error}");
            ExitCode::FAILURE
        }
    }
}
