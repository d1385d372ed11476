//! Tiny face detector: a TinyYOLOv2-style network with depthwise-separable convolutions
//! (face-api.js' `tiny_face_detector_model`). One 3×3 conv, five separable convs with max
//! pooling (stride 32 in all), a 1×1 head predicting 5 anchors × (x, y, w, h, score) per cell.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::layers::{Conv, SeparableConv, TfPadding, max_pool_leaky_relu};
use crate::weights::{WeightError, WeightMap};

/// Anchor box sizes in grid cells, as the model was trained.
const ANCHORS: [(f64, f64); 5] = [
    (1.603231, 2.094468),
    (6.041143, 7.080126),
    (2.882459, 3.518061),
    (4.266906, 5.178857),
    (9.041765, 10.66308),
];
/// Per-channel mean subtracted before dividing by 255.
pub const MEAN_RGB: [f32; 3] = [117.001, 114.697, 97.404];
/// Overlap above which the weaker of two boxes is suppressed.
pub const IOU_THRESHOLD: f64 = 0.4;
const LEAK: f64 = 0.1;

#[derive(Module, Debug)]
pub struct TinyFaceDetector {
    conv0: Conv,
    separable: Vec<SeparableConv>,
    head: Conv,
}

impl TinyFaceDetector {
    pub fn load(weights: &WeightMap, device: &Device) -> Result<Self, WeightError> {
        let widths = [16, 32, 64, 128, 256, 512];
        let separable = (1..widths.len())
            .map(|i| {
                SeparableConv::load(
                    weights,
                    &format!("conv{i}"),
                    [widths[i - 1], widths[i]],
                    1,
                    device,
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            conv0: Conv::load(weights, "conv0", [3, 3, widths[0]], 1, device)?,
            separable,
            head: Conv::load(weights, "conv8", [1, 512, ANCHORS.len() * 5], 1, device)?,
        })
    }

    /// `[batch, 3, size, size]` normalised input → `[batch, 25, size/32, size/32]` raw predictions.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        // Leaky ReLU rises monotonically, so it commutes with max pooling (one pass for both).
        let mut x = max_pool_leaky_relu(self.conv0.forward(input, TfPadding::Valid), 2, LEAK);
        let last = self.separable.len() - 1;
        for (i, conv) in self.separable.iter().enumerate() {
            // The last pooling keeps the grid size: it only widens the receptive field.
            let stride = if i == last { 1 } else { 2 };
            x = max_pool_leaky_relu(conv.forward(x, TfPadding::Same), stride, LEAK);
        }
        self.head.forward(x, TfPadding::Valid)
    }
}

/// A detection in coordinates relative to the image (0..1 across width and height).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RelativeBox {
    pub left: f64,
    pub top: f64,
    pub right: f64,
    pub bottom: f64,
    pub score: f64,
}

impl RelativeBox {
    fn area(&self) -> f64 {
        (self.right - self.left) * (self.bottom - self.top)
    }

    pub fn iou(&self, other: &Self) -> f64 {
        let w = (self.right.min(other.right) - self.left.max(other.left)).max(0.0);
        let h = (self.bottom.min(other.bottom) - self.top.max(other.top)).max(0.0);
        let inter = w * h;
        inter / (self.area() + other.area() - inter)
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Decodes one image's raw grid (`[25, cells, cells]`, channel-major as burn returns it) into
/// boxes above `score_threshold`. `content` is the image's size inside the square input (its
/// longer side fills the square), so boxes come out relative to the image, not the square.
pub fn decode_grid(
    grid: &[f32],
    cells: usize,
    content: (f64, f64),
    input_size: f64,
    score_threshold: f64,
) -> Vec<RelativeBox> {
    let at =
        |channel: usize, row: usize, col: usize| grid[(channel * cells + row) * cells + col] as f64;
    let (content_w, content_h) = content;
    let (correct_x, correct_y) = (input_size / content_w, input_size / content_h);
    let mut boxes = Vec::new();
    for row in 0..cells {
        for col in 0..cells {
            for (anchor, (anchor_w, anchor_h)) in ANCHORS.iter().enumerate() {
                let channel = anchor * 5;
                let score = sigmoid(at(channel + 4, row, col));
                if score <= score_threshold {
                    continue;
                }
                let cx = (col as f64 + sigmoid(at(channel, row, col))) / cells as f64 * correct_x;
                let cy =
                    (row as f64 + sigmoid(at(channel + 1, row, col))) / cells as f64 * correct_y;
                let w = at(channel + 2, row, col).exp() * anchor_w / cells as f64 * correct_x;
                let h = at(channel + 3, row, col).exp() * anchor_h / cells as f64 * correct_y;
                boxes.push(RelativeBox {
                    left: cx - w / 2.0,
                    top: cy - h / 2.0,
                    right: cx + w / 2.0,
                    bottom: cy + h / 2.0,
                    score,
                });
            }
        }
    }
    boxes
}

/// Greedy non-maximum suppression: strongest first, dropping boxes that overlap a kept one by
/// more than `iou_threshold`. Ties keep the later box first, as face-api's stable sort does.
pub fn non_max_suppression(mut boxes: Vec<RelativeBox>, iou_threshold: f64) -> Vec<RelativeBox> {
    boxes.sort_by(|a, b| a.score.total_cmp(&b.score));
    let mut kept = Vec::new();
    while let Some(best) = boxes.pop() {
        boxes.retain(|b| best.iou(b) <= iou_threshold);
        kept.push(best);
    }
    kept
}
