//! Per-frame face analysis: detection, 68 landmarks and 7-class expression, on any burn device.
//!
//! The steps follow face-api.js' `detectAllFaces(...).withFaceLandmarks().withFaceExpressions()`
//! on tensor input, so results can be checked against it number for number: detect on the frame
//! padded to a square, crop each box (clipped, floored), landmarks on the crop, then expressions
//! on a crop around the landmarks. Every stage runs all faces (and frames) in one batch, and all
//! reads from the device are asynchronous, as WebGPU in a browser requires.

mod brows;
mod contours;
mod detector;
mod features;
mod layers;
mod tracker;

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::frames::{PixelRect, RgbImage, SquareCanvas, SquarePadding, canvas_input, square_input};
use crate::weights::{WeightError, WeightMap};
pub use brows::{PROFILE_LEN, PROFILE_STEP, brow_profiles};
pub use contours::{ContourContrast, contour_contrast};
use detector::{RelativeBox, TinyFaceDetector, decode_grid, non_max_suppression};
use features::FaceFeatureNet;
pub use tracker::{DetectReason, FaceTracker, TrackingOptions, TrackingStats, Verdict};

/// The face-api.js model files emolens reads, by manifest name.
pub const MODEL_NAMES: [&str; 3] = [
    "tiny_face_detector_model",
    "face_landmark_68_model",
    "face_expression_model",
];

/// Expression classes in the order the model outputs them.
pub const EXPRESSIONS: [&str; 7] = [
    "neutral",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgusted",
    "surprised",
];

/// What can go wrong while analysing faces.
#[derive(Debug, thiserror::Error)]
pub enum FaceError {
    #[error(transparent)]
    Weights(#[from] WeightError),
    #[error(transparent)]
    Frame(#[from] crate::frames::FrameError),
    #[error("detector input size {0} is not a multiple of 32 between 128 and 608")]
    InputSize(usize),
    #[error("reading results from the device failed: {0}")]
    Device(String),
}

/// Decoded weights of the three networks.
#[derive(Debug, Clone)]
pub struct FaceWeights {
    pub detector: WeightMap,
    pub landmarks: WeightMap,
    pub expressions: WeightMap,
}

impl FaceWeights {
    /// From weight maps in [`MODEL_NAMES`] order.
    pub fn from_maps([detector, landmarks, expressions]: [WeightMap; 3]) -> Self {
        Self {
            detector,
            landmarks,
            expressions,
        }
    }

    /// Reads the three models from a folder of face-api.js model files.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_dir(dir: &std::path::Path) -> Result<Self, WeightError> {
        let [a, b, c] = MODEL_NAMES;
        Ok(Self::from_maps([
            crate::weights::load_from_dir(dir, a)?,
            crate::weights::load_from_dir(dir, b)?,
            crate::weights::load_from_dir(dir, c)?,
        ]))
    }
}

/// How the detector looks at a frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetectorOptions {
    /// `Some(n)`: one pass at input size `n`, exactly as face-api.js does (for parity).
    /// `None`: the default, two views in one batch (see [`DEFAULT_INPUT_SIZE`]).
    pub input_size: Option<usize>,
    /// Minimum detection score (face-api's default 0.5).
    pub score_threshold: f64,
}

impl Default for DetectorOptions {
    fn default() -> Self {
        Self {
            input_size: None,
            score_threshold: 0.5,
        }
    }
}

/// Input size of the default two-view detection. The first view is the frame as face-api sees
/// it; the second shows it zoomed out on a larger black square, so that a face filling the frame
/// (which the detector, trained on faces with context, misses) looks like a normal-sized face.
pub const DEFAULT_INPUT_SIZE: usize = 416;
/// Side of the zoomed-out canvas, relative to the frame's longer side.
const ZOOM_OUT: f64 = 1.8;

/// An axis-aligned box in image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PixelBox {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

impl PixelBox {
    pub fn right(&self) -> f64 {
        self.x + self.width
    }
    pub fn bottom(&self) -> f64 {
        self.y + self.height
    }

    pub fn iou(&self, other: &Self) -> f64 {
        let w = (self.right().min(other.right()) - self.x.max(other.x)).max(0.0);
        let h = (self.bottom().min(other.bottom()) - self.y.max(other.y)).max(0.0);
        let inter = w * h;
        inter / (self.width * self.height + other.width * other.height - inter)
    }

