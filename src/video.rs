//! Video in (native only): every frame of anything ffmpeg reads, decoded by the `ffmpeg` binary
//! and streamed to us as raw RGB, one frame at a time, each with its media time.
//!
//! We shell out rather than link libav so the crate builds everywhere without C dependencies;
//! the browser decodes with its own `<video>` element instead.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};

use crate::face::{FaceAnalyzer, FaceError, FaceTracker, TrackingOptions, TrackingStats};
use crate::frames::RgbImage;
use crate::timeline::{SpotOptions, Spotting, Timeline, TimelineBuilder, TrackerOptions, spot};

#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error("no such file: {0}")]
    NotFound(PathBuf),
    #[error("`{0}` is not installed or not on PATH (emolens decodes video with ffmpeg)")]
    ToolMissing(&'static str),
    #[error("{path} is not a video ffmpeg can read: {detail}")]
    NotVideo { path: PathBuf, detail: String },
    #[error("decoding {path} failed after {frames} frame(s): {detail}")]
    Decode {
        path: PathBuf,
        frames: usize,
        detail: String,
    },
    #[error(
        "{path}: frames of {width}×{height} are {:.0} megapixels, over the {} MP that are decoded \
         (each frame is held as RGB, several at a time): lower --max-side",
        *width as f64 * *height as f64 / 1e6,
        MAX_FRAME_PIXELS / 1_000_000
    )]
    FrameTooLarge {
        path: PathBuf,
        width: usize,
        height: usize,
    },
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Longer side frames are scaled down to unless asked otherwise (`--max-side`; 0 keeps the
/// size, up to [`MAX_FRAME_PIXELS`]): 1080p passes untouched, a 16000×16000 file is not held
/// at 768 MB a frame.
pub const DEFAULT_MAX_SIDE: usize = 1920;

/// Largest decoded frame (pixels, after `--max-side`): 8K (7680×4320) fits.
pub const MAX_FRAME_PIXELS: usize = 36_000_000;

/// The path as ffmpeg's input: through its `file:` protocol, so that a name starting with `-`
/// is not read as an option, nor one with a `:` as another protocol.
fn ffmpeg_input(path: &Path) -> std::ffi::OsString {
    let mut arg = std::ffi::OsString::from("file:");
    arg.push(path.as_os_str());
    arg
}

/// What ffprobe says about the first video stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VideoInfo {
    pub codec: String,
    /// Display size (after the rotation ffmpeg applies by default).
    pub width: usize,
    pub height: usize,
    /// Average frame rate (frames per second).
    pub fps: f64,
    /// Presentation times of the frames in seconds, from the first frame, in display order; empty
    /// when the container has none (then frame times are index / fps).
    #[serde(skip)]
    pub timestamps: Vec<f64>,
    /// Frame count the container announces (may be absent or approximate).
    pub frame_count: Option<usize>,
    pub duration: Option<f64>,
    /// Whether frames can be converted to RGB exactly as Chromium draws them (see
    /// [`bt601_to_rgb`]): 8-bit 4:2:0, BT.601 or untagged matrix, limited range, not rotated.
    pub browser_exact: bool,
}

/// One decoded frame.
#[derive(Debug, Clone)]
pub struct VideoFrame {
    pub index: usize,
    /// Media time in seconds from the first frame.
    pub time: f64,
    pub image: RgbImage,
}

#[derive(Deserialize)]
struct ProbeOut {
    #[serde(default)]
    streams: Vec<ProbeStream>,
    #[serde(default)]
    packets: Vec<ProbePacket>,
}

