/**
 * The page: UI only. The networks, faces and video run in the worker
 * (engine.ts), which bundles the library's core.
 */
import type { AnimateParams, BackendChoice, EditParams, FromEngine, ToEngine } from './protocol.js';
import { kindOf } from './kinds.js';
import { $, checked, drawImage, fmtTime, num, round2, showMessage, state } from './ui.js';
import { picked, webcamSnapshot, webcamStream, wireDrop } from './inputs_ui.js';

const base = new URL('.', location.href).pathname;

let worker: Worker;
const send = (m: ToEngine, transfer: Transferable[] = []) => worker.postMessage(m, transfer);

// ------------------------------------------------------------------ messages

function setBusy(b: boolean): void {
  state.busy = b;
  ($('animate') as HTMLButtonElement).disabled = b;
  ($('vedit-run') as HTMLButtonElement).disabled = b;
  ($('cancel') as HTMLButtonElement).disabled = !b;
  ($('vedit-cancel') as HTMLButtonElement).disabled = !b;
}

/** The panel whose run is going on (its progress bar and results): Animate or Video editing. */
let runTab: 'animate' | 'vedit' = 'animate';
const runId = (id: string) => (runTab === 'vedit' ? `vedit-${id}` : id);

function clearResults(): void {
  for (const id of ['result-video', 'concat-video', 'result-image', 'concat-image', 'download-result', 'download-concat', 'download-gif', 'vedit-result', 'vedit-concat', 'vedit-download']) {
    const el = $(id) as HTMLVideoElement & HTMLAnchorElement & HTMLImageElement;
    if (el.src?.startsWith('blob:')) URL.revokeObjectURL(el.src);
    if (el.href?.startsWith('blob:')) URL.revokeObjectURL(el.href);
    el.removeAttribute('src');
    el.removeAttribute('href');
    el.hidden = true;
  }
  $('result-note').textContent = '';
}

function showLink(linkId: string, blob: Blob, name: string, url = URL.createObjectURL(blob)): void {
  const a = $(linkId) as HTMLAnchorElement;
  a.href = url;
  a.download = name;
  a.textContent = `download ${name}`;
  a.hidden = false;
}

function showBlob(mediaId: string, linkId: string, blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const el = $(mediaId) as HTMLVideoElement | HTMLImageElement;
  el.src = url;
  el.hidden = false;
  showLink(linkId, blob, name, url);
}

let pendingWeights: (() => void) | undefined;
let liveRunning = false;
let liveCount = 0;
let liveT0 = 0;

