//! The `sessionguard` binary: parse the command line, run it, map failures to exit codes.

#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    let cli = sessionguard::cli::Cli::parse();
    match sessionguard::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("sessionguard: error: {error:#}");
            std::process::exit(2);
        }
    }
}
