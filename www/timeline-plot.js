// Timeline plot of a whole-clip report (analyzeVideo with `records: true`), drawn on a canvas:
// the 7 expression probabilities as lines, the action features as a heat map of their change
// from the clip's baseline, spotted events as bands (micro and macro in their own colours),
// talking spans when the report has them, keyframes as markers, and a cursor at the video's time.
// A click anywhere on the plot seeks to that time.
//
//   const plot = createTimelinePlot(canvas, { expressionNames, featureNames, onSeek });
//   plot.draw(report);  plot.setCursor(video.currentTime);
//   plot.layout  // where everything was drawn, in CSS pixels (for tests)

// One colour per expression index (the names come from the package).
const EXPRESSION_COLOURS = ['#9aa3b2', '#3ddc97', '#5b9dff', '#ff5d5d', '#c58bff', '#b5d43a', '#ffd84d'];
export const EVENT_COLOURS = { micro: '#ff4fd8', macro: '#ffb84d' };
const TALKING_COLOUR = '#4fc3ff';
const KEYFRAME_COLOUR = '#e8ebf0';
const TEXT_COLOUR = '#9aa3b2';
const GRID_COLOUR = '#2d3541';

const LABEL_WIDTH = 170; // left margin for feature names
const MARKER_HEIGHT = 16; // keyframe markers above the panels
const EXPRESSION_HEIGHT = 130;
const GAP = 8;
const FEATURE_ROW = 10;
const EVENT_ROW = 10; // the events again, solid, under the heat map
const TALKING_HEIGHT = 10;
const AXIS_HEIGHT = 22;
const RIGHT_PAD = 12;