function onMessage(m: FromEngine): void {
  switch (m.type) {
    case 'ready':
      state.backend = m.backend;
      state.threads = m.threads;
      state.backendNote = m.note ?? '';
      $('backend-status').textContent = `running on ${m.backend}${m.threads !== undefined ? ` (${m.threads} thread${m.threads === 1 ? '' : 's'}${crossOriginIsolated ? ', cross-origin isolated' : ', not cross-origin isolated: 1 thread'})` : ''}${m.adapter ? ` — adapter ${m.adapter}` : ''}${m.note ? ` — ${m.note}` : ''}`;
      if (state.weights === '') $('weights-status').textContent = 'no weights loaded';
      else {
        state.weights = '';
        $('weights-status').textContent = 'backend changed: load the weights again';
      }
      break;
    case 'weights-progress': {
      const p = $('weights-progress') as HTMLProgressElement;
      p.hidden = false;
      p.max = m.total || 1;
      p.value = m.loaded;
      state.weightsFiles[m.file] = { loaded: m.loaded, total: m.total ?? 0, updates: (state.weightsFiles[m.file]?.updates ?? 0) + 1 };
      $('weights-status').textContent = `${m.file}: ${(m.loaded / 1e6).toFixed(1)}${m.total ? ` / ${(m.total / 1e6).toFixed(1)}` : ''} MB`;
      break;
    }
    case 'weights-ready':
      state.weights = m.label;
      ($('weights-progress') as HTMLProgressElement).hidden = true;
      $('weights-status').innerHTML = '';
      $('weights-status').append(Object.assign(document.createElement('span'), { className: m.label.startsWith('SYNTHETIC') ? 'synthetic' : '', textContent: `${m.label} — ready (${m.seconds.toFixed(1)} s)` }));
      setBusy(false);
      pendingWeights?.();
      break;
    case 'progress': {
      const p = m.progress;
      const bar = $(runId('progress')) as HTMLProgressElement;
      bar.max = p.total || 1;
      bar.value = p.done;
      $(runId('progress-text')).textContent = `${p.phase}: ${p.done}${p.total ? ` / ${p.total}` : ''} frames${p.secondsPerFrame ? `, ${p.secondsPerFrame.toFixed(1)} s/frame` : ''}${p.eta !== undefined ? `, ${fmtTime(p.eta)} left` : ''}`;
      break;
    }
    case 'log':
      state.log.push(m.line);
      break;
    case 'animated': {
      setBusy(false);
      state.animations++;
      state.lastResult = { name: m.result.name, mime: m.result.mime, frames: m.frames, audio: m.audio, note: m.note, seconds: m.seconds };
      if (runTab === 'vedit') {
        showBlob('vedit-result', 'vedit-download', m.result.blob, m.result.name);
        if (m.concat) ($('vedit-concat') as HTMLVideoElement).src = URL.createObjectURL(m.concat.blob);
        $('vedit-concat').hidden = false;
      } else if (m.image) {
        showBlob('result-image', 'download-result', m.result.blob, m.result.name);
        if (m.concat) showBlob('concat-image', 'download-concat', m.concat.blob, m.concat.name);
      } else {
        showBlob('result-video', 'download-result', m.result.blob, m.result.name);
        if (m.concat) showBlob('concat-video', 'download-concat', m.concat.blob, m.concat.name);
        if (m.gif) showLink('download-gif', m.gif.blob, m.gif.name);
      }
      const audio = m.audio ? `, with the ${runTab === 'vedit' ? 'source' : 'driving'} audio` : ', no audio';
      $(runId('progress-text')).textContent = `done: ${m.frames} frame${m.frames === 1 ? '' : 's'} in ${fmtTime(m.seconds)}${m.faces > 1 ? `, ${m.faces} faces` : ''}${m.image ? '' : audio}`;
      $('result-note').textContent = m.note ?? '';
      break;
    }
    case 'edit-ready': {
      state.editRatios = { eyeRatio: m.eyeRatio, lipRatio: m.lipRatio };
      state.editSourceRatios = { eyeRatio: m.sourceEyeRatio, lipRatio: m.sourceLipRatio };
      state.editSourceCrop = m.crop;
      setSlider('eyeRatio', round2(m.eyeRatio));
      setSlider('lipRatio', round2(m.lipRatio));
      drawImage('edit-crop-canvas', m.crop);
      $('edit-status').textContent = 'source ready: move a slider';
      requestEdit();
      break;
    }
    case 'edit-result': {
      state.editDone = m.seq;
      state.editSeconds = m.seconds;
      state.editCrop = m.crop;
      drawImage('edit-result', m.crop);
      drawImage('edit-pasted', m.pasted);
      const a = $('edit-download') as HTMLAnchorElement;
      if (a.href.startsWith('blob:')) URL.revokeObjectURL(a.href);
      a.href = URL.createObjectURL(m.pastedPng);
      a.download = 'edited.png';
      a.textContent = 'download edited.png';
      a.hidden = false;
      $('edit-status').textContent = `updated in ${m.seconds.toFixed(1)} s`;
      editInFlight = false;
      if (editDirty) requestEdit();
      break;
    }
    case 'live-frame': {
      liveBusy = false;
      // a frame that was in the worker when the webcam stopped
      if (!liveRunning) break;
      drawImage('live-canvas', m.image);
      liveCount++;
      state.liveFrames = liveCount;
      // the rate from the first frame shown on (the source's preparation is not counted)
      if (liveCount === 1) liveT0 = performance.now();
      const fps = liveCount === 1 ? 1 / m.seconds : (liveCount - 1) / ((performance.now() - liveT0) / 1000);
      $('live-fps').textContent = `${fps.toFixed(2)} frames/s (${m.seconds.toFixed(2)} s a frame)`;
      break;
    }
    case 'memory':
      state.memory = { numTensors: m.numTensors, numBytes: m.numBytes, wasmHeapBytes: m.wasmHeapBytes };
      break;
    case 'probe-result':
      state.probe = { outputs: m.outputs, backend: m.backend };
      break;
    case 'cancelled':
      setBusy(false);
      clearResults();
      $(runId('progress-text')).textContent = 'cancelled: nothing was written';
      showMessage('The run was cancelled.', 'info');
      break;
    case 'error':
      state.lastError = m.message;
      setBusy(false);
      if (m.during === 'animate' || m.during === 'video-edit') clearResults();
      if (m.during === 'edit') editInFlight = false;
      if (m.during === 'live-frame') liveBusy = false;
      if (m.during === 'live-start' && liveRunning) stopLive();
      if (m.during.startsWith('weights')) {
        ($('weights-progress') as HTMLProgressElement).hidden = true;
        $('weights-status').textContent = 'weights failed to load';
      }
      showMessage(m.message);
      break;
  }
}

