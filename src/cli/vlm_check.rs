//! `emolens vlm-check DIR`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

#[derive(Args)]
pub struct VlmCheckArgs {
    /// Folder with config.json, model.safetensors, reference.safetensors and reference.json.
    dir: PathBuf,
}

pub fn run(args: VlmCheckArgs) -> ExitCode {
    ExitCode::from(emolens::vlm::check::vlm_check_command(&args.dir) as u8)
}
