//! Convolution building blocks with TensorFlow semantics, loaded from tfjs weight maps.
//!
//! TensorFlow stores filters as `[kh, kw, in, out]` and pads "SAME" convolutions with the extra
//! row/column at the bottom/right when the total padding is odd (stride 2 on an even size). burn
//! wants `[out, in/groups, kh, kw]` and explicit `(begin, end)` padding, so the conversion and the
//! padding rule live here, once.

use burn::module::{Module, Param};
use burn::tensor::activation::leaky_relu;
use burn::tensor::module::{conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor, TensorData};

use crate::weights::{WeightError, WeightMap};

/// TensorFlow padding modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TfPadding {
    Valid,
    Same,
}

/// `(begin, end)` padding of one spatial axis for TF "SAME": output `ceil(size / stride)`,
/// the odd pixel of padding at the end.
pub fn same_padding(size: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let total = ((out - 1) * stride + kernel).saturating_sub(size);
    (total / 2, total - total / 2)
}

fn padding_pairs(
    padding: TfPadding,
    [h, w]: [usize; 2],
    kernel: usize,
    stride: usize,
) -> [(usize, usize); 2] {
    match padding {
        TfPadding::Valid => [(0, 0); 2],
        TfPadding::Same => [
            same_padding(h, kernel, stride),
            same_padding(w, kernel, stride),
        ],
    }
}

/// Converts a TF `[kh, kw, in, out]` filter to burn's `[out, in, kh, kw]`.
fn tf_filter(
    weights: &WeightMap,
    name: &str,
    shape: [usize; 4],
    device: &Device,
) -> Result<Tensor<4>, WeightError> {
    let tensor = weights.get(name, &shape)?;
    let data = TensorData::new(tensor.values.clone(), shape);
    Ok(Tensor::<4>::from_data(data, device).permute([3, 2, 0, 1]))
}

fn tf_vector(
    weights: &WeightMap,
    name: &str,
    len: usize,
    device: &Device,
) -> Result<Tensor<1>, WeightError> {
    let tensor = weights.get(name, &[len])?;
    Ok(Tensor::<1>::from_data(
        TensorData::new(tensor.values.clone(), [len]),
        device,
    ))
}

/// A plain convolution with bias (`{prefix}/filters`, `{prefix}/bias`).
#[derive(Module, Debug)]
pub struct Conv {
    weight: Param<Tensor<4>>,
    bias: Param<Tensor<1>>,
    kernel: usize,
    stride: usize,
}

impl Conv {
    pub fn load(
        weights: &WeightMap,
        prefix: &str,
        [kernel, inputs, outputs]: [usize; 3],
        stride: usize,
        device: &Device,
    ) -> Result<Self, WeightError> {
        let weight = tf_filter(
            weights,
            &format!("{prefix}/filters"),
            [kernel, kernel, inputs, outputs],
            device,
        )?;
        let bias = tf_vector(weights, &format!("{prefix}/bias"), outputs, device)?;
        Ok(Self {
            weight: Param::from_tensor(weight),
            bias: Param::from_tensor(bias),
            kernel,
            stride,
        })
    }

    pub fn forward(&self, x: Tensor<4>, padding: TfPadding) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let pads = padding_pairs(padding, [h, w], self.kernel, self.stride);
        let options = ConvOptions::new_with_padding([self.stride; 2], pads, [1, 1], 1);
        conv2d(x, self.weight.val(), Some(self.bias.val()), options)
    }
}

/// A depthwise-separable convolution: 3×3 depthwise, 1×1 pointwise, then bias
/// (`{prefix}/depthwise_filter`, `{prefix}/pointwise_filter`, `{prefix}/bias`).
#[derive(Module, Debug)]
pub struct SeparableConv {
    depthwise: Param<Tensor<4>>,
    pointwise: Param<Tensor<4>>,
    bias: Param<Tensor<1>>,
    channels: usize,
    stride: usize,
}

impl SeparableConv {
    pub fn load(
        weights: &WeightMap,
        prefix: &str,
        [inputs, outputs]: [usize; 2],
        stride: usize,
        device: &Device,
    ) -> Result<Self, WeightError> {
        // TF depthwise filters are [kh, kw, in, multiplier=1]; as a grouped conv: [in, 1, kh, kw].
        let depthwise = tf_filter(
            weights,
            &format!("{prefix}/depthwise_filter"),
            [3, 3, inputs, 1],
            device,
        )?
        .swap_dims(0, 1);
        let pointwise = tf_filter(
            weights,
            &format!("{prefix}/pointwise_filter"),
            [1, 1, inputs, outputs],
            device,
        )?;
        let bias = tf_vector(weights, &format!("{prefix}/bias"), outputs, device)?;
        Ok(Self {
            depthwise: Param::from_tensor(depthwise),
            pointwise: Param::from_tensor(pointwise),
            bias: Param::from_tensor(bias),
            channels: inputs,
            stride,
        })
    }

    /// `padding` applies to the depthwise step; TinyYolo's variant pads by one explicitly and
    /// then runs "valid", which for 3×3 stride 1 is the same as `Same`.
    pub fn forward(&self, x: Tensor<4>, padding: TfPadding) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let pads = padding_pairs(padding, [h, w], 3, self.stride);
        let depthwise =
            ConvOptions::new_with_padding([self.stride; 2], pads, [1, 1], self.channels);
        let x = conv2d(x, self.depthwise.val(), None, depthwise);
        conv2d(
            x,
            self.pointwise.val(),
            Some(self.bias.val()),
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        )
    }
}