// ------------------------------------------------------------------ backend and weights

function startWorker(backend: BackendChoice): void {
  worker?.terminate();
  worker = new Worker(new URL('./engine.js', import.meta.url), { type: 'module' });
  worker.onmessage = (ev: MessageEvent<FromEngine>) => onMessage(ev.data);
  worker.onerror = (ev) => showMessage(`the page's worker failed: ${ev.message}`);
  state.backend = '';
  const threads = Number(new URLSearchParams(location.search).get('threads')) || undefined;
  send({ type: 'init', backend, base, threads });
}

function loadWeights(): void {
  showMessage('');
  const mode = (document.querySelector('input[name="weights-mode"]:checked') as HTMLInputElement).value;
  $('weights-status').textContent = 'loading weights…';
  state.weightsFiles = {};
  setBusy(true);
  ($('cancel') as HTMLButtonElement).disabled = true;
  if (mode === 'synthetic') send({ type: 'weights-synthetic', seed: Number(($('seed') as HTMLInputElement).value) || 0 });
  else if (mode === 'files') {
    const files = Array.from(($('weights-files') as HTMLInputElement).files ?? []);
    if (files.length === 0) {
      setBusy(false);
      $('weights-status').textContent = 'no weights loaded';
      return showMessage('Pick the five weights files first (.pth from HuggingFace KwaiVGI/LivePortrait, or converted .safetensors).');
    }
    send({ type: 'weights-files', files: files.map((f) => ({ name: f.name, blob: f })) });
  } else {
    const endpoint = new URLSearchParams(location.search).get('hf') ?? undefined;
    send({ type: 'weights-hf', set: ($('weights-set') as HTMLSelectElement).value as 'human' | 'animal', endpoint });
  }
}

let liveStream: MediaStream | undefined;
let liveBusy = false;

async function toggleLive(): Promise<void> {
  if (liveRunning) return stopLive();
  if (!picked.source || kindOf(picked.source.name, picked.source.blob.type) !== 'image') return showMessage('Live driving needs a source image: pick one first.');
  if (!state.weights) return showMessage('Load weights first.');
  try {
    liveStream = await webcamStream();
  } catch (e) {
    return showMessage(`Webcam: ${(e as Error).message}`);
  }
  const v = $('live-video') as HTMLVideoElement;
  v.srcObject = liveStream;
  await v.play();
  $('live').hidden = false;
  liveRunning = true;
  liveBusy = false;
  liveCount = 0;
  state.liveFrames = 0;
  $('live-fps').textContent = 'preparing the source…';
  liveT0 = performance.now();
  $('driving-live').textContent = 'stop webcam';
  send({ type: 'live-start', source: picked.source, params: params() });
  const loop = async () => {
    if (!liveRunning) return;
    if (!liveBusy && v.readyState >= 2) {
      liveBusy = true;
      const frame = await createImageBitmap(v);
      send({ type: 'live-frame', frame }, [frame]);
    }
    requestAnimationFrame(() => void loop());
  };
  void loop();
}

function stopLive(): void {
  liveRunning = false;
  for (const t of liveStream?.getTracks() ?? []) t.stop();
  liveStream = undefined;
  ($('live-video') as HTMLVideoElement).srcObject = null;
  send({ type: 'live-stop' });
  $('driving-live').textContent = 'webcam live';
}

// ------------------------------------------------------------------ animate

/** The reference frame field: a frame index, or auto (anything else: 0, with a message). */
function referenceFrame(): number | 'auto' {
  const v = ($('opt-reference-frame') as HTMLInputElement).value.trim().toLowerCase();
  if (v === 'auto') return 'auto';
  const n = Number(v);
  if (v !== '' && Number.isInteger(n) && n >= 0) return n;
  showMessage(`reference frame must be a frame index (0 or more) or auto, got '${v}'; using 0`, 'info');
  return 0;
}