    /// The integer region a crop reads: clipped to the image, then each of x, y, width, height
    /// floored (face-api's `clipAtImageBorders().floor()`). `None` when nothing is left.
    fn crop_rect(&self, image_width: usize, image_height: usize) -> Option<PixelRect> {
        let x = self.x.max(0.0);
        let y = self.y.max(0.0);
        let width = (self.right() - x).min(image_width as f64 - x).floor();
        let height = (self.bottom() - y).min(image_height as f64 - y).floor();
        let (x, y) = (x.floor(), y.floor());
        if width < 1.0 || height < 1.0 || x >= image_width as f64 || y >= image_height as f64 {
            return None;
        }
        Some(PixelRect {
            x: x as usize,
            y: y as usize,
            width: width as usize,
            height: height as usize,
        })
    }
}

/// Probabilities of the seven expression classes (they sum to 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Expressions {
    pub neutral: f64,
    pub happy: f64,
    pub sad: f64,
    pub angry: f64,
    pub fearful: f64,
    pub disgusted: f64,
    pub surprised: f64,
}

impl Expressions {
    fn from_slice(p: &[f32]) -> Self {
        Self {
            neutral: p[0] as f64,
            happy: p[1] as f64,
            sad: p[2] as f64,
            angry: p[3] as f64,
            fearful: p[4] as f64,
            disgusted: p[5] as f64,
            surprised: p[6] as f64,
        }
    }

    /// The probabilities in [`EXPRESSIONS`] order.
    pub fn to_array(&self) -> [f64; 7] {
        [
            self.neutral,
            self.happy,
            self.sad,
            self.angry,
            self.fearful,
            self.disgusted,
            self.surprised,
        ]
    }

    /// The most probable class and its probability.
    pub fn dominant(&self) -> (&'static str, f64) {
        let probs = self.to_array();
        let best = (0..7)
            .max_by(|&a, &b| probs[a].total_cmp(&probs[b]))
            .unwrap_or(0);
        (EXPRESSIONS[best], probs[best])
    }
}

/// One analysed face.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Face {
    /// The detection box.
    #[serde(rename = "box")]
    pub bbox: PixelBox,
    /// Detection score.
    pub score: f64,
    /// 68 landmarks (iBUG order), image pixels.
    pub landmarks: Vec<[f64; 2]>,
    /// The box around the landmarks (20% margin) that expressions were read from.
    pub aligned_box: PixelBox,
    pub expressions: Expressions,
    /// Luminance profiles above the eyes ([`brow_profiles`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brow_profiles: Option<Vec<f32>>,
    /// How clearly the lips and eyes show where the landmarks put them ([`contour_contrast`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contour_contrast: Option<ContourContrast>,
}

/// All faces of one frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameFaces {
    pub width: usize,
    pub height: usize,
    pub faces: Vec<Face>,
}

/// Where one detector input comes from: the frame placed on a black square canvas.
#[derive(Debug, Clone, Copy)]
struct DetectorView {
    canvas: SquareCanvas,
    /// The frame's size inside the network input, in input pixels.
    content: (f64, f64),
    /// The frame's top-left corner inside the network input, in input pixels.
    offset: (f64, f64),
}

impl DetectorView {
    /// face-api's view: the frame at the top-left of its own square. Its box decoding rounds the
    /// scaled frame size (`computeReshapedDimensions`); kept so that boxes match it exactly.
    fn plain(width: usize, height: usize, size: usize) -> Self {
        let side = width.max(height);
        let scale = size as f64 / side as f64;
        Self {
            canvas: SquareCanvas {
                side,
                offset_x: 0,
                offset_y: 0,
            },
            // At least one input pixel: a 1×N frame's short side rounds to 0, and boxes
            // divided by it were NaN.
            content: (
                (width as f64 * scale).round().max(1.0),
                (height as f64 * scale).round().max(1.0),
            ),
            offset: (0.0, 0.0),
        }
    }

