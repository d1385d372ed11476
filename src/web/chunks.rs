//! Dense analysis of decoded frames on several threads: the frames are cut into chunks at the
//! tracker's periodic detections (multiples of `redetectEvery`), each chunk is analysed by a
//! Web Worker with its own tracker ([`FaceTracker::starting_at`]), and the page builds the
//! report from the chunks in order. With tracking the result equals `analyzeFrames` on one
//! thread bit for bit (`tests/browser/bench.mjs` checks it; `tests/timeline.rs` natively). No shared memory,
//! so no cross-origin isolation is needed. `www/frames.js` runs it:
//!
//! ```js
//! const starts = frameChunks(frames.length, options);              // the page
//! const chunk = await analyzer.analyzeChunk(frames.slice(a, b), a, options); // a worker
//! const report = framesReport(frames, times, chunks, options, elapsedMs);    // the page
//! ```

use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::face::{FaceTracker, FrameFaces, TrackingStats};
use crate::web::Analyzer;
use crate::web::helpers::{check_frames, err, image_data_rgb, plain, plain_options};
use crate::web::video::{Collected, attach_jpegs, report_of};

/// What a worker sends back for one chunk.
#[derive(Serialize, Deserialize)]
struct Chunk {
    first_index: usize,
    faces: Vec<FrameFaces>,
    tracking: TrackingStats,
}

/// Where the chunks of `count` frames start: every `redetectEvery` frames, where the tracker
/// runs the detector anyway, so that a chunk needs nothing from the one before.
#[wasm_bindgen(js_name = frameChunks)]
pub fn frame_chunks(count: usize, options: JsValue) -> Result<Vec<u32>, JsValue> {
    let tracking = plain_options(&options)?.tracking();
    Ok((0..count)
        .step_by(tracking.redetect_every)
        .map(|start| start as u32)
        .collect())
}

#[wasm_bindgen]
impl Analyzer {
    /// Analyses the frames of one chunk (`ImageData`s in display order), the first being frame
    /// `firstIndex` of the clip (a start from `frameChunks`). Resolves to
    /// `{ first_index, faces, tracking }` for `framesReport`.
    #[wasm_bindgen(js_name = analyzeChunk)]
    pub async fn analyze_chunk(
        &self,
        frames: js_sys::Array,
        first_index: usize,
        options: JsValue,
    ) -> Result<JsValue, JsValue> {
        let tracking = plain_options(&options)?.tracking();
        if !first_index.is_multiple_of(tracking.redetect_every) {
            return Err(err(format!(
                "analyzeChunk: a chunk starts at a multiple of redetectEvery ({}), not at {first_index}",
                tracking.redetect_every
            )));
        }
        let images = (0..frames.length() as usize)
            .map(|i| image_data_rgb("analyzeChunk", &frames, i))
            .collect::<Result<Vec<_>, _>>()?;
        let mut tracker = FaceTracker::starting_at(tracking, first_index);
        let faces = self.analyze_batch(&images, &mut tracker).await?;
        plain(&Chunk {
            first_index,
            faces,
            tracking: tracker.stats(),
        })
    }
}

/// The report of `analyzeFrames` from the chunks the workers analysed (in any order; together
/// they must cover every frame once); `elapsedMs` is the time they took (for frames/s).
#[wasm_bindgen(js_name = framesReport)]
pub fn frames_report(
    frames: js_sys::Array,
    times: Vec<f64>,
    chunks: js_sys::Array,
    options: JsValue,
    elapsed_ms: f64,
) -> Result<JsValue, JsValue> {
    let settings = plain_options(&options)?;
    check_frames("framesReport", &frames, &times)?;
    let mut chunks = chunks
        .iter()
        .map(|c| serde_wasm_bindgen::from_value::<Chunk>(c).map_err(|e| err(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    chunks.sort_by_key(|c| c.first_index);
    let mut collected = Collected::new(times[0], &settings);
    let mut stats = TrackingStats::default();
    for chunk in chunks {
        if chunk.first_index != collected.frames.len() {
            return Err(err(format!(
                "framesReport: a chunk starts at frame {} where frame {} was expected",
                chunk.first_index,
                collected.frames.len()
            )));
        }
        for faces in chunk.faces {
            let i = collected.frames.len();
            let time = *times
                .get(i)
                .ok_or_else(|| err("framesReport: more results than frames"))?;
            collected.frames.push((i, time - times[0], faces));
        }
        stats = stats.merged(chunk.tracking);
    }
    if collected.frames.len() != times.len() {
        return Err(err(format!(
            "framesReport: the chunks cover {} of {} frames",
            collected.frames.len(),
            times.len()
        )));
    }
    let mut report = report_of(&collected, &settings, "frames".into(), elapsed_ms);
    report.tracking = Some(stats);
    attach_jpegs(
        &mut report,
        |i| image_data_rgb("framesReport", &frames, i),
        &settings,
    )?;
    plain(&report)
}
