//! The face feature network shared (in architecture, not weights) by face-api.js' 68-point
//! landmark model and its expression model: four densely connected blocks on a 112×112 face
//! crop, global average pooling, and a dense head (136 landmark coordinates or 7 expression logits).

use burn::module::Module;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::layers::{Conv, Dense, SeparableConv, TfPadding};
use crate::weights::{WeightError, WeightMap};

/// Side of the square face crop the network reads.
pub const INPUT_SIZE: usize = 112;
/// Per-channel mean subtracted before dividing by 255.
pub const MEAN_RGB: [f32; 3] = [122.782, 117.001, 104.298];
const WIDTHS: [usize; 5] = [3, 32, 64, 128, 256];

/// The first layer halves the resolution: a plain conv in the first block, separable in the rest.
#[derive(Module, Debug)]
enum Downsample {
    Conv(Conv),
    Separable(SeparableConv),
}

/// Four convolutions where each one sees the sum of all earlier outputs of the block.
#[derive(Module, Debug)]
struct DenseBlock {
    downsample: Downsample,
    convs: Vec<SeparableConv>,
}

impl DenseBlock {
    fn load(weights: &WeightMap, index: usize, device: &Device) -> Result<Self, WeightError> {
        let [inputs, outputs] = [WIDTHS[index], WIDTHS[index + 1]];
        let prefix = format!("dense{index}");
        let downsample = if index == 0 {
            Downsample::Conv(Conv::load(
                weights,
                &format!("{prefix}/conv0"),
                [3, inputs, outputs],
                2,
                device,
            )?)
        } else {
            Downsample::Separable(SeparableConv::load(
                weights,
                &format!("{prefix}/conv0"),
                [inputs, outputs],
                2,
                device,
            )?)
        };
        let convs = (1..4)
            .map(|i| {
                SeparableConv::load(
                    weights,
                    &format!("{prefix}/conv{i}"),
                    [outputs, outputs],
                    1,
                    device,
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { downsample, convs })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let first = relu(match &self.downsample {
            Downsample::Conv(conv) => conv.forward(x, TfPadding::Same),
            Downsample::Separable(conv) => conv.forward(x, TfPadding::Same),
        });
        // Running sum of the block's outputs; each conv reads relu(sum so far).
        let mut sum = first.clone();
        let mut input = first;
        for conv in &self.convs {
            sum = sum + conv.forward(input, TfPadding::Same);
            input = relu(sum.clone());
        }
        input
    }
}

/// Feature extractor plus dense head.
#[derive(Module, Debug)]
pub struct FaceFeatureNet {
    blocks: Vec<DenseBlock>,
    head: Dense,
}

impl FaceFeatureNet {
    /// Loads a model whose head has `outputs` units (136 for landmarks, 7 for expressions).
    pub fn load(weights: &WeightMap, outputs: usize, device: &Device) -> Result<Self, WeightError> {
        let blocks = (0..4)
            .map(|i| DenseBlock::load(weights, i, device))
            .collect::<Result<_, _>>()?;
        let head = Dense::load(weights, "fc", [WIDTHS[4], outputs], device)?;
        Ok(Self { blocks, head })
    }

    /// `[faces, 3, 112, 112]` normalised crops → `[faces, outputs]`.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<2> {
        let x = self.blocks.iter().fold(input, |x, block| block.forward(x));
        // 7×7 average pooling over the 7×7 map is a global mean.
        let pooled: Tensor<2> = x.mean_dim(3).mean_dim(2).flatten(1, 3);
        self.head.forward(pooled)
    }
}
