//! Pixels in: decoded frames and the exact resampling the face networks expect.
//!
//! The face-api.js networks were trained on inputs made by tfjs: the image (or a face crop) is
//! padded with black to a square and resized with tfjs' legacy bilinear rule (no half-pixel
//! centres, no corner alignment). We reproduce that on the CPU, in one pass, so the native and
//! browser builds feed the networks identical numbers whatever GPU runs them.

/// An 8-bit RGB frame, row-major, 3 bytes per pixel.
#[derive(Debug, Clone, PartialEq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

/// What can go wrong with input pixels.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("cannot decode image: {0}")]
    Decode(String),
    #[error("image is empty ({width}x{height})")]
    Empty { width: usize, height: usize },
    #[error(
        "pixel buffer has {actual} bytes, a {width}x{height} image with {channels} channels needs {expected}"
    )]
    BufferSize {
        width: usize,
        height: usize,
        channels: usize,
        expected: usize,
        actual: usize,
    },
}

impl RgbImage {
    pub fn new(width: usize, height: usize, data: Vec<u8>) -> Result<Self, FrameError> {
        check_buffer(width, height, 3, data.len())?;
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// From RGBA bytes (canvas `ImageData`): alpha is dropped, not composited, as face-api does.
    pub fn from_rgba(width: usize, height: usize, rgba: &[u8]) -> Result<Self, FrameError> {
        check_buffer(width, height, 4, rgba.len())?;
        let data = rgba
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// Decodes JPEG or PNG bytes (grey, RGB, RGBA, 8 or 16 bit).
    pub fn decode(bytes: &[u8]) -> Result<Self, FrameError> {
        let decoded =
            image::load_from_memory(bytes).map_err(|e| FrameError::Decode(e.to_string()))?;
        let rgb = decoded.to_rgb8();
        Self::new(rgb.width() as usize, rgb.height() as usize, rgb.into_raw())
    }

    fn pixel(&self, x: usize, y: usize, channel: usize) -> u8 {
        self.data[(y * self.width + x) * 3 + channel]
    }
}

fn check_buffer(
    width: usize,
    height: usize,
    channels: usize,
    actual: usize,
) -> Result<(), FrameError> {
    if width == 0 || height == 0 {
        return Err(FrameError::Empty { width, height });
    }
    // Saturating: a declared size past usize can never match a real buffer.
    let expected = width.saturating_mul(height).saturating_mul(channels);
    if actual != expected {
        return Err(FrameError::BufferSize {
            width,
            height,
            channels,
            expected,
            actual,
        });
    }
    Ok(())
}

/// An integer pixel rectangle inside an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelRect {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
}

impl PixelRect {
    pub fn whole(image: &RgbImage) -> Self {
        Self {
            x: 0,
            y: 0,
            width: image.width,
            height: image.height,
        }
    }
}

/// Where a non-square region goes inside its square canvas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SquarePadding {
    /// Region at the top-left, black added right or below (the detector's input).
    TopLeft,
    /// Region centred (the landmark and expression networks' input).
    Centered,
}

/// The square canvas side and the region's offset in it, exactly as tfjs' `padToSquare` lays it out.
pub fn square_layout(width: usize, height: usize, padding: SquarePadding) -> (usize, usize, usize) {
    let side = width.max(height);
    let diff = side - width.min(height);
    let before = match padding {
        SquarePadding::TopLeft => 0,
        // padToSquare appends round(diff / 2) (JS rounds halves up) and prepends the rest.
        SquarePadding::Centered => diff - diff.div_ceil(2),
    };
    if height > width {
        (side, before, 0)
    } else {
        (side, 0, before)
    }
}

