//! An analysed clip's context (summaries, keyframes) read back from a report, for the prompt and
//! the ask flow of either wasm module.

use crate::prompt::{ClipContext, PromptMode};
use crate::timeline::VideoReport;
use crate::timeline::keyframes::jpeg_dimensions;

fn jpeg_from_data_url(url: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let encoded = url
        .strip_prefix("data:image/jpeg;base64,")
        .ok_or("a keyframe's jpeg is not a data:image/jpeg;base64 URL")?;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| format!("a keyframe's jpeg is not valid base64: {e}"))
}

/// The clip's context from a report; its keyframes' JPEGs are decoded only when a request will
/// carry pixels (an image mode, or stage 1), as natively.
pub(crate) fn clip_of(
    report: &VideoReport,
    mode: PromptMode,
    stage1: bool,
) -> Result<ClipContext, String> {
    if !(mode.sends_images() || stage1) {
        return Ok(ClipContext::from_report(report, None));
    }
    let jpegs = report
        .keyframes
        .iter()
        .map(|k| {
            let url = k.jpeg.as_deref().ok_or_else(|| {
                format!(
                    "the keyframe at {:.3} s (frame {}) has no JPEG, and mode '{}' sends images: analyse the video with this keyframeFps, or use mode 'summaries'",
                    k.keyframe.time,
                    k.keyframe.frame,
                    serde_json::to_value(mode)
                        .unwrap_or_default()
                        .as_str()
                        .unwrap_or("?")
                )
            })?;
            let jpeg = jpeg_from_data_url(url)?;
            let (w, h) = jpeg_dimensions(&jpeg)?;
            Ok((w, h, jpeg))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(ClipContext::from_report(report, Some(jpegs)))
}
