// The whole-clip report in the demo: the timeline plot (click to seek the video), the events, the
// summaries, the keyframes, the VLM prompt of each mode with its token counts, and a download of
// the report as JSON. Names, modes and prompt text all come from the package.
//
//   const clipReport = setupClipReport({ video, state });
//   clipReport.show(report);   // analyzeVideo's report, with records: true
import { buildPrompt, expressionNames, featureNames, promptModes } from 'emolens';
import { createTimelinePlot, EVENT_COLOURS } from './timeline-plot.js';

const $ = (id) => document.getElementById(id);

function listItems(list, texts) {
  list.replaceChildren(...texts.map((t) => Object.assign(document.createElement('li'), { textContent: t })));
}

function cell(tag, text) {
  return Object.assign(document.createElement(tag), { textContent: text });
}

/** The messages of a request as plain text: images as [image]. */
function messagesText(messages) {
  return messages
    .map((m) => {
      const parts = typeof m.content === 'string' ? [m.content] : m.content.map((p) => (p.type === 'text' ? p.text : '[image]'));
      return `${m.role}:\n${parts.join('\n')}`;
    })
    .join('\n\n');
}

export function setupClipReport({ video, state }) {
  const ui = {
    section: $('clip-report'),
    info: $('clip-info'),
    canvas: $('clip-plot'),
    legend: $('clip-legend'),
    events: $('clip-events'),
    summaries: $('clip-summaries'),
    keyframes: $('clip-keyframes'),
    tokens: $('clip-tokens'),
    mode: $('clip-prompt-mode'),
    prompt: $('clip-prompt'),
    download: $('clip-download'),
  };
  const seek = (time) => {
    video.currentTime = time;
    plot.setCursor(time);
  };
  const plot = createTimelinePlot(ui.canvas, { expressionNames: expressionNames(), featureNames: featureNames(), onSeek: seek });
  state.plot = plot;
  video.addEventListener('timeupdate', () => state.clipReport && plot.setCursor(video.currentTime));

  ui.legend.replaceChildren(
    ...Object.entries(EVENT_COLOURS).map(([kind, colour]) => {
      const item = cell('span', `${kind} expression`);
      item.style.setProperty('--swatch', colour);
      return item;
    }),
  );

  const modes = promptModes();
  ui.mode.replaceChildren(...modes.map((m) => Object.assign(document.createElement('option'), { value: m, textContent: m })));
  let prompts = {};
  const showPrompt = () => {
    const request = prompts[ui.mode.value];
    ui.prompt.textContent = request ? messagesText(request.requests[0].messages) : '';
  };
  ui.mode.addEventListener('change', showPrompt);

  ui.download.addEventListener('click', () => {
    if (!state.clipReport) return;
    const blob = new Blob([JSON.stringify(state.clipReport, null, 2)], { type: 'application/json' });
    const a = Object.assign(document.createElement('a'), { href: URL.createObjectURL(blob), download: 'emolens-analysis.json' });
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  });

  function show(report) {
    ui.section.hidden = false; // the plot measures its width, so it must be laid out first
    ui.info.textContent = `${report.frames} frames at ${report.fps} fps (${report.duration.toFixed(2)} s), face in ${report.face_frames}; analysed at ${report.analysis_fps.toFixed(1)} frames/s`;
    plot.draw(report);
    plot.setCursor(video.currentTime);
    listItems(
      ui.events,
      report.events.length
        ? report.events.map((e) => `${e.kind} ${e.onset_time.toFixed(2)}–${e.offset_time.toFixed(2)} s, apex ${e.apex_time.toFixed(2)} s: ${e.moves.slice(0, 3).map((m) => m.name).join(', ')}`)
        : ['none'],
    );
    listItems(ui.summaries, report.summaries.map((x) => x.text)); // each starts with its stretch's times
    ui.keyframes.replaceChildren(
      ...report.keyframes.map((k) => {
        const img = Object.assign(document.createElement('img'), { src: k.jpeg, alt: `keyframe at ${k.time.toFixed(2)} s`, title: `${k.time.toFixed(2)} s (${k.reason}); click to seek` });
        img.addEventListener('click', () => seek(k.time));
        return img;
      }),
    );

    // One prompt per mode, with the package's token estimates.
    prompts = Object.fromEntries(modes.map((mode) => [mode, buildPrompt(report, { mode })]));
    const head = document.createElement('tr');
    head.append(...['mode', 'text tokens', 'image tokens', 'total'].map((t) => cell('th', t)));
    const rows = modes.map((mode) => {
      const t = prompts[mode].requests[0].tokens;
      const tr = document.createElement('tr');
      tr.dataset.mode = mode;
      tr.append(cell('td', mode), cell('td', t.text_tokens), cell('td', t.image_tokens), cell('td', t.total));
      return tr;
    });
    const allFrames = document.createElement('tr');
    allFrames.append(cell('td', 'every frame as an image'), cell('td', ''), cell('td', prompts[modes[0]].all_frames_image_tokens), cell('td', ''));
    ui.tokens.replaceChildren(head, ...rows, allFrames);
    showPrompt();
  }

  return { show, plot };
}
