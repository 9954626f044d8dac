//! `pangea-executor` binary: parse arguments, start logging, run the subcommand.

mod cli;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_tracing();
    match args.run().await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            cli::EXIT_FAILURE.into()
        }
    }
}
