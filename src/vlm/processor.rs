//! SmolVLM / Idefics3 image processing, following transformers' (slow, PIL-based)
//! `Idefics3ImageProcessor`:
//!
//! 1. resize so the longest edge is `size.longest_edge` (small images are scaled *up*),
//!    the other edge rounded up to even;
//! 2. resize both edges up to multiples of `max_image_size.longest_edge` (aspect ratio only
//!    approximately kept, exactly as transformers does);
//! 3. cut into `rows × cols` tiles of that size, then append the whole image squashed to one tile
//!    (the "global" image); an image that already fits one tile is only the global image;
//! 4. rescale by `rescale_factor` and normalise with `image_mean` / `image_std`, channel-first.
//!
//! Resampling: transformers uses PIL's LANCZOS on `uint8` (horizontal pass then vertical, with a
//! rounded 8-bit intermediate). We use the `image` crate's Lanczos3, which also widens the kernel
//! when downscaling but runs vertical-first in f32 and rounds once. The difference should be
//! rounding-sized (a level or two out of 255, ≤ 0.016 after normalisation) — not yet measured
//! against PIL here; the tile layout and every size are identical. (transformers' *fast*
//! processor, torchvision-based, has no Lanczos at all and differs more.)

use image::imageops::{self, FilterType};
use serde::Deserialize;

use super::VlmError;
use crate::frames::RgbImage;

/// transformers' `MAX_IMAGE_SIZE` for Idefics3: an upper bound after the first resize.
const MAX_IMAGE_SIZE: usize = 4096;

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LongestEdge {
    pub longest_edge: usize,
}

/// `preprocessor_config.json`. Defaults are SmolVLM-256M/500M-Instruct's values, so a missing
/// field behaves as those checkpoints do.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProcessorConfig {
    #[serde(default = "yes")]
    pub do_resize: bool,
    #[serde(default = "default_size")]
    pub size: LongestEdge,
    #[serde(default = "default_max_image_size")]
    pub max_image_size: LongestEdge,
    #[serde(default = "yes")]
    pub do_image_splitting: bool,
    #[serde(default = "yes")]
    pub do_rescale: bool,
    #[serde(default = "default_rescale")]
    pub rescale_factor: f64,
    #[serde(default = "yes")]
    pub do_normalize: bool,
    #[serde(default = "default_half")]
    pub image_mean: [f64; 3],
    #[serde(default = "default_half")]
    pub image_std: [f64; 3],
}

fn yes() -> bool {
    true
}
fn default_size() -> LongestEdge {
    LongestEdge { longest_edge: 2048 }
}
fn default_max_image_size() -> LongestEdge {
    LongestEdge { longest_edge: 512 }
}
fn default_rescale() -> f64 {
    1.0 / 255.0
}
fn default_half() -> [f64; 3] {
    [0.5; 3]
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("all fields have defaults")
    }
}

impl ProcessorConfig {
    pub fn from_json(text: &str) -> Result<Self, VlmError> {
        let c: Self = serde_json::from_str(text)
            .map_err(|e| VlmError::Config(format!("preprocessor_config.json: {e}")))?;
        if c.max_image_size.longest_edge == 0 || c.size.longest_edge == 0 {
            return Err(VlmError::Config(
                "preprocessor_config.json: longest_edge must be > 0".into(),
            ));
        }
        if c.image_std.contains(&0.0) {
            return Err(VlmError::Config(
                "preprocessor_config.json: image_std must be non-zero".into(),
            ));
        }
        Ok(c)
    }

    pub fn tile_size(&self) -> usize {
        self.max_image_size.longest_edge
    }

    /// Size after step 1 (`height, width`): longest edge to `size.longest_edge`, the other edge
    /// truncated then rounded up to even, then capped at [`MAX_IMAGE_SIZE`].
    pub fn resized_size(&self, height: usize, width: usize) -> (usize, usize) {
        if !self.do_resize {
            return (height, width);
        }
        let max_len = self.size.longest_edge;
        let aspect = width as f64 / height as f64;
        let (mut h, mut w);
        if width >= height {
            w = max_len;
            h = (w as f64 / aspect) as usize;
            if h % 2 != 0 {
                h += 1;
            }
        } else {
            h = max_len;
            w = (h as f64 * aspect) as usize;
            if w % 2 != 0 {
                w += 1;
            }
        }
        (h, w) = (h.max(1), w.max(1));
        let aspect = w as f64 / h as f64;
        if w >= h && w > MAX_IMAGE_SIZE {
            w = MAX_IMAGE_SIZE;
            h = (w as f64 / aspect) as usize;
        } else if h > w && h > MAX_IMAGE_SIZE {
            h = MAX_IMAGE_SIZE;
            w = (h as f64 * aspect) as usize;
        }
        (h.max(1), w.max(1))
    }