    /// The frame centred on a square `ZOOM_OUT` times its longer side.
    fn zoomed_out(width: usize, height: usize, size: usize) -> Self {
        let side = (width.max(height) as f64 * ZOOM_OUT).round() as usize;
        let (offset_x, offset_y) = ((side - width) / 2, (side - height) / 2);
        let scale = size as f64 / side as f64;
        Self {
            canvas: SquareCanvas {
                side,
                offset_x,
                offset_y,
            },
            content: (width as f64 * scale, height as f64 * scale),
            offset: (offset_x as f64 * scale, offset_y as f64 * scale),
        }
    }

    /// Maps a box relative to the network input to a box relative to the frame.
    fn to_frame(self, b: RelativeBox, size: f64) -> RelativeBox {
        let x = |v: f64| (v * size - self.offset.0) / self.content.0;
        let y = |v: f64| (v * size - self.offset.1) / self.content.1;
        RelativeBox {
            left: x(b.left),
            top: y(b.top),
            right: x(b.right),
            bottom: y(b.bottom),
            score: b.score,
        }
    }
}

/// The three networks on one device.
#[derive(Debug)]
pub struct FaceAnalyzer {
    detector: TinyFaceDetector,
    landmarks: FaceFeatureNet,
    expressions: FaceFeatureNet,
    device: Device,
    options: DetectorOptions,
}

impl FaceAnalyzer {
    pub fn new(
        weights: &FaceWeights,
        device: &Device,
        options: DetectorOptions,
    ) -> Result<Self, FaceError> {
        if let Some(size) = options.input_size
            && (size % 32 != 0 || !(128..=608).contains(&size))
        {
            return Err(FaceError::InputSize(size));
        }
        Ok(Self {
            detector: TinyFaceDetector::load(&weights.detector, device)?,
            landmarks: FaceFeatureNet::load(&weights.landmarks, 136, device)?,
            expressions: FaceFeatureNet::load(&weights.expressions, EXPRESSIONS.len(), device)?,
            device: device.clone(),
            options,
        })
    }

    pub fn options(&self) -> DetectorOptions {
        self.options
    }

    /// Analyses a batch of frames: every face's box, landmarks and expressions.
    pub async fn analyze(&self, frames: &[&RgbImage]) -> Result<Vec<FrameFaces>, FaceError> {
        let detections = self.detect(frames).await?;
        self.analyze_boxes(frames, &detections).await
    }

    /// Analyses consecutive frames of one video, in display order, with `tracker` deciding
    /// where the detector runs (see [`FaceTracker`]); with tracking off, one batch as
    /// [`Self::analyze`].
    pub async fn analyze_sequence(
        &self,
        frames: &[&RgbImage],
        tracker: &mut FaceTracker,
    ) -> Result<Vec<FrameFaces>, FaceError> {
        if !tracker.options().enabled {
            let results = self.analyze(frames).await?;
            results.iter().for_each(|r| tracker.detected(r));
            return Ok(results);
        }
        let mut results = Vec::with_capacity(frames.len());
        for frame in frames {
            // `crop_tried`: the crops at the tracked boxes were analysed already (and refused).
            let (reason, crop_tried) = match tracker.plan(frame.width, frame.height) {
                Ok(boxes) => {
                    let tracked = self.analyze_boxes(&[frame], &[boxes]).await?.remove(0);
                    match tracker.tracked(&tracked) {
                        Verdict::Keep => {
                            results.push(tracked);
                            continue;
                        }
                        Verdict::Detect(reason) => (reason, true),
                    }
                }
                Err(reason) => (reason, false),
            };
            tracker.note_detection(reason);
            let detected = self.analyze(&[frame]).await?.remove(0);
            if detected.faces.is_empty() && reason == DetectReason::Edge && !crop_tried {
                // The detector misses some faces that fill the frame; the tracked crop holds
                // the face as long as its landmarks keep the face's shape.
                let boxes = tracker.predicted_boxes();
                let tracked = self.analyze_boxes(&[frame], &[boxes]).await?.remove(0);
                if tracker.detector_missed(&tracked) {
                    results.push(tracked);
                    continue;
                }
            }
            tracker.detected(&detected);
            results.push(detected);
        }
        Ok(results)
    }

