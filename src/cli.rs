//! The command line (clap, derive): the fixed CLI contract of ARCHITECTURE.md. `main.rs`
//! parses [`Cli`] and hands it to [`run`]; each command lives in the module that owns it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::observe::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "voicenav",
    version,
    about = "Voice-navigation bot for a bank-and-insurance hotline"
)]
pub struct Cli {
    /// Log format on stderr (RUST_LOG sets the filter).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: SIP/RTP, recognition, dialog flows, observability endpoint.
    Serve {
        #[arg(long, default_value = crate::config::DEFAULT_CONFIG)]
        config: PathBuf,
        /// Flows folder (overrides paths.flows of the config).
        #[arg(long)]
        flows: Option<PathBuf>,
    },
    /// Dialog flows: validate, draw.
    Flows {
        #[command(subcommand)]
        command: FlowsCommand,
    },
    /// Classify utterances read one per line on stdin; JSON lines on stdout.
    Classify {
        #[arg(long, default_value = "flows")]
        flows: PathBuf,
    },
    /// The scenario catalogue.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Run scripted calls (--script) or a recorded call (WAV/pcap) through the call pipeline.
    Replay(ReplayArgs),
    /// Caller simulator: place scripted calls over real SIP/RTP.
    Call(CallArgs),
    /// Print the recognised text of a WAV file.
    Transcribe(TranscribeArgs),
    /// Check every real piece the server and tests need, and say how to fix what is missing.
    Doctor {
        #[arg(long, default_value = crate::config::DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Call records: QA reports.
    Records {
        #[command(subcommand)]
        command: RecordsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum FlowsCommand {
    /// Validate every flow in DIR; errors as file:line:col: message; exit 1 on any.
    Validate {
        #[arg(default_value = "flows")]
        dir: PathBuf,
    },
    /// Draw a flow's dialog graph.
    Graph {
        /// Flow file (or flow name inside --flows).
        flow: PathBuf,
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    Dot,
    Svg,
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Scenario count per queue.
    Stats {
        #[arg(long, default_value = "flows")]
        flows: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RecordsCommand {
    /// Counts a QA team wants, from the JSONL call records.
    Summary {
        /// Records folder (default: paths.records of the config).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Only records on or after this date (YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value = crate::config::DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// A recorded call (WAV or pcap) to run through the pipeline.
    pub input: Option<PathBuf>,
    /// Scripted calls (tests/calls/*.yaml format).
    #[arg(long, conflicts_with = "input")]
    pub script: Option<PathBuf>,
    /// Synthesise `say` turns and send them through the real media + ASR path.
    #[arg(long)]
    pub audio: bool,
    /// Keys pressed during a recorded call: `SECONDS:DIGIT,...` (e.g. 3.2:1,7.5:#).
    #[arg(long)]
    pub dtmf: Option<String>,
    #[arg(long, default_value = "flows")]
    pub flows: PathBuf,
    #[arg(long, default_value = crate::config::DEFAULT_CONFIG)]
    pub config: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// The IVR to call, e.g. sip:127.0.0.1:5060.
    pub target: String,
    #[arg(long)]
    pub script: PathBuf,
    /// New calls per second.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Repeat the script this many times (bounded load).
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Give up on a call after this many seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Allow a target that is not a loopback address (only an IVR you own).
    #[arg(long)]
    pub allow_remote: bool,
}

#[derive(Debug, clap::Args)]
pub struct TranscribeArgs {
    pub file: PathBuf,
    /// Grammar/phrase list (one phrase per line) to bias recognition.
    #[arg(long)]
    pub grammar: Option<PathBuf>,
    /// Print n-best and timings as JSON.
    #[arg(long)]
    pub json: bool,
    #[arg(long, default_value = crate::config::DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Recogniser backend (default: the config's).
    #[arg(long)]
    pub backend: Option<String>,
}

/// Runs a parsed command line; the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    crate::observe::init_tracing(cli.log_format);
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("voicenav: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve { config, flows } => crate::server::run(&config, flows.as_deref()),
        Command::Doctor { config } => Ok(crate::doctor::run(&config)),
        Command::Records {
            command:
                RecordsCommand::Summary {
                    dir,
                    since,
                    config,
                    json,
                },
        } => crate::observe::summary::run(dir.as_deref(), since.as_deref(), &config, json),
        Command::Transcribe(args) => crate::asr::transcribe::run(&args),
        Command::Classify { flows } => crate::nlu::cli::classify_command(&flows),
        Command::Catalog {
            command: CatalogCommand::Stats { flows, json },
        } => crate::nlu::cli::stats_command(&flows, json),
        Command::Call(args) => Ok(crate::simulator::run_cli(&args)?),
        Command::Flows {
            command: FlowsCommand::Validate { dir },
        } => crate::dialog::cli::validate_command(&dir),
        Command::Flows {
            command: FlowsCommand::Graph { flow, format },
        } => crate::dialog::cli::graph_command(&flow, format),
        Command::Replay(ReplayArgs {
            script: Some(script),
            audio: false,
            flows,
            config,
            ..
        }) => crate::replay::run_script(&script, &flows, &config),
        other => anyhow::bail!(
            "`{}` is not available in this build yet",
            command_name(&other)
        ),
    }
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Serve { .. } => "serve",
        Command::Flows { .. } => "flows",
        Command::Classify { .. } => "classify",
        Command::Catalog { .. } => "catalog",
        Command::Replay(_) => "replay",
        Command::Call(_) => "call",
        Command::Transcribe(_) => "transcribe",
        Command::Doctor { .. } => "doctor",
        Command::Records { .. } => "records",
    }
}
