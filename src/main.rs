//! The `ec2d` binary: parse configuration, start logging, run the app until SIGINT or SIGTERM.

use std::process::ExitCode;

use ec2d::config::{Command, Config};
use ec2d::{shutdown, telemetry, App};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::from_env();
    telemetry::init(&config.log);
    let result = match config.command {
        None | Some(Command::Serve) => App::run(config, shutdown::os_signal()).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "ec2d failed");
            eprintln!("ec2d: {error}");
            ExitCode::FAILURE
        }
    }
}
