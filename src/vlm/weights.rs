//! Reads tensors by name from a safetensors buffer, converting F16/BF16 to f32.

use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use super::VlmError;

/// A parsed safetensors buffer; tensors are converted on demand.
pub struct Weights<'a> {
    st: SafeTensors<'a>,
    device: Device,
    /// How linear layers keep their matrices (the caller casts; reads are always f32).
    pub matrices: super::idefics3::WeightPrecision,
}

impl<'a> Weights<'a> {
    pub fn parse(bytes: &'a [u8], device: &Device) -> Result<Self, VlmError> {
        let st =
            SafeTensors::deserialize(bytes).map_err(|e| VlmError::SafeTensors(e.to_string()))?;
        Ok(Self {
            st,
            device: device.clone(),
            matrices: Default::default(),
        })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.st.tensor(name).is_ok()
    }

    /// The tensor's values as f32 after checking its shape.
    pub fn read_f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, VlmError> {
        let view = self
            .st
            .tensor(name)
            .map_err(|_| VlmError::MissingTensor(name.to_string()))?;
        if view.shape() != shape {
            return Err(VlmError::Shape {
                name: name.to_string(),
                expected: shape.to_vec(),
                actual: view.shape().to_vec(),
            });
        }
        let bytes = view.data();
        // Bytes may be unaligned inside the file, so decode from little-endian chunks.
        let values = match view.dtype() {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(VlmError::Dtype {
                    name: name.to_string(),
                    dtype: format!("{other:?}"),
                });
            }
        };
        Ok(values)
    }

    pub fn tensor<const D: usize>(
        &self,
        name: &str,
        shape: [usize; D],
    ) -> Result<Tensor<D>, VlmError> {
        let values = self.read_f32(name, &shape)?;
        Ok(Tensor::from_data(
            TensorData::new(values, shape),
            &self.device,
        ))
    }

    /// A PyTorch `[out, in]` linear weight, transposed on the host to burn's `[in, out]`.
    pub fn linear_weight(
        &self,
        name: &str,
        out_dim: usize,
        in_dim: usize,
    ) -> Result<Tensor<2>, VlmError> {
        let values = self.read_f32(name, &[out_dim, in_dim])?;
        let mut t = vec![0f32; values.len()];
        for o in 0..out_dim {
            for i in 0..in_dim {
                t[i * out_dim + o] = values[o * in_dim + i];
            }
        }
        Ok(Tensor::from_data(
            TensorData::new(t, [in_dim, out_dim]),
            &self.device,
        ))
    }
}
