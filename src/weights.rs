//! Loader for TensorFlow.js weight manifests (`*-weights_manifest.json` + binary shards), the
//! format face-api.js ships its models in.
//!
//! A manifest is a list of groups; each group names its shard files and the tensors stored in
//! them back to back. Tensors are float32, or quantised (`uint8`/`uint16`: value = q·scale + min,
//! `float16`). Every shape and byte count is checked, so a truncated or mismatched file gives an
//! error that names the file and tensor instead of garbage weights.

use std::collections::HashMap;

use serde::Deserialize;

/// What can go wrong while reading model weights.
#[derive(Debug, thiserror::Error)]
pub enum WeightError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("weights manifest {path} is not valid: {reason}")]
    Manifest { path: String, reason: String },
    #[error(
        "weight file {path} is truncated or mismatched: the manifest needs {expected} bytes, the file has {actual}"
    )]
    ByteCount {
        path: String,
        expected: usize,
        actual: usize,
    },
    #[error("tensor `{name}` has an unsupported dtype `{dtype}`")]
    Dtype { name: String, dtype: String },
    #[error("model `{model}` lacks tensor `{name}`")]
    Missing { model: String, name: String },
    #[error("tensor `{name}` of model `{model}` has shape {actual:?}, expected {expected:?}")]
    Shape {
        model: String,
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
}

#[derive(Debug, Clone, Deserialize)]
struct ManifestGroup {
    paths: Vec<String>,
    weights: Vec<TensorEntry>,
}

#[derive(Debug, Clone, Deserialize)]
struct TensorEntry {
    name: String,
    shape: Vec<usize>,
    dtype: String,
    #[serde(default)]
    quantization: Option<Quantization>,
}

#[derive(Debug, Clone, Deserialize)]
struct Quantization {
    dtype: String,
    #[serde(default)]
    scale: f64,
    #[serde(default)]
    min: f64,
}

impl TensorEntry {
    /// How the values are stored: bytes per value and how to turn them into f32.
    fn storage(&self) -> Result<Storage, WeightError> {
        let unsupported = |dtype: &str| WeightError::Dtype {
            name: self.name.clone(),
            dtype: dtype.to_string(),
        };
        if self.dtype != "float32" {
            return Err(unsupported(&self.dtype));
        }
        Ok(match &self.quantization {
            None => Storage::F32,
            Some(q) => match q.dtype.as_str() {
                "uint8" => Storage::Affine {
                    bytes: 1,
                    scale: q.scale,
                    min: q.min,
                },
                "uint16" => Storage::Affine {
                    bytes: 2,
                    scale: q.scale,
                    min: q.min,
                },
                "float16" => Storage::F16,
                other => return Err(unsupported(&format!("quantised {other}"))),
            },
        })
    }
}

impl TensorEntry {
    /// Bytes the tensor takes in its shard; an error when the shape's product overflows.
    fn byte_len(&self) -> Result<usize, String> {
        let per_value = self.storage().map(|s| s.bytes_per_value()).unwrap_or(4);
        self.shape
            .iter()
            .try_fold(per_value, |n, &d| n.checked_mul(d))
            .ok_or_else(|| {
                format!(
                    "tensor `{}` has shape {:?}, too large to address",
                    self.name, self.shape
                )
            })
    }
}

/// A shard path that stays inside the manifest's folder: relative, no `..`, no scheme or drive,
/// no backslashes, not empty.
fn is_plain_shard_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains(':')
        && !path.contains('\0')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

enum Storage {
    F32,
    F16,
    Affine { bytes: usize, scale: f64, min: f64 },
}

impl Storage {
    fn bytes_per_value(&self) -> usize {
        match self {
            Storage::F32 => 4,
            Storage::F16 => 2,
            Storage::Affine { bytes, .. } => *bytes,
        }
    }

    fn decode(&self, raw: &[u8]) -> Vec<f32> {
        match self {
            Storage::F32 => raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Storage::F16 => raw
                .chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            // tfjs dequantises in double precision and stores float32: do the same.
            Storage::Affine {
                bytes: 1,
                scale,
                min,
            } => raw
                .iter()
                .map(|&q| (q as f64 * scale + min) as f32)
                .collect(),
            Storage::Affine { scale, min, .. } => raw
                .chunks_exact(2)
                .map(|b| (u16::from_le_bytes([b[0], b[1]]) as f64 * scale + min) as f32)
                .collect(),
        }
    }
}

