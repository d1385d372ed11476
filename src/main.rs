//! emolens command line: a thin dispatcher; each subcommand's logic lives in its module.

#[cfg(not(target_arch = "wasm32"))]
use std::path::PathBuf;

#[cfg(not(target_arch = "wasm32"))]
use clap::{Parser, Subcommand};

#[cfg(not(target_arch = "wasm32"))]
#[derive(Parser)]
#[command(name = "emolens", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[cfg(not(target_arch = "wasm32"))]
#[derive(Subcommand)]
enum Command {
    /// Check the VLM against transformers' reference outputs in DIR
    /// (config.json, model.safetensors, reference.safetensors, reference.json).
    VlmCheck { dir: PathBuf },
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    let code = match Cli::parse().command {
        Command::VlmCheck { dir } => emolens::vlm::check::vlm_check_command(&dir),
    };
    std::process::exit(code);
}

#[cfg(target_arch = "wasm32")]
fn main() {}
