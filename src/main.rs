//! The `voicenav` binary: parses the command line and hands it to the library.
use clap::Parser;

fn main() -> std::process::ExitCode {
    voicenav::cli::run(voicenav::cli::Cli::parse())
}
