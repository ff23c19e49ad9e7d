//! The `kfp-operator` binary: a thin command line over the `kfp_operator` library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "kfp-operator",
    version,
    about = "Kubernetes operator for ML pipelines (Kubeflow Pipelines, Vertex AI)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions of all kinds as multi-document YAML, or write one file per kind.
    Crds {
        /// Write `<group>_<plural>.yaml` files into this folder instead of printing.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crds { out_dir: Some(dir) } => kfp_operator::crds::write_all(&dir),
        Command::Crds { out_dir: None } => kfp_operator::crds::render().map(|files| {
            for (_, yaml) in files {
                print!("{yaml}");
            }
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