fn f16_to_f32(bits: u16) -> f32 {
    let sign = ((bits >> 15) as u32) << 31;
    let exponent = ((bits >> 10) & 0x1f) as i32;
    let mantissa = (bits & 0x3ff) as u32;
    let magnitude = match exponent {
        0 => (mantissa as f32) * 2f32.powi(-24),
        31 if mantissa == 0 => f32::INFINITY,
        31 => f32::NAN,
        e => f32::from_bits((((e - 15 + 127) as u32) << 23) | (mantissa << 13)),
    };
    f32::from_bits(magnitude.to_bits() | sign)
}

/// A parsed manifest: which shard files to fetch and how to cut them into tensors.
#[derive(Debug, Clone)]
pub struct Manifest {
    model: String,
    groups: Vec<ManifestGroup>,
}

impl Manifest {
    /// Parses `manifest_json`; `model` names the model in error messages.
    pub fn parse(model: &str, manifest_json: &str) -> Result<Self, WeightError> {
        let groups: Vec<ManifestGroup> =
            serde_json::from_str(manifest_json).map_err(|e| WeightError::Manifest {
                path: model.to_string(),
                reason: e.to_string(),
            })?;
        let invalid = |reason: String| WeightError::Manifest {
            path: model.to_string(),
            reason,
        };
        if groups.iter().any(|g| g.paths.is_empty()) {
            return Err(invalid("a weight group lists no shard files".into()));
        }
        // Shards live next to the manifest: a path that leaves that folder (absolute, `..`,
        // a device such as /dev/zero, a URL) is refused before anything is read.
        for path in groups.iter().flat_map(|g| &g.paths) {
            if !is_plain_shard_path(path) {
                return Err(invalid(format!(
                    "shard path {path:?} must be a relative file name inside the manifest's folder"
                )));
            }
        }
        for entry in groups.iter().flat_map(|g| &g.weights) {
            entry.byte_len().map_err(invalid)?;
        }
        Ok(Self {
            model: model.to_string(),
            groups,
        })
    }

    /// The shard files, relative to the manifest's folder, in the order [`Self::decode`] wants them.
    pub fn shard_paths(&self) -> Vec<String> {
        self.groups
            .iter()
            .flat_map(|g| g.paths.iter().cloned())
            .collect()
    }

    /// Bytes all shards hold together when they match the manifest (sizes checked in `parse`,
    /// saturating at `usize::MAX`): a larger file is refused before it is read whole.
    pub fn total_bytes(&self) -> usize {
        self.groups
            .iter()
            .flat_map(|g| &g.weights)
            .map(|e| e.byte_len().unwrap_or(usize::MAX))
            .fold(0usize, usize::saturating_add)
    }

    /// Cuts the shard bytes (one buffer per [`Self::shard_paths`] entry) into named f32 tensors.
    pub fn decode(&self, shards: &[Vec<u8>]) -> Result<WeightMap, WeightError> {
        let expected_shards = self.shard_paths().len();
        if shards.len() != expected_shards {
            return Err(WeightError::Manifest {
                path: self.model.clone(),
                reason: format!(
                    "expected {expected_shards} shard files, got {}",
                    shards.len()
                ),
            });
        }
        let mut tensors = HashMap::new();
        let mut shard_iter = shards.iter();
        for group in &self.groups {
            // Shards of one group form one contiguous buffer.
            let group_shards: Vec<&Vec<u8>> = shard_iter.by_ref().take(group.paths.len()).collect();
            let bytes: Vec<u8> = group_shards
                .iter()
                .flat_map(|s| s.iter().copied())
                .collect();
            let mut needed = 0usize;
            for entry in &group.weights {
                entry.storage()?;
                needed = entry
                    .byte_len()
                    .ok()
                    .and_then(|n| needed.checked_add(n))
                    .ok_or_else(|| WeightError::Manifest {
                        path: self.model.clone(),
                        reason: "the tensors' sizes overflow".into(),
                    })?;
            }
            if bytes.len() != needed {
                return Err(WeightError::ByteCount {
                    path: group.paths.join(", "),
                    expected: needed,
                    actual: bytes.len(),
                });
            }
            let mut offset = 0;
            for entry in &group.weights {
                let storage = entry.storage()?;
                // Checked above: every size fits and they add up to the buffer's length.
                let len = entry.byte_len().expect("checked in parse");
                let values = storage.decode(&bytes[offset..offset + len]);
                offset += len;
                tensors.insert(
                    entry.name.clone(),
                    WeightTensor {
                        shape: entry.shape.clone(),
                        values,
                    },
                );
            }
        }
        Ok(WeightMap {
            model: self.model.clone(),
            tensors,
        })
    }
}

