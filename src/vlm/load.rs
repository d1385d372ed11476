//! Loading a SmolVLM checkpoint from the bytes of its four files, so native file reads and
//! browser fetches share one path. Everything is parsed and checked ([`prepare`]) before a
//! single weight goes to the device, so a bad file fails fast and the memory the model will
//! take is known up front.

use burn::tensor::{Device, Tensor};
use safetensors::{Dtype, SafeTensors};

use super::chat::{self, END_OF_UTTERANCE, IMAGE_TOKEN};
use super::processor::{ProcessedImage, ProcessorConfig, pixel_tensor};
use super::tokenizer::VlmTokenizer;
use super::{Idefics3, Idefics3Config, VlmError, WeightPrecision};
use crate::chat::Message;
use crate::frames::RgbImage;

pub const CONFIG_FILE: &str = "config.json";
pub const MODEL_FILE: &str = "model.safetensors";
pub const TOKENIZER_FILE: &str = "tokenizer.json";
pub const PREPROCESSOR_FILE: &str = "preprocessor_config.json";
/// The files [`prepare`] reads, in fetch order.
pub const FILES: [&str; 4] = [CONFIG_FILE, TOKENIZER_FILE, PREPROCESSOR_FILE, MODEL_FILE];

/// The raw files. `preprocessor` may be absent (SmolVLM defaults are used); the others may not.
#[derive(Default, Clone)]
pub struct VlmFiles {
    pub config: Option<Vec<u8>>,
    pub model: Option<Vec<u8>>,
    pub tokenizer: Option<Vec<u8>>,
    pub preprocessor: Option<Vec<u8>>,
}

impl VlmFiles {
    /// Reads the files from a local folder; a missing optional file is `None`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir(dir: &std::path::Path) -> Result<Self, VlmError> {
        let read = |name: &str| -> Result<Option<Vec<u8>>, VlmError> {
            let path = dir.join(name);
            match std::fs::read(&path) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(VlmError::Io {
                    path: path.display().to_string(),
                    message: e.to_string(),
                }),
            }
        };
        Ok(Self {
            config: read(CONFIG_FILE)?,
            model: read(MODEL_FILE)?,
            tokenizer: read(TOKENIZER_FILE)?,
            preprocessor: read(PREPROCESSOR_FILE)?,
        })
    }
}

/// How much memory the weights take.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryEstimate {
    pub parameters: u64,
    /// The checkpoint's dtype (the widest one in the file).
    pub file_dtype: String,
    pub file_bytes: u64,
    /// Weights on the device: everything in f32 (the default), or with the linear layers'
    /// matrices in f16 after [`Prepared::upload_with`].
    pub device_bytes: u64,
}

impl MemoryEstimate {
    pub fn new(parameters: u64, file_dtype: &str, file_bytes_per_param: u64) -> Self {
        Self {
            parameters,
            file_dtype: file_dtype.into(),
            file_bytes: parameters * file_bytes_per_param,
            device_bytes: parameters * 4,
        }
    }
}

/// `1.23 GB`-style size.
pub fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.1} kB", b / 1e3)
    }
}

/// Parsed, checked files, not yet on a device.
pub struct Prepared {
    pub config: Idefics3Config,
    pub tokenizer: VlmTokenizer,
    pub processor: ProcessorConfig,
    pub memory: MemoryEstimate,
    model_bytes: Vec<u8>,
}

fn required(file: Option<Vec<u8>>, name: &str) -> Result<Vec<u8>, VlmError> {
    file.ok_or_else(|| VlmError::MissingFile(name.into()))
}

fn utf8(bytes: &[u8], name: &str) -> Result<String, VlmError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| VlmError::Config(format!("{name} is not UTF-8")))
}

/// Parses and cross-checks the files and estimates the memory; reads no tensor data.
pub fn prepare(files: VlmFiles) -> Result<Prepared, VlmError> {
    let config =
        Idefics3Config::from_json(&utf8(&required(files.config, CONFIG_FILE)?, CONFIG_FILE)?)?;
    let dims = config.dims()?;
    let processor = match files.preprocessor {
        Some(b) => ProcessorConfig::from_json(&utf8(&b, PREPROCESSOR_FILE)?)?,
        None => ProcessorConfig::default(),
    };
    if processor.tile_size() != dims.image_size {
        return Err(VlmError::Config(format!(
            "{PREPROCESSOR_FILE}: max_image_size.longest_edge ({}) differs from the vision encoder's image_size ({})",
            processor.tile_size(),
            dims.image_size
        )));
    }
    let mut tokenizer = VlmTokenizer::from_bytes(&required(files.tokenizer, TOKENIZER_FILE)?)?;
    tokenizer.add_smolvlm_tokens()?;
    let image_id = tokenizer.token_id(IMAGE_TOKEN);
    if image_id != Some(config.image_token_id) {
        let found = image_id.map_or("missing".to_string(), |id| format!("id {id}"));
        return Err(VlmError::Config(format!(
            "{TOKENIZER_FILE} does not fit the model: its {IMAGE_TOKEN} token is {found} but {CONFIG_FILE} says image_token_id {}",
            config.image_token_id
        )));
    }

    let model_bytes = required(files.model, MODEL_FILE)?;
    let st = SafeTensors::deserialize(&model_bytes)
        .map_err(|e| VlmError::SafeTensors(format!("{MODEL_FILE}: {e}")))?;
    let mut widest: Option<(Dtype, u64)> = None;
    for (name, view) in st.tensors() {
        let size = match view.dtype() {
            Dtype::F32 => 4,
            Dtype::F16 | Dtype::BF16 => 2,
            other => {
                return Err(VlmError::Dtype {
                    name,
                    dtype: format!("{other:?}"),
                });
            }
        };
        if widest.is_none_or(|(_, s)| size > s) {
            widest = Some((view.dtype(), size));
        }
    }
    let (dtype, size) =
        widest.ok_or_else(|| VlmError::SafeTensors(format!("{MODEL_FILE} holds no tensors")))?;
    let memory = MemoryEstimate::new(dims.parameter_count(), &format!("{dtype:?}"), size);
    drop(st);
    Ok(Prepared {
        config,
        tokenizer,
        processor,
        memory,
        model_bytes,
    })
}