/// Crops `rect`, pads it to a square with black and resizes to `size`×`size` with tfjs' legacy
/// bilinear rule. Output: HWC floats, each channel minus `mean` and divided by `divisor`
/// (the networks' normalisation, in the same f32 order as tfjs).
pub fn square_input(
    image: &RgbImage,
    rect: PixelRect,
    padding: SquarePadding,
    size: usize,
    mean: [f32; 3],
    divisor: f32,
) -> Vec<f32> {
    let (side, offset_x, offset_y) = square_layout(rect.width, rect.height, padding);
    let canvas = SquareCanvas {
        side,
        offset_x,
        offset_y,
    };
    canvas_input(image, rect, canvas, size, mean, divisor)
}

/// A black square of side `side` with the region's top-left corner at (`offset_x`, `offset_y`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SquareCanvas {
    pub side: usize,
    pub offset_x: usize,
    pub offset_y: usize,
}

/// Like [`square_input`], for any placement of the region on a black square canvas (used to
/// show the detector a zoomed-out view of the frame).
pub fn canvas_input(
    image: &RgbImage,
    rect: PixelRect,
    canvas: SquareCanvas,
    size: usize,
    mean: [f32; 3],
    divisor: f32,
) -> Vec<f32> {
    let SquareCanvas {
        side,
        offset_x,
        offset_y,
    } = canvas;
    // Value of the canvas at integer coordinates (black outside the region).
    let sample = |sx: usize, sy: usize, c: usize| -> f32 {
        if sx < offset_x
            || sy < offset_y
            || sx - offset_x >= rect.width
            || sy - offset_y >= rect.height
        {
            0.0
        } else {
            image.pixel(rect.x + sx - offset_x, rect.y + sy - offset_y, c) as f32
        }
    };
    let ratio = side as f32 / size as f32;
    let mut out = Vec::with_capacity(size * size * 3);
    for r in 0..size {
        let src_y = ratio * r as f32;
        let y0 = src_y.floor() as usize;
        let y1 = (src_y.ceil() as usize).min(side - 1);
        let fy = src_y - y0 as f32;
        for col in 0..size {
            let src_x = ratio * col as f32;
            let x0 = src_x.floor() as usize;
            let x1 = (src_x.ceil() as usize).min(side - 1);
            let fx = src_x - x0 as f32;
            for (c, m) in mean.iter().enumerate() {
                let top_left = sample(x0, y0, c);
                let top = top_left + (sample(x1, y0, c) - top_left) * fx;
                let bottom_left = sample(x0, y1, c);
                let bottom = bottom_left + (sample(x1, y1, c) - bottom_left) * fx;
                let value = top + (bottom - top) * fy;
                out.push((value - m) / divisor);
            }
        }
    }
    out
}

/// Reads an image file (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn read_image(path: &std::path::Path) -> Result<RgbImage, FrameError> {
    let bytes =
        std::fs::read(path).map_err(|e| FrameError::Decode(format!("{}: {e}", path.display())))?;
    RgbImage::decode(&bytes).map_err(|e| match e {
        FrameError::Decode(reason) => FrameError::Decode(format!("{}: {reason}", path.display())),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centred_padding_matches_pad_to_square() {
        // width 10, height 7: diff 3, round(1.5) = 2 appended, 1 prepended.
        assert_eq!(square_layout(10, 7, SquarePadding::Centered), (10, 0, 1));
        assert_eq!(square_layout(7, 10, SquarePadding::Centered), (10, 1, 0));
        assert_eq!(square_layout(7, 10, SquarePadding::TopLeft), (10, 0, 0));
    }

    #[test]
    fn identity_resize_keeps_pixels() {
        let image = RgbImage::new(2, 2, (0..12).collect()).unwrap();
        let out = square_input(
            &image,
            PixelRect::whole(&image),
            SquarePadding::TopLeft,
            2,
            [0.0; 3],
            1.0,
        );
        assert_eq!(out, (0..12).map(|v| v as f32).collect::<Vec<_>>());
    }

    #[test]
    fn bad_buffers_are_errors() {
        assert!(RgbImage::new(0, 3, vec![]).is_err());
        assert!(RgbImage::from_rgba(2, 2, &[0; 15]).is_err());
        assert!(RgbImage::decode(b"not an image").is_err());
    }
}