/// A dense layer `x · W + b` with TF's `[in, out]` weights (`{prefix}/weights`, `{prefix}/bias`).
#[derive(Module, Debug)]
pub struct Dense {
    weight: Param<Tensor<2>>,
    bias: Param<Tensor<1>>,
}

impl Dense {
    pub fn load(
        weights: &WeightMap,
        prefix: &str,
        [inputs, outputs]: [usize; 2],
        device: &Device,
    ) -> Result<Self, WeightError> {
        let tensor = weights.get(&format!("{prefix}/weights"), &[inputs, outputs])?;
        let weight = Tensor::<2>::from_data(
            TensorData::new(tensor.values.clone(), [inputs, outputs]),
            device,
        );
        let bias = tf_vector(weights, &format!("{prefix}/bias"), outputs, device)?;
        Ok(Self {
            weight: Param::from_tensor(weight),
            bias: Param::from_tensor(bias),
        })
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        x.matmul(self.weight.val()) + self.bias.val().unsqueeze_dim(0)
    }
}

/// 2×2 max pooling with TF "SAME" padding (padded cells never win), then leaky ReLU. On burn's
/// CPU backend one pass over the values on the host: its `max_pool2d` walks every window with
/// index bookkeeping and took half of the detector's time in the browser, and strided views or
/// reductions cost nearly as much. Elsewhere (WebGPU) burn's own kernels.
pub fn max_pool_leaky_relu(x: Tensor<4>, stride: usize, leak: f64) -> Tensor<4> {
    let device = x.device();
    if device == Device::flex() {
        return pool_on_host(x, stride, leak as f32, &device);
    }
    leaky_relu(max_pool_same(x, stride), leak)
}

/// burn's 2×2 max pooling with TF "SAME" padding.
fn max_pool_same(x: Tensor<4>, stride: usize) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let options = MaxPoolOptions::new([2, 2])
        .with_stride([stride; 2])
        .with_padding_pairs([same_padding(h, 2, stride), same_padding(w, 2, stride)]);
    max_pool2d(x, options)
}

fn pool_on_host(x: Tensor<4>, stride: usize, leak: f32, device: &Device) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let (out_h, out_w) = (h.div_ceil(stride), w.div_ceil(stride));
    let data = x.into_data();
    let values = data.as_slice::<f32>().expect("f32 activations");
    let mut out = vec![0.0f32; n * c * out_h * out_w];
    let max = |a: f32, b: f32| if a > b { a } else { b };
    for (plane, pooled) in values
        .chunks_exact(h * w)
        .zip(out.chunks_exact_mut(out_h * out_w))
    {
        for (oy, row) in pooled.chunks_exact_mut(out_w).enumerate() {
            // For a 2×2 window SAME pads only at the end, so a window never starts outside:
            // clamping its second row/column to the edge skips the padded cells.
            let y0 = oy * stride;
            let top = &plane[y0 * w..(y0 + 1) * w];
            let y1 = (y0 + 1).min(h - 1);
            let bottom = &plane[y1 * w..(y1 + 1) * w];
            let cell = |x0: usize| {
                let x1 = (x0 + 1).min(w - 1);
                max(max(top[x0], top[x1]), max(bottom[x0], bottom[x1]))
            };
            if stride == 2 {
                let pairs = top.chunks_exact(2).zip(bottom.chunks_exact(2));
                for (o, (t, b)) in row.iter_mut().zip(pairs) {
                    *o = max(max(t[0], t[1]), max(b[0], b[1]));
                }
                if w % 2 == 1 {
                    row[out_w - 1] = cell(w - 1);
                }
            } else {
                for (ox, o) in row.iter_mut().enumerate() {
                    *o = cell(ox * stride);
                }
            }
            for v in row.iter_mut() {
                if *v < 0.0 {
                    *v *= leak;
                }
            }
        }
    }
    Tensor::from_data(TensorData::new(out, [n, c, out_h, out_w]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_puts_the_odd_pixel_last() {
        assert_eq!(same_padding(112, 3, 2), (0, 1));
        assert_eq!(same_padding(56, 3, 1), (1, 1));
        assert_eq!(same_padding(207, 2, 2), (0, 1));
        assert_eq!(same_padding(414, 2, 2), (0, 0));
        assert_eq!(same_padding(13, 2, 1), (0, 1));
    }

    #[test]
    fn host_pooling_matches_burns_pooling() {
        let device = Device::flex();
        for (h, w, stride) in [
            (414, 414, 2),
            (207, 207, 2),
            (13, 13, 1),
            (7, 10, 2),
            (5, 4, 1),
        ] {
            let x = Tensor::<4>::random(
                [2, 3, h, w],
                burn::tensor::Distribution::Normal(0.0, 1.0),
                &device,
            );
            let ours = max_pool_leaky_relu(x.clone(), stride, 0.1);
            let theirs = leaky_relu(max_pool_same(x, stride), 0.1);
            assert_eq!(ours.dims(), theirs.dims(), "{h}x{w} stride {stride}");
            assert_eq!(
                ours.into_data(),
                theirs.into_data(),
                "{h}x{w} stride {stride}"
            );
        }
    }
}
