//! The `sessionguard` binary: parse the command line, run it, map its result to an exit status
//! (`sessionguard::cli::exit`: one table for every command).

#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    // clap ends bad arguments itself: a message naming the argument, then status 2.
    let cli = sessionguard::cli::Cli::parse();
    let (code, message) = sessionguard::cli::exit_code(sessionguard::cli::run(cli));
    if let Some(message) = message {
        eprintln!("{message}");
    }
    std::process::exit(code);
}