#[derive(Deserialize)]
struct ProbeStream {
    codec_name: Option<String>,
    width: Option<usize>,
    height: Option<usize>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    nb_frames: Option<String>,
    duration: Option<String>,
    pix_fmt: Option<String>,
    color_space: Option<String>,
    color_range: Option<String>,
    #[serde(default)]
    side_data_list: Vec<serde_json::Value>,
    #[serde(default)]
    tags: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct ProbePacket {
    pts_time: Option<String>,
    flags: Option<String>,
}

fn parse_rate(rate: &str) -> Option<f64> {
    let (n, d) = rate.split_once('/').unwrap_or((rate, "1"));
    let (n, d) = (n.parse::<f64>().ok()?, d.parse::<f64>().ok()?);
    (n > 0.0 && d > 0.0).then_some(n / d)
}

fn spawn_error(tool: &'static str, e: std::io::Error) -> VideoError {
    if e.kind() == std::io::ErrorKind::NotFound {
        VideoError::ToolMissing(tool)
    } else {
        VideoError::Io(e)
    }
}

fn check_file(path: &Path) -> Result<(), VideoError> {
    if !path.is_file() {
        return Err(VideoError::NotFound(path.to_path_buf()));
    }
    Ok(())
}

/// Size, rate, codec and per-frame timestamps of the first video stream.
pub fn probe(path: &Path) -> Result<VideoInfo, VideoError> {
    check_file(path)?;
    // Packet times come from the container without decoding; sorted, they are the display
    // times of the frames that passthrough decoding emits.
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .arg("stream=codec_name,width,height,avg_frame_rate,r_frame_rate,nb_frames,duration,pix_fmt,color_space,color_range:stream_tags=rotate:stream_side_data=rotation:packet=pts_time,flags")
        .args(["-of", "json"])
        .arg(ffmpeg_input(path))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_error("ffprobe", e))?;
    let not_video = |detail: String| VideoError::NotVideo {
        path: path.to_path_buf(),
        detail,
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(not_video(
            err.trim()
                .lines()
                .last()
                .unwrap_or("ffprobe failed")
                .to_string(),
        ));
    }
    let parsed: ProbeOut = serde_json::from_slice(&out.stdout)
        .map_err(|e| not_video(format!("unreadable ffprobe output: {e}")))?;
    let stream = parsed
        .streams
        .into_iter()
        .next()
        .ok_or_else(|| not_video("no video stream".into()))?;
    let (Some(mut width), Some(mut height)) = (stream.width, stream.height) else {
        return Err(not_video("video stream has no frame size".into()));
    };
    // A still image (png, jpeg) is a one-frame "video" to ffmpeg; we do not treat it as one.
    let codec = stream.codec_name.unwrap_or_default();
    if matches!(
        codec.as_str(),
        "png" | "mjpeg" | "bmp" | "gif" | "webp" | "tiff"
    ) && parsed.packets.len() <= 1
    {
        return Err(not_video(format!("a still image ({codec}), not a video")));
    }
    let rotation = stream
        .side_data_list
        .iter()
        .filter_map(|s| s.get("rotation").and_then(|r| r.as_f64()))
        .chain(
            stream
                .tags
                .get("rotate")
                .and_then(|r| r.as_str()?.parse::<f64>().ok()),
        )
        .next()
        .unwrap_or(0.0);
    let untagged_or = |value: &Option<String>, accepted: &[&str]| {
        value
            .as_deref()
            .is_none_or(|v| v == "unknown" || accepted.contains(&v))
    };
    let browser_exact = stream.pix_fmt.as_deref() == Some("yuv420p")
        && untagged_or(&stream.color_space, &["smpte170m", "bt470bg"])
        && untagged_or(&stream.color_range, &["tv"])
        && rotation == 0.0;
    if (rotation.abs() - 90.0).abs() < 1.0 || (rotation.abs() - 270.0).abs() < 1.0 {
        std::mem::swap(&mut width, &mut height);
    }
    let fps = stream
        .avg_frame_rate
        .as_deref()
        .and_then(parse_rate)
        .or_else(|| stream.r_frame_rate.as_deref().and_then(parse_rate))
        .unwrap_or(30.0);
    // Packets flagged D (discard) are cut by an edit list: decoded but never shown, so ffmpeg
    // does not output them either.
    let mut timestamps: Vec<f64> = parsed
        .packets
        .iter()
        .filter(|p| !p.flags.as_deref().is_some_and(|f| f.contains('D')))
        .filter_map(|p| p.pts_time.as_deref()?.parse::<f64>().ok())
        .collect();
    timestamps.sort_by(f64::total_cmp);
    if let Some(&first) = timestamps.first() {
        timestamps.iter_mut().for_each(|t| *t -= first);
    }
    // The mean rate of the frames actually shown (the container's average counts discarded
    // ones too).
    let fps = match timestamps.last() {
        Some(&last) if timestamps.len() >= 2 && last > 0.0 => (timestamps.len() - 1) as f64 / last,
        _ => fps,
    };
    Ok(VideoInfo {
        codec,
        width,
        height,
        fps,
        // Shown frames; the container's count also includes discarded ones.
        frame_count: Some(timestamps.len())
            .filter(|&n| n > 0)
            .or_else(|| stream.nb_frames.and_then(|n| n.parse().ok())),
        duration: stream.duration.and_then(|d| d.parse().ok()),
        timestamps,
        browser_exact,
    })
}