function params(): AnimateParams {
  const cd = ($('opt-crop-driving') as HTMLSelectElement).value;
  const maxFrames = num('opt-max-frames');
  return {
    relativeMotion: checked('opt-relative'),
    animationRegion: ($('opt-region') as HTMLSelectElement).value as AnimateParams['animationRegion'],
    drivingMultiplier: num('opt-multiplier'),
    drivingOption: ($('opt-driving-option') as HTMLSelectElement).value as AnimateParams['drivingOption'],
    stitching: checked('opt-stitching'),
    eyeRetargeting: checked('opt-eye-retargeting'),
    lipRetargeting: checked('opt-lip-retargeting'),
    normalizeLip: checked('opt-normalize-lip'),
    smoothObservationVariance: num('opt-smooth'),
    drivingSmooth: num('opt-driving-smooth'),
    referenceFrame: referenceFrame(),
    crop: checked('opt-crop'),
    scale: num('opt-scale'),
    vxRatio: num('opt-vx'),
    vyRatio: num('opt-vy'),
    cropDriving: cd === '' ? undefined : cd === 'yes',
    drivingScale: num('opt-dscale'),
    drivingVx: num('opt-dvx'),
    drivingVy: num('opt-dvy'),
    pasteBack: checked('opt-paste-back'),
    allFaces: checked('opt-all-faces'),
    faceIndex: num('opt-face-index'),
    maxFrames: maxFrames > 0 ? maxFrames : undefined,
    gif: checked('opt-gif'),
    animal: checked('opt-animal'),
    cropBox: picked.cropBox,
  };
}

function animate(): void {
  showMessage('');
  if (!state.weights) return showMessage('Load weights first (synthetic, local files or the official download).');
  if (!picked.source) return showMessage('Pick a source image or video.');
  if (!picked.driving) return showMessage('Pick a driving video, image or motion template (or use the webcam live).');
  if (liveRunning) stopLive();
  runTab = 'animate';
  clearResults();
  setBusy(true);
  ($('progress') as HTMLProgressElement).value = 0;
  $('progress-text').textContent = 'starting…';
  const faceDrivings = picked.faceDrivings?.length ? picked.faceDrivings : undefined;
  send({ type: 'animate', source: picked.source, driving: picked.driving, params: params(), faceDrivings });
}

// ------------------------------------------------------------------ image editing

const SLIDERS = ['eyeRatio', 'lipRatio', 'pitch', 'yaw', 'roll', 'movX', 'movY', 'movZ', 'lip0', 'lip1', 'lip2', 'lip3', 'smile', 'wink', 'eyebrow', 'eyeballX', 'eyeballY'] as const;
let editInFlight = false;
let editDirty = false;

function setSlider(name: string, v: number): void {
  const el = $(`s-${name}`) as HTMLInputElement;
  el.value = String(v);
  (el.nextElementSibling as HTMLOutputElement).value = el.value;
}

function editParams(): EditParams {
  const p = Object.fromEntries(SLIDERS.map((s) => [s, num(`s-${s}`)])) as unknown as EditParams;
  p.stitching = checked('edit-stitching');
  return p;
}

function requestEdit(): void {
  if (!state.editRatios) return;
  if (editInFlight) {
    editDirty = true;
    return;
  }
  editDirty = false;
  editInFlight = true;
  state.editSeq++;
  $('edit-status').textContent = 'updating…';
  state.editParams = editParams();
  send({ type: 'edit', params: state.editParams, seq: state.editSeq });
}

function editSource(): void {
  showMessage('');
  const f = picked.edit;
  if (!f) return;
  if (!state.weights) return showMessage('Load weights first.');
  if (kindOf(f.name, f.blob.type) !== 'image') return showMessage(`${f.name} is not an image: image editing takes a jpg, png or webp.`);
  state.editRatios = undefined;
  $('edit-status').textContent = 'finding the face and computing its features (once)…';
  send({ type: 'edit-source', source: f, crop: checked('edit-crop'), scale: num('edit-scale'), faceIndex: num('edit-face-index') });
}

function resetSliders(): void {
  for (const s of SLIDERS) setSlider(s, s === 'movZ' ? 1 : 0);
  if (state.editRatios) {
    setSlider('eyeRatio', round2(state.editRatios.eyeRatio));
    setSlider('lipRatio', round2(state.editRatios.lipRatio));
  }
  ($('edit-scale') as HTMLInputElement).value = '2.5';
  ($('edit-stitching') as HTMLInputElement).checked = true;
  ($('edit-crop') as HTMLInputElement).checked = true;
  ($('edit-face-index') as HTMLInputElement).value = '0';
  requestEdit();
}

// ------------------------------------------------------------------ tabs and wiring

let activeTab = 'animate';