/// One decoded tensor: shape as stored by TensorFlow (e.g. `[kh, kw, in, out]`), row-major values.
#[derive(Debug, Clone)]
pub struct WeightTensor {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// Named tensors of one model.
#[derive(Debug, Clone)]
pub struct WeightMap {
    model: String,
    tensors: HashMap<String, WeightTensor>,
}

impl WeightMap {
    /// The tensor `name`, which must have exactly `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<&WeightTensor, WeightError> {
        let tensor = self.tensors.get(name).ok_or_else(|| WeightError::Missing {
            model: self.model.clone(),
            name: name.to_string(),
        })?;
        if tensor.shape != shape {
            return Err(WeightError::Shape {
                model: self.model.clone(),
                name: name.to_string(),
                expected: shape.to_vec(),
                actual: tensor.shape.clone(),
            });
        }
        Ok(tensor)
    }

    pub fn model(&self) -> &str {
        &self.model
    }
}

/// Reads `DIR/{model}-weights_manifest.json` and its shards from disk.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_from_dir(dir: &std::path::Path, model: &str) -> Result<WeightMap, WeightError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| WeightError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    };
    let manifest_path = dir.join(format!("{model}-weights_manifest.json"));
    let manifest_bytes = read(&manifest_path)?;
    let manifest_text = String::from_utf8(manifest_bytes).map_err(|e| WeightError::Manifest {
        path: manifest_path.display().to_string(),
        reason: e.to_string(),
    })?;
    let manifest = Manifest::parse(model, &manifest_text)?;
    let limit = manifest.total_bytes();
    let shards = manifest
        .shard_paths()
        .iter()
        .map(|p| {
            let path = dir.join(p);
            // Only regular files, and none larger than the manifest allows.
            match std::fs::metadata(&path) {
                Ok(m) if !m.is_file() => Err(WeightError::Read {
                    path: path.display().to_string(),
                    reason: "not a regular file".into(),
                }),
                Ok(m) if m.len() > limit as u64 => Err(WeightError::ByteCount {
                    path: path.display().to_string(),
                    expected: limit,
                    actual: usize::try_from(m.len()).unwrap_or(usize::MAX),
                }),
                _ => read(&path),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    manifest.decode(&shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(paths: &str, shape: &str) -> String {
        format!(
            r#"[{{"paths": {paths}, "weights": [{{"name": "w", "shape": {shape}, "dtype": "float32"}}]}}]"#
        )
    }

    #[test]
    fn overflowing_shapes_and_escaping_paths_are_refused() {
        let big = format!("[{}, {}, 4]", usize::MAX / 2, usize::MAX / 3);
        let e = Manifest::parse("m", &manifest(r#"["a.bin"]"#, &big)).unwrap_err();
        assert!(e.to_string().contains("too large"), "{e}");
        for bad in [
            "/dev/zero",
            "../x.bin",
            "a/../../b",
            "C:\\w",
            "http://h/w",
            "",
            "a//b",
        ] {
            let e = Manifest::parse("m", &manifest(&format!("[{bad:?}]"), "[1]")).unwrap_err();
            assert!(e.to_string().contains("relative file name"), "{bad}: {e}");
        }
        let m = Manifest::parse("m", &manifest(r#"["sub/a.bin"]"#, "[2]")).unwrap();
        assert_eq!(m.total_bytes(), 8);
        assert!(m.decode(&[vec![0; 8]]).is_ok());
        assert!(matches!(
            m.decode(&[vec![0; 9]]),
            Err(WeightError::ByteCount { .. })
        ));
    }

    #[test]
    fn half_floats_decode() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert!(f16_to_f32(0x7c00).is_infinite());
    }
}
