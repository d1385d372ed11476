//! Command-line entry point: a thin dispatcher; each subcommand's logic lives in the library.

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use std::path::PathBuf;

    use clap::{Parser, Subcommand};

    #[derive(Parser)]
    #[command(name = "emolens", version, about = "Emotion understanding in video")]
    pub struct Cli {
        #[command(subcommand)]
        pub command: Command,
    }

    #[derive(Subcommand)]
    pub enum Command {
        /// Evaluate label-free calibrations of ranked VLM predictions (CSV: name,gt,ranked labels).
        EvalCalibration {
            file: PathBuf,
            /// Print the report as JSON.
            #[arg(long)]
            json: bool,
        },
    }

    pub fn main() {
        match Cli::parse().command {
            Command::EvalCalibration { file, json } => {
                match emolens::calibration::eval_calibration_cli(&file, json) {
                    Ok(report) => print!("{report}"),
                    Err(e) => {
                        eprintln!("error: {e}");
                        std::process::exit(2);
                    }
                }
            }
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    cli::main();
}

#[cfg(target_arch = "wasm32")]
fn main() {}