/// The output size for a frame of `width`×`height` whose longer side is at most `max_side`.
pub fn scaled_size(width: usize, height: usize, max_side: Option<usize>) -> (usize, usize) {
    match max_side {
        Some(max) if max > 0 && width.max(height) > max => {
            let s = max as f64 / width.max(height) as f64;
            // Even sizes keep every scaler happy; at least 2 pixels.
            let even = |v: usize| ((((v as f64) * s / 2.0).round() as usize) * 2).max(2);
            (even(width), even(height))
        }
        _ => (width, height),
    }
}

/// Planar YUV 4:2:0 (BT.601, limited range) to RGB, bit for bit as Chromium draws a video frame
/// into a canvas: each chroma sample serves its 2×2 block, and the matrix is applied in 6-bit
/// fixed point (luma scaled through a 16-bit product). Checked against Chromium's pixels on the
/// test clips: identical.
pub fn bt601_to_rgb(planes: &[u8], width: usize, height: usize) -> Vec<u8> {
    // 1.164 · 64 scaled by 2^16/257 (luma enters as y · 0x0101), its offset for y = 16 plus
    // rounding, and the chroma terms · 64 (2.018 · 64 is held at 128).
    const Y_GAIN: i32 = 18997;
    const Y_OFFSET: i32 = -1160;
    const U_TO_B: i32 = 128;
    const U_TO_G: i32 = 25;
    const V_TO_G: i32 = 52;
    const V_TO_R: i32 = 102;
    let chroma_width = width.div_ceil(2);
    let (luma, chroma) = planes.split_at(width * height);
    let (u_plane, v_plane) = chroma.split_at(chroma_width * height.div_ceil(2));
    let to_byte = |x: i32| (x >> 6).clamp(0, 255) as u8;
    let mut rgb = Vec::with_capacity(width * height * 3);
    for row in 0..height {
        let chroma_row = (row / 2) * chroma_width;
        for col in 0..width {
            let y = i32::from(luma[row * width + col]);
            let u = i32::from(u_plane[chroma_row + col / 2]) - 128;
            let v = i32::from(v_plane[chroma_row + col / 2]) - 128;
            let y = ((y * 0x0101 * Y_GAIN) >> 16) + Y_OFFSET;
            rgb.extend_from_slice(&[
                to_byte(y + V_TO_R * v),
                to_byte(y - U_TO_G * u - V_TO_G * v),
                to_byte(y + U_TO_B * u),
            ]);
        }
    }
    rgb
}

/// Streams the frames of a video, decoded by an `ffmpeg` child process.
pub struct VideoDecoder {
    path: PathBuf,
    info: VideoInfo,
    width: usize,
    height: usize,
    child: Child,
    stdout: BufReader<ChildStdout>,
    stderr: Option<JoinHandle<String>>,
    /// Frames arrive as YUV 4:2:0 and are converted here ([`bt601_to_rgb`]), else as RGB.
    yuv: bool,
    next_index: usize,
    done: bool,
}

