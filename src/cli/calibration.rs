//! `emolens eval-calibration FILE.csv [--json]`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::EXIT_BAD_INPUT;

#[derive(Args)]
pub struct EvalCalibrationArgs {
    /// CSV of ranked VLM predictions: name, gt, ranked labels.
    file: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: EvalCalibrationArgs) -> ExitCode {
    match emolens::calibration::eval_calibration_cli(&args.file, args.json) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("emolens: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}
