//! Writes every frame of a video as emolens decodes it natively (raw RGB, 8 bits per channel,
//! frame after frame) to stdout, and the frame size and count to stderr. The browser test uses
//! it to hold Chromium's pixels against ours.
//!
//!   cargo run --release --example decode_frames -- CLIP.mp4 > frames.rgb

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use emolens::video::VideoDecoder;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: decode_frames VIDEO > frames.rgb");
        return ExitCode::from(2);
    };
    let decoder = match VideoDecoder::open(&path, None) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("decode_frames: {e}");
            return ExitCode::from(2);
        }
    };
    let (width, height) = decoder.frame_size();
    let exact = decoder.info().browser_exact;
    let mut out = std::io::stdout().lock();
    let mut frames = 0;
    for frame in decoder {
        match frame {
            Ok(f) => {
                if out.write_all(&f.image.data).is_err() {
                    return ExitCode::from(1);
                }
                frames += 1;
            }
            Err(e) => {
                eprintln!("decode_frames: {e}");
                return ExitCode::from(2);
            }
        }
    }
    eprintln!("{width}x{height} {frames} frames browser_exact={exact}");
    ExitCode::SUCCESS
}