impl VideoDecoder {
    /// Probes and starts decoding; `max_side` downscales (keeping the aspect) for speed.
    pub fn open(path: &Path, max_side: Option<usize>) -> Result<Self, VideoError> {
        let info = probe(path)?;
        let (width, height) = scaled_size(info.width, info.height, max_side);
        if width.saturating_mul(height) > MAX_FRAME_PIXELS {
            return Err(VideoError::FrameTooLarge {
                path: path.to_path_buf(),
                width,
                height,
            });
        }
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-v", "error", "-nostdin", "-i"])
            .arg(ffmpeg_input(path))
            .args(["-map", "0:v:0", "-an", "-sn"])
            // One output frame per decoded frame: no duplicates or drops to a constant rate.
            .args(["-fps_mode", "passthrough"]);
        // Unscaled frames in the common formats are converted here, with the arithmetic
        // Chromium uses to draw a video frame, so that the browser and native analyses see the
        // same pixels; other formats, and scaled frames, are converted by ffmpeg.
        let yuv = (width, height) == (info.width, info.height) && info.browser_exact;
        if (width, height) != (info.width, info.height) {
            cmd.args(["-vf", &format!("scale={width}:{height}:flags=area")]);
        } else {
            // Closest to Chromium with ffmpeg's own scaler (chroma repeated, exact rounding):
            // within ±1 (its default is brighter by about 1.3 on average, up to 3).
            cmd.args(["-sws_flags", "neighbor+accurate_rnd+full_chroma_int"]);
        }
        let pixel_format = if yuv { "yuv420p" } else { "rgb24" };
        cmd.args(["-f", "rawvideo", "-pix_fmt", pixel_format, "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| spawn_error("ffmpeg", e))?;
        let stdout = BufReader::with_capacity(1 << 20, child.stdout.take().expect("piped"));
        // Drain stderr on a thread so a chatty ffmpeg can never block on a full pipe.
        let mut err_pipe = child.stderr.take().expect("piped");
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err_pipe.read_to_string(&mut s);
            s
        });
        Ok(Self {
            path: path.to_path_buf(),
            info,
            width,
            height,
            child,
            stdout,
            stderr: Some(stderr),
            yuv,
            next_index: 0,
            done: false,
        })
    }

    pub fn info(&self) -> &VideoInfo {
        &self.info
    }

    /// Size of the frames this decoder yields.
    pub fn frame_size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn time_of(&self, index: usize) -> f64 {
        // Container timestamps when they cover every frame (variable frame rate stays exact),
        // otherwise the nominal rate.
        self.info
            .timestamps
            .get(index)
            .copied()
            .unwrap_or(index as f64 / self.info.fps)
    }

    fn finish(&mut self) -> Result<(), VideoError> {
        self.done = true;
        let status = self.child.wait()?;
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        if !status.success() || self.next_index == 0 {
            let detail = stderr.trim().lines().last().unwrap_or("no frames decoded");
            return Err(VideoError::Decode {
                path: self.path.clone(),
                frames: self.next_index,
                detail: detail.to_string(),
            });
        }
        Ok(())
    }