/** Median of the finite numbers in `values` (0 when there are none). */
function median(values) {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (!v.length) return 0;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Talking spans, when the report lists them ({ start_time, end_time }); a bare count draws none. */
function talkingSpans(report) {
  const spans = Array.isArray(report.talking) ? report.talking : Array.isArray(report.talking_spans) ? report.talking_spans : [];
  return spans.filter((s) => s && Number.isFinite(s.start_time) && Number.isFinite(s.end_time));
}

/** A pleasant tick step (seconds) for about `target` ticks over `duration`. */
function tickStep(duration, target = 8) {
  const raw = duration / target;
  const pow = 10 ** Math.floor(Math.log10(raw || 1));
  return [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) || pow * 10;
}

export function createTimelinePlot(canvas, { expressionNames, featureNames, onSeek }) {
  const ctx = canvas.getContext('2d');
  let report = null;
  let cursor = null;
  const still = document.createElement('canvas'); // everything but the cursor, drawn once per report
  const plot = { layout: null, draw, setCursor, timeAt };

  function timeAt(clientX) {
    const l = plot.layout;
    if (!l) return null;
    const x = clientX - canvas.getBoundingClientRect().left;
    const t = ((x - l.left) / l.width) * l.duration;
    return Math.min(l.duration, Math.max(0, t));
  }

  // Drawn again when its width changes, so that pixels and click positions stay true.
  let drawnWidth = 0;
  new ResizeObserver(() => {
    if (report && canvas.clientWidth > 0 && canvas.clientWidth !== drawnWidth) render();
  }).observe(canvas);

  canvas.addEventListener('click', (e) => {
    const t = timeAt(e.clientX);
    if (t !== null && onSeek) onSeek(t);
  });

  function setCursor(time) {
    cursor = Number.isFinite(time) ? time : null;
    if (!plot.layout) return;
    const l = plot.layout;
    const dpr = canvas.width / canvas.clientWidth || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(still, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    l.cursor = cursor;
    if (cursor === null) return;
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(l.left + (Math.min(cursor, l.duration) / l.duration) * l.width - 1, l.expressions.top, 2, l.bandBottom - l.expressions.top);
  }

  function draw(newReport) {
    if (!Array.isArray(newReport.records)) throw new Error('the timeline plot needs the per-frame records (analyzeVideo with records: true)');
    report = newReport;
    render();
  }

  function render() {
    const records = report.records;
    const duration = Math.max(report.duration, records.length ? records[records.length - 1].time : 0) || 1;
    const nFeatures = featureNames.length;
    const width = Math.max(200, canvas.clientWidth - LABEL_WIDTH - RIGHT_PAD);
    const expressionsTop = MARKER_HEIGHT;
    const featuresTop = expressionsTop + EXPRESSION_HEIGHT + 2 * GAP;
    const featuresHeight = nFeatures * FEATURE_ROW;
    const eventsTop = featuresTop + featuresHeight + GAP / 2;
    const talkingTop = eventsTop + EVENT_ROW + GAP / 2;
    const axisTop = talkingTop + TALKING_HEIGHT + 4;
    const cssHeight = axisTop + AXIS_HEIGHT;
    const dpr = window.devicePixelRatio || 1;
    drawnWidth = canvas.clientWidth;
    canvas.style.height = `${cssHeight}px`;
    canvas.width = Math.round(canvas.clientWidth * dpr);
    canvas.height = Math.round(cssHeight * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, canvas.clientWidth, cssHeight);

    const left = LABEL_WIDTH;
    const x = (t) => left + (t / duration) * width;
    const bandTop = expressionsTop;
    const bandBottom = talkingTop + TALKING_HEIGHT;
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'middle';

    // Event bands under everything else.
    const bands = report.events.map((e) => {
      const x0 = x(e.onset_time);
      const x1 = Math.max(x0 + 2, x(e.offset_time));
      ctx.globalAlpha = 0.22;
      ctx.fillStyle = EVENT_COLOURS[e.kind] || TEXT_COLOUR;
      ctx.fillRect(x0, bandTop, x1 - x0, bandBottom - bandTop);
      ctx.globalAlpha = 1;
      ctx.fillRect(x0, eventsTop, x1 - x0, EVENT_ROW);
      return { kind: e.kind, onset: e.onset_time, apex: e.apex_time, offset: e.offset_time, x0, x1, apexX: x(e.apex_time) };
    });

    // Expression probabilities, 0..1.
    const yExpr = (p) => expressionsTop + (1 - p) * EXPRESSION_HEIGHT;
    ctx.strokeStyle = GRID_COLOUR;
    ctx.lineWidth = 1;
    for (const p of [0, 0.5, 1]) {
      ctx.beginPath();
      ctx.moveTo(left, yExpr(p) + 0.5);
      ctx.lineTo(left + width, yExpr(p) + 0.5);
      ctx.stroke();
    }
    expressionNames.forEach((name, i) => {
      ctx.strokeStyle = EXPRESSION_COLOURS[i % EXPRESSION_COLOURS.length];
      ctx.lineWidth = 1.6;
      ctx.beginPath();
      let drawing = false;
      for (const r of records) {
        if (!r.expressions) {
          drawing = false; // a gap where no face was found
          continue;
        }
        const px = x(r.time);
        const py = yExpr(r.expressions[i]);
        if (drawing) ctx.lineTo(px, py);
        else ctx.moveTo(px, py);
        drawing = true;
      }
      ctx.stroke();
      // Legend in the left margin, two columns.
      const lx = 8 + (i % 2) * 80;
      const ly = expressionsTop + 10 + Math.floor(i / 2) * 16;
      ctx.fillStyle = EXPRESSION_COLOURS[i % EXPRESSION_COLOURS.length];
      ctx.fillRect(lx, ly - 1, 10, 3);
      ctx.fillText(name, lx + 14, ly);
    });

    // Action features: change from the median over the baseline frames spotting used (the whole
    // clip when it has none), on one scale for all, warm = more of the action, cool = less.
    const faceRecords = records.filter((r) => r.features);
    const baselineCount = report.baseline_frames > 0 ? report.baseline_frames : faceRecords.length;
    const baseline = featureNames.map((_, f) => median(faceRecords.slice(0, baselineCount).map((r) => r.features[f])));
    let scale = 0.05; // IOD units: smaller changes are noise on this scale
    for (const r of faceRecords) for (let f = 0; f < nFeatures; f++) scale = Math.max(scale, Math.abs(r.features[f] - baseline[f]));
    const step = width / Math.max(1, records.length);
    for (let f = 0; f < nFeatures; f++) {
      const y = featuresTop + f * FEATURE_ROW;
      for (const r of records) {
        if (!r.features) continue;
        const d = (r.features[f] - baseline[f]) / scale;
        ctx.globalAlpha = Math.min(1, Math.abs(d));
        ctx.fillStyle = d >= 0 ? '#ff8a3d' : '#3d9bff';
        ctx.fillRect(x(r.time) - step / 2, y, step + 0.5, FEATURE_ROW - 1);
      }
      ctx.globalAlpha = 1;
      ctx.fillStyle = TEXT_COLOUR;
      ctx.fillText(featureNames[f], 8, y + FEATURE_ROW / 2);
    }

    ctx.fillStyle = TEXT_COLOUR;
    ctx.fillText(bands.length ? 'events' : 'events (none)', 8, eventsTop + EVENT_ROW / 2);

    // Talking spans.
    const talking = talkingSpans(report).map((s) => ({ start: s.start_time, end: s.end_time, x0: x(s.start_time), x1: x(s.end_time) }));
    ctx.fillStyle = TEXT_COLOUR;
    ctx.fillText(talking.length ? 'talking' : 'talking (none)', 8, talkingTop + TALKING_HEIGHT / 2);
    ctx.fillStyle = TALKING_COLOUR;
    for (const s of talking) ctx.fillRect(s.x0, talkingTop, Math.max(2, s.x1 - s.x0), TALKING_HEIGHT);

    // Keyframes: a marker above the plot and a thin line through it.
    const keyframes = report.keyframes.map((k) => ({ time: k.time, reason: k.reason, x: x(k.time) }));
    for (const k of keyframes) {
      ctx.fillStyle = KEYFRAME_COLOUR;
      ctx.beginPath();
      ctx.moveTo(k.x - 5, 2);
      ctx.lineTo(k.x + 5, 2);
      ctx.lineTo(k.x, MARKER_HEIGHT - 3);
      ctx.fill();
      ctx.globalAlpha = 0.35;
      ctx.fillRect(k.x - 0.5, MARKER_HEIGHT, 1, bandBottom - MARKER_HEIGHT);
      ctx.globalAlpha = 1;
    }
    ctx.fillStyle = TEXT_COLOUR;
    ctx.fillText('keyframes', 8, MARKER_HEIGHT / 2);
    ctx.fillText(`features: ±${scale.toFixed(2)} IOD`, 8, featuresTop - GAP);

    // Time axis.
    ctx.textAlign = 'center';
    const dt = tickStep(duration);
    for (let t = 0; t <= duration + 1e-9; t += dt) {
      ctx.fillStyle = GRID_COLOUR;
      ctx.fillRect(x(t) - 0.5, axisTop, 1, 4);
      ctx.fillStyle = TEXT_COLOUR;
      ctx.fillText(`${+t.toFixed(2)} s`, x(t), axisTop + 13);
    }
    ctx.textAlign = 'start';

    plot.layout = {
      left,
      width,
      duration,
      height: cssHeight,
      expressions: { top: expressionsTop, height: EXPRESSION_HEIGHT },
      features: { top: featuresTop, height: featuresHeight, scale, names: featureNames },
      eventStrip: { top: eventsTop, height: EVENT_ROW },
      talkingStrip: { top: talkingTop, height: TALKING_HEIGHT },
      colours: EVENT_COLOURS,
      expressionColours: expressionNames.map((_, i) => EXPRESSION_COLOURS[i % EXPRESSION_COLOURS.length]),
      bands,
      talking,
      keyframes,
      bandBottom,
      cursor: null,
    };
    still.width = canvas.width;
    still.height = canvas.height;
    still.getContext('2d').drawImage(canvas, 0, 0);
    setCursor(cursor);
  }

  return plot;
}