function wire(): void {
  for (const b of Array.from(document.querySelectorAll<HTMLButtonElement>('.tabs button'))) {
    b.addEventListener('click', () => {
      activeTab = b.dataset.tab!;
      for (const o of Array.from(document.querySelectorAll<HTMLButtonElement>('.tabs button'))) o.classList.toggle('active', o === b);
      for (const t of ['animate', 'edit', 'vedit']) $(`tab-${t}`).hidden = t !== activeTab;
    });
  }
  $('backend-apply').addEventListener('click', () => {
    if (liveRunning) stopLive();
    $('backend-status').textContent = 'switching…';
    startWorker(($('backend') as HTMLSelectElement).value as BackendChoice);
  });
  $('weights-load').addEventListener('click', loadWeights);
  wireDrop('source');
  wireDrop('driving');
  $('source-webcam').addEventListener('click', () => void webcamSnapshot());
  $('driving-live').addEventListener('click', () => void toggleLive());
  $('live-neutral').addEventListener('click', () => send({ type: 'live-neutral' }));
  $('face-drivings-file').addEventListener('change', (ev) => {
    const files = Array.from((ev.target as HTMLInputElement).files ?? []).sort((x, y) => x.name.localeCompare(y.name));
    picked.faceDrivings = files.map((f) => ({ name: f.name, blob: f }));
  });
  $('animate').addEventListener('click', animate);
  for (const id of ['cancel', 'vedit-cancel'])
    $(id).addEventListener('click', () => {
      send({ type: 'cancel' });
      $(runId('progress-text')).textContent = 'cancelling after the current frame…';
    });
  for (const s of SLIDERS) {
    const el = $(`s-${s}`) as HTMLInputElement;
    (el.nextElementSibling as HTMLOutputElement).value = el.value;
    el.addEventListener('input', () => ((el.nextElementSibling as HTMLOutputElement).value = el.value));
    el.addEventListener('change', requestEdit);
  }
  $('edit-stitching').addEventListener('change', requestEdit);
  for (const id of ['edit-crop', 'edit-scale', 'edit-face-index']) $(id).addEventListener('change', editSource);
  $('edit-source').addEventListener('change', () => {
    const f = ($('edit-source') as HTMLInputElement).files?.[0];
    if (!f) return;
    picked.edit = { name: f.name, blob: f };
    editSource();
  });
  $('edit-reset').addEventListener('click', resetSliders);
  const vl = $('vedit-lip') as HTMLInputElement;
  vl.addEventListener('input', () => ((vl.nextElementSibling as HTMLOutputElement).value = vl.value));
  (vl.nextElementSibling as HTMLOutputElement).value = vl.value;
  $('vedit-source').addEventListener('change', () => {
    const f = ($('vedit-source') as HTMLInputElement).files?.[0];
    if (f) picked.vedit = { name: f.name, blob: f };
  });
  $('vedit-run').addEventListener('click', () => {
    showMessage('');
    if (!state.weights) return showMessage('Load weights first.');
    const f = picked.vedit;
    if (!f || kindOf(f.name, f.blob.type) !== 'video') return showMessage('Pick a source video (mp4, webm, mov) for video editing.');
    if (liveRunning) stopLive();
    runTab = 'vedit';
    clearResults();
    setBusy(true);
    ($('vedit-progress') as HTMLProgressElement).value = 0;
    $('vedit-progress-text').textContent = 'starting…';
    const maxFrames = num('vedit-max-frames');
    send({ type: 'video-edit', source: f, lipRatio: checked('vedit-silent') ? null : num('vedit-lip'), smoothObservationVariance: num('vedit-smooth'), scale: num('vedit-scale'), crop: checked('vedit-crop'), maxFrames: maxFrames > 0 ? maxFrames : undefined });
  });
}

/** For tests and the console: F, M and S outputs of the loaded weights on this backend for an image. */
(window as unknown as { lpProbe: (f: File) => void }).lpProbe = (f: File) => {
  state.probe = undefined;
  send({ type: 'probe', image: { name: f.name, blob: f } });
};

/** For measurements and the console: the worker's tensor count and bytes, and its wasm heap, into lpState.memory. */
(window as unknown as { lpMemory: () => void }).lpMemory = () => {
  state.memory = undefined;
  send({ type: 'memory' });
};

wire();
const initial = (new URLSearchParams(location.search).get('backend') as BackendChoice | null) ?? 'auto';
($('backend') as HTMLSelectElement).value = initial;
startWorker(initial);