    /// Landmarks and expressions of the faces in known boxes (image pixels, with their scores),
    /// one list per frame: the detector's, or those a tracker predicted.
    pub async fn analyze_boxes(
        &self,
        frames: &[&RgbImage],
        detections: &[Vec<(PixelBox, f64)>],
    ) -> Result<Vec<FrameFaces>, FaceError> {
        // One crop per face, all frames together.
        let mut crops = Vec::new();
        for (frame_index, (frame, boxes)) in frames.iter().zip(detections).enumerate() {
            for (face_index, detection) in boxes.iter().enumerate() {
                if let Some(rect) = detection.0.crop_rect(frame.width, frame.height) {
                    crops.push((frame_index, face_index, rect));
                }
            }
        }
        let inputs: Vec<Vec<f32>> = crops
            .iter()
            .map(|&(f, _, rect)| self.face_input(frames[f], rect))
            .collect();
        let raw_landmarks = self.run_face_net(&self.landmarks, inputs, 136).await?;

        let mut located = Vec::new();
        for (&(f, i, rect), raw) in crops.iter().zip(raw_landmarks.chunks_exact(136)) {
            let (bbox, score) = detections[f][i];
            let landmarks = place_landmarks(raw, rect, bbox);
            let aligned_box = aligned_box(&landmarks);
            let frame = frames[f];
            if let Some(aligned_rect) = aligned_box.crop_rect(frame.width, frame.height) {
                located.push((f, bbox, score, landmarks, aligned_box, aligned_rect));
            }
        }
        let inputs: Vec<Vec<f32>> = located
            .iter()
            .map(|(f, .., rect)| self.face_input(frames[*f], *rect))
            .collect();
        let logits = self
            .run_face_net(&self.expressions, inputs, EXPRESSIONS.len())
            .await?;

        let mut results: Vec<FrameFaces> = frames
            .iter()
            .map(|frame| FrameFaces {
                width: frame.width,
                height: frame.height,
                faces: Vec::new(),
            })
            .collect();
        for ((f, bbox, score, landmarks, aligned_box, _), probs) in located
            .into_iter()
            .zip(logits.chunks_exact(EXPRESSIONS.len()))
        {
            let brow_profiles = brow_profiles(frames[f], &landmarks);
            let contour_contrast = contour_contrast(frames[f], &landmarks);
            results[f].faces.push(Face {
                bbox,
                score,
                landmarks,
                aligned_box,
                expressions: Expressions::from_slice(probs),
                brow_profiles,
                contour_contrast,
            });
        }
        Ok(results)
    }

    /// Face boxes (image pixels) and scores for each frame, strongest first.
    pub async fn detect(
        &self,
        frames: &[&RgbImage],
    ) -> Result<Vec<Vec<(PixelBox, f64)>>, FaceError> {
        let size = self.options.input_size.unwrap_or(DEFAULT_INPUT_SIZE);
        let views: Vec<(usize, DetectorView)> = frames
            .iter()
            .enumerate()
            .flat_map(|(i, frame)| {
                let plain = DetectorView::plain(frame.width, frame.height, size);
                let zoomed = (self.options.input_size.is_none())
                    .then(|| DetectorView::zoomed_out(frame.width, frame.height, size));
                std::iter::once((i, plain)).chain(zoomed.map(|v| (i, v)))
            })
            .collect();
        let inputs: Vec<Vec<f32>> = views
            .iter()
            .map(|(i, view)| {
                let frame = frames[*i];
                canvas_input(
                    frame,
                    PixelRect::whole(frame),
                    view.canvas,
                    size,
                    detector::MEAN_RGB,
                    255.0,
                )
            })
            .collect();
        let grids = read(self.detector.forward(self.batch(inputs, size))).await?;

        let cells = size / 32;
        let grid_len = 5 * 5 * cells * cells;
        let mut per_frame: Vec<Vec<RelativeBox>> = vec![Vec::new(); frames.len()];
        for ((i, view), grid) in views.iter().zip(grids.chunks_exact(grid_len)) {
            let boxes = decode_grid(
                grid,
                cells,
                (size as f64, size as f64),
                size as f64,
                self.options.score_threshold,
            );
            per_frame[*i].extend(boxes.into_iter().map(|b| view.to_frame(b, size as f64)));
        }
        Ok(per_frame
            .into_iter()
            .zip(frames)
            .map(|(boxes, frame)| {
                let (w, h) = (frame.width as f64, frame.height as f64);
                non_max_suppression(boxes, detector::IOU_THRESHOLD)
                    .into_iter()
                    .map(|b| {
                        let bbox = PixelBox {
                            x: b.left * w,
                            y: b.top * h,
                            width: (b.right - b.left) * w,
                            height: (b.bottom - b.top) * h,
                        };
                        (bbox, b.score)
                    })
                    .collect()
            })
            .collect())
    }