    /// Size after step 2: both edges up to multiples of the tile size.
    pub fn tiled_size(&self, height: usize, width: usize) -> (usize, usize) {
        let t = self.tile_size();
        let up = |x: usize| x.div_ceil(t) * t;
        let aspect = width as f64 / height as f64;
        if width >= height {
            let w = up(width);
            (up((w as f64 / aspect) as usize), w)
        } else {
            let h = up(height);
            (h, up((h as f64 * aspect) as usize))
        }
    }

    /// Tile rows and columns an image of this size is split into (0, 0: global image only).
    pub fn grid(&self, height: usize, width: usize) -> (usize, usize) {
        if !self.do_image_splitting {
            return (0, 0);
        }
        let (h, w) = self.resized_size(height, width);
        let (h, w) = self.tiled_size(h, w);
        let t = self.tile_size();
        if h > t || w > t {
            (h.div_ceil(t), w.div_ceil(t))
        } else {
            (0, 0)
        }
    }

    /// Processes one RGB image into its tiles (row-major) followed by the global image.
    pub fn process(&self, image: &RgbImage) -> Result<ProcessedImage, VlmError> {
        if image.width == 0
            || image.height == 0
            || image.data.len() != image.width * image.height * 3
        {
            return Err(VlmError::Input(format!(
                "image is {}x{} with {} bytes",
                image.width,
                image.height,
                image.data.len()
            )));
        }
        let img =
            image::RgbImage::from_raw(image.width as u32, image.height as u32, image.data.clone())
                .expect("length checked above");
        let t = self.tile_size();
        let resize = |img: &image::RgbImage, h: usize, w: usize| {
            if img.height() as usize == h && img.width() as usize == w {
                img.clone()
            } else {
                imageops::resize(img, w as u32, h as u32, FilterType::Lanczos3)
            }
        };

        let mut tiles = Vec::new();
        let (rows, cols);
        if self.do_image_splitting {
            let (h, w) = self.resized_size(image.height, image.width);
            let img = resize(&img, h, w);
            let (h, w) = self.tiled_size(h, w);
            let img = resize(&img, h, w);
            if h > t || w > t {
                (rows, cols) = (h.div_ceil(t), w.div_ceil(t));
                // Tiles are exactly `t` here because both edges are multiples of it.
                let (th, tw) = (h.div_ceil(rows), w.div_ceil(cols));
                for r in 0..rows {
                    for c in 0..cols {
                        let (x, y) = (c * tw, r * th);
                        let (cw, ch) = (tw.min(w - x), th.min(h - y));
                        tiles.push(
                            imageops::crop_imm(&img, x as u32, y as u32, cw as u32, ch as u32)
                                .to_image(),
                        );
                    }
                }
                tiles.push(resize(&img, t, t));
            } else {
                (rows, cols) = (0, 0);
                tiles.push(resize(&img, t, t));
            }
        } else {
            (rows, cols) = (0, 0);
            tiles.push(resize(&img, t, t));
        }

        let mut pixel_values = Vec::with_capacity(tiles.len() * 3 * t * t);
        for tile in &tiles {
            if tile.width() as usize != t || tile.height() as usize != t {
                return Err(VlmError::Input(format!(
                    "internal: tile is {}x{}, expected {t}x{t}",
                    tile.width(),
                    tile.height()
                )));
            }
            pixel_values.extend(self.normalize(tile));
        }
        Ok(ProcessedImage {
            pixel_values,
            tiles: tiles.len(),
            tile_size: t,
            rows,
            cols,
        })
    }

    /// Channel-first f32: (x · rescale − mean) / std per channel.
    fn normalize(&self, tile: &image::RgbImage) -> Vec<f32> {
        let n = (tile.width() * tile.height()) as usize;
        let mut out = vec![0f32; 3 * n];
        for (i, p) in tile.pixels().enumerate() {
            for c in 0..3 {
                let mut v = p.0[c] as f64;
                if self.do_rescale {
                    v *= self.rescale_factor;
                }
                if self.do_normalize {
                    v = (v - self.image_mean[c]) / self.image_std[c];
                }
                out[c * n + i] = v as f32;
            }
        }
        out
    }
}

/// One image after processing: `tiles` channel-first tiles of `tile_size²`, the global image last.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessedImage {
    /// `[tiles, 3, tile_size, tile_size]`, row-major.
    pub pixel_values: Vec<f32>,
    pub tiles: usize,
    pub tile_size: usize,
    /// Tile grid; `(0, 0)` when the image was not split.
    pub rows: usize,
    pub cols: usize,
}

/// Stacks processed images into one `[tiles, 3, t, t]` tensor in prompt order.
pub fn pixel_tensor(
    images: &[ProcessedImage],
    device: &burn::tensor::Device,
) -> Option<burn::tensor::Tensor<4>> {
    let first = images.first()?;
    let t = first.tile_size;
    let tiles: usize = images.iter().map(|i| i.tiles).sum();
    let values: Vec<f32> = images
        .iter()
        .flat_map(|i| i.pixel_values.iter().copied())
        .collect();
    Some(burn::tensor::Tensor::from_data(
        burn::tensor::TensorData::new(values, [tiles, 3, t, t]),
        device,
    ))
}