    /// The next frame, `Ok(None)` at the end.
    pub fn next_frame(&mut self) -> Result<Option<VideoFrame>, VideoError> {
        if self.done {
            return Ok(None);
        }
        let (chroma_width, chroma_height) = (self.width.div_ceil(2), self.height.div_ceil(2));
        let frame_bytes = if self.yuv {
            self.width * self.height + 2 * chroma_width * chroma_height
        } else {
            self.width * self.height * 3
        };
        let mut data = vec![0u8; frame_bytes];
        let mut filled = 0;
        while filled < data.len() {
            match self.stdout.read(&mut data[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if filled == 0 {
            self.finish()?;
            return Ok(None);
        }
        if filled < data.len() {
            let frames = self.next_index;
            let _ = self.finish();
            return Err(VideoError::Decode {
                path: self.path.clone(),
                frames,
                detail: "stream ended inside a frame".into(),
            });
        }
        let index = self.next_index;
        self.next_index += 1;
        let rgb = if self.yuv {
            bt601_to_rgb(&data, self.width, self.height)
        } else {
            data
        };
        let image = RgbImage::new(self.width, self.height, rgb).expect("size checked");
        Ok(Some(VideoFrame {
            index,
            time: self.time_of(index),
            image,
        }))
    }
}

impl Iterator for VideoDecoder {
    type Item = Result<VideoFrame, VideoError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_frame().transpose()
    }
}

impl Drop for VideoDecoder {
    fn drop(&mut self) {
        if !self.done {
            // Stopped early: do not leave ffmpeg running or a zombie behind.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Decodes a whole video into memory (short clips, tests).
pub fn decode_all(path: &Path, max_side: Option<usize>) -> Result<Vec<VideoFrame>, VideoError> {
    VideoDecoder::open(path, max_side)?.collect()
}

/// Everything the dense analysis of one video produces.
pub struct Analysis {
    pub timeline: Timeline,
    pub spotting: Spotting,
    /// Decoding + analysis speed.
    pub frames_per_second: f64,
    /// Where the detector ran and where faces were tracked.
    pub tracking: TrackingStats,
}

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error(transparent)]
    Video(#[from] VideoError),
    #[error(transparent)]
    Face(#[from] FaceError),
}

/// Decodes every frame and analyses them `batch` at a time (one forward pass per batch without
/// tracking; frame by frame with it), then builds the timeline and spots events.
/// `progress(done, total)` is called after each batch.
pub fn analyse_video(
    analyzer: &FaceAnalyzer,
    path: &Path,
    max_side: Option<usize>,
    batch: usize,
    tracking: TrackingOptions,
    progress: &mut dyn FnMut(usize, Option<usize>),
) -> Result<Analysis, AnalysisError> {
    let mut decoder = VideoDecoder::open(path, max_side)?;
    let mut tracker = FaceTracker::new(tracking);
    let info = decoder.info().clone();
    let mut builder = TimelineBuilder::new(info.fps, TrackerOptions::default());
    let started = std::time::Instant::now();
    let mut done = 0usize;
    loop {
        let mut chunk: Vec<VideoFrame> = Vec::with_capacity(batch.max(1));
        while chunk.len() < batch.max(1) {
            match decoder.next_frame()? {
                Some(f) => chunk.push(f),
                None => break,
            }
        }
        if chunk.is_empty() {
            break;
        }
        let images: Vec<&RgbImage> = chunk.iter().map(|f| &f.image).collect();
        let results = pollster::block_on(analyzer.analyze_sequence(&images, &mut tracker))?;
        for (frame, faces) in chunk.iter().zip(&results) {
            builder.push(frame.index, frame.time, faces);
        }
        done += chunk.len();
        progress(done, info.frame_count);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let timeline = builder.finish();
    let spotting = spot(&timeline, &SpotOptions::default());
    Ok(Analysis {
        timeline,
        spotting,
        frames_per_second: done as f64 / elapsed.max(1e-9),
        tracking: tracker.stats(),
    })
}

/// A frame encoded as a JPEG: (frame index, width, height, bytes).
pub type EncodedFrame = (usize, u32, u32, Vec<u8>);

/// Decodes the video again and encodes the chosen frames (`frames`, ascending) as JPEGs whose
/// longer side is at most `size` (0: frame size).
pub fn encode_frames(
    path: &Path,
    max_side: Option<usize>,
    frames: &[usize],
    size: usize,
    quality: u8,
) -> Result<Vec<EncodedFrame>, String> {
    let mut out = Vec::new();
    let mut wanted = frames.iter().copied().peekable();
    let decoder = VideoDecoder::open(path, max_side).map_err(|e| e.to_string())?;
    for frame in decoder {
        let frame = frame.map_err(|e| e.to_string())?;
        while let Some(k) = wanted.peek().copied() {
            if k > frame.index {
                break;
            }
            if k == frame.index {
                let jpeg = crate::timeline::keyframes::encode_jpeg(&frame.image, size, quality)?;
                let (w, h) = crate::timeline::keyframes::jpeg_dimensions(&jpeg)?;
                out.push((k, w, h, jpeg));
            }
            wanted.next();
        }
        if wanted.peek().is_none() {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::bt601_to_rgb;

    #[test]
    fn bt601_limited_range_corners_and_chroma_sharing() {
        // 2×2 luma (black, white, mid, mid) sharing one grey chroma sample, then pure red.
        let grey = bt601_to_rgb(&[16, 235, 126, 126, 128, 128], 2, 2);
        assert_eq!(grey, [0, 0, 0, 255, 255, 255, 128, 128, 128, 128, 128, 128]);
        // BT.601 red: Y 81, U 90, V 240.
        let red = bt601_to_rgb(&[81, 90, 240], 1, 1);
        assert!(red[0] >= 254 && red[1] <= 1 && red[2] <= 1, "{red:?}");
        // Odd sizes: chroma planes round up.
        assert_eq!(bt601_to_rgb(&[16; 9 + 4 + 4], 3, 3).len(), 27);
    }
}