    fn face_input(&self, frame: &RgbImage, rect: PixelRect) -> Vec<f32> {
        square_input(
            frame,
            rect,
            SquarePadding::Centered,
            features::INPUT_SIZE,
            features::MEAN_RGB,
            255.0,
        )
    }

    /// Runs a face network on crops (HWC, 112×112), returning `outputs` values per crop.
    async fn run_face_net(
        &self,
        net: &FaceFeatureNet,
        inputs: Vec<Vec<f32>>,
        outputs: usize,
    ) -> Result<Vec<f32>, FaceError> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = net.forward(self.batch(inputs, features::INPUT_SIZE));
        if outputs == EXPRESSIONS.len() {
            out = burn::tensor::activation::softmax(out, 1);
        }
        read(out).await
    }

    /// Stacks HWC images into one `[n, 3, size, size]` tensor on the device.
    fn batch(&self, inputs: Vec<Vec<f32>>, size: usize) -> Tensor<4> {
        let n = inputs.len();
        let flat: Vec<f32> = inputs.into_iter().flatten().collect();
        Tensor::<4>::from_data(TensorData::new(flat, [n, size, size, 3]), &self.device)
            .permute([0, 3, 1, 2])
    }
}

/// Reads a tensor back to the host without blocking (the only way that works on WebGPU).
async fn read<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, FaceError> {
    let data = tensor
        .into_data_async()
        .await
        .map_err(|e| FaceError::Device(format!("{e:?}")))?;
    data.try_into_vec::<f32>()
        .map_err(|e| FaceError::Device(format!("{e:?}")))
}

/// Turns the landmark net's output (x, y pairs relative to the padded 112 square) into image
/// pixels. Mirrors face-api: the padding is undone with the unrounded scaled size, positions are
/// scaled by the crop size and shifted by the (unclipped) detection box corner.
fn place_landmarks(raw: &[f32], crop: PixelRect, detection: PixelBox) -> Vec<[f64; 2]> {
    let size = features::INPUT_SIZE as f64;
    let (w, h) = (crop.width as f64, crop.height as f64);
    let scale = size / w.max(h);
    let (sw, sh) = (w * scale, h * scale);
    let pad_x = if sw < sh { (sh - sw) / 2.0 } else { 0.0 };
    let pad_y = if sh < sw { (sw - sh) / 2.0 } else { 0.0 };
    raw.chunks_exact(2)
        .map(|p| {
            let rel_x = (p[0] as f64 * size - pad_x) / sw;
            let rel_y = (p[1] as f64 * size - pad_y) / sh;
            [rel_x * w + detection.x, rel_y * h + detection.y]
        })
        .collect()
}

/// The landmarks' bounding box grown by 20% of its size (10% each side).
fn aligned_box(landmarks: &[[f64; 2]]) -> PixelBox {
    let (mut min_x, mut min_y) = (f64::INFINITY, f64::INFINITY);
    let (mut max_x, mut max_y) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    for [x, y] in landmarks {
        min_x = min_x.min(*x);
        min_y = min_y.min(*y);
        max_x = max_x.max(*x);
        max_y = max_y.max(*y);
    }
    let (w, h) = (max_x - min_x, max_y - min_y);
    PixelBox {
        x: min_x - 0.1 * w,
        y: min_y - 0.1 * h,
        width: 1.2 * w,
        height: 1.2 * h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_of_a_one_pixel_wide_frame_are_finite() {
        let b = RelativeBox {
            left: 0.0,
            top: 0.1,
            right: 0.001,
            bottom: 0.5,
            score: 0.9,
        };
        for (w, h) in [(1, 1000), (1000, 1), (1, 1), (3, 4000)] {
            for view in [
                DetectorView::plain(w, h, 416),
                DetectorView::zoomed_out(w, h, 416),
            ] {
                let f = view.to_frame(b, 416.0);
                assert!(
                    [f.left, f.top, f.right, f.bottom]
                        .iter()
                        .all(|v| v.is_finite()),
                    "{w}x{h}: {f:?}"
                );
            }
        }
    }
}