/// A model ready to run, with what it needs to turn chat messages into inputs.
pub struct LocalModel {
    pub config: Idefics3Config,
    pub model: Idefics3,
    pub tokenizer: VlmTokenizer,
    pub processor: ProcessorConfig,
    pub memory: MemoryEstimate,
    /// Config EOS ids plus `<end_of_utterance>`.
    pub stop_tokens: Vec<u32>,
}

impl Prepared {
    /// The checked `model.safetensors` bytes (the browser stores them in its cache).
    pub fn model_bytes(&self) -> &[u8] {
        &self.model_bytes
    }

    /// Uploads the weights. Natively a panic from the device (e.g. an allocation that fails)
    /// becomes [`VlmError::Allocation`] naming the size; on wasm32 panics abort, so the caller
    /// must check the estimate against what the device allows first.
    pub fn upload(self, device: &Device) -> Result<LocalModel, VlmError> {
        self.upload_with(device, WeightPrecision::F32)
    }

    /// [`Self::upload`] with the linear layers' matrices held in `precision`
    /// (`memory.device_bytes` then counts them at that size).
    pub fn upload_with(
        self,
        device: &Device,
        precision: WeightPrecision,
    ) -> Result<LocalModel, VlmError> {
        let Prepared {
            config,
            tokenizer,
            processor,
            mut memory,
            model_bytes,
        } = self;
        let matrices = config.dims()?.matrix_parameter_count();
        match precision {
            WeightPrecision::F32 => {}
            WeightPrecision::F16 => memory.device_bytes -= 2 * matrices,
            // 1 byte per weight plus a 4-byte scale per 32.
            WeightPrecision::Q8 => memory.device_bytes -= matrices * 4 - matrices * 9 / 8,
        }
        let model = guard_allocation(memory.device_bytes, || {
            Idefics3::load_with(&config, &model_bytes, device, precision)
        })?;
        let mut stop_tokens = config.eos_token_ids();
        if let Some(id) = tokenizer.token_id(END_OF_UTTERANCE)
            && !stop_tokens.contains(&id)
        {
            stop_tokens.push(id);
        }
        Ok(LocalModel {
            config,
            model,
            tokenizer,
            processor,
            memory,
            stop_tokens,
        })
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn guard_allocation<T>(bytes: u64, f: impl FnOnce() -> Result<T, VlmError>) -> Result<T, VlmError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "device panic".into());
            Err(VlmError::Allocation { bytes, message })
        }
    }
}

#[cfg(target_arch = "wasm32")]
fn guard_allocation<T>(
    _bytes: u64,
    f: impl FnOnce() -> Result<T, VlmError>,
) -> Result<T, VlmError> {
    f()
}

/// Loads from bytes onto `device` in one step.
pub fn load_from_bytes(files: VlmFiles, device: &Device) -> Result<LocalModel, VlmError> {
    prepare(files)?.upload(device)
}

/// Token ids and pixel values for one request.
pub struct ModelInput {
    pub prompt_ids: Vec<u32>,
    pub pixel_values: Option<Tensor<4>>,
    pub images: Vec<ProcessedImage>,
}

impl LocalModel {
    /// Chat template → image processing → expansion → token ids.
    pub fn prepare_input(
        &self,
        messages: &[Message],
        images: &[RgbImage],
    ) -> Result<ModelInput, VlmError> {
        let text = chat::apply_chat_template(messages, true);
        let processed = images
            .iter()
            .map(|i| self.processor.process(i))
            .collect::<Result<Vec<_>, _>>()?;
        let seq_len = self.model.dims().tokens_per_image();
        let text = chat::expand_images(&text, &processed, seq_len)?;
        let prompt_ids = self.tokenizer.encode(&text, true)?;
        let pixel_values = pixel_tensor(&processed, &self.model.device());
        Ok(ModelInput {
            prompt_ids,
            pixel_values,
            images: processed,
        })
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn a_device_panic_becomes_an_error_naming_the_size() {
        let r: Result<(), VlmError> = guard_allocation(1_030_000_000, || {
            panic!("Out of memory: buffer allocation failed")
        });
        let e = r.unwrap_err();
        let text = e.to_string();
        assert!(matches!(
            e,
            VlmError::Allocation {
                bytes: 1_030_000_000,
                ..
            }
        ));
        assert!(
            text.contains("1.03 GB") && text.contains("Out of memory"),
            "{text}"
        );
    }
}
