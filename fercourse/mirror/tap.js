// fercourse frame tap: camera -> canvas -> binary message -> Python -> overlay.
//
// The browser does what it is good at: it plays the camera video, shrinks each new frame onto a
// small canvas (send_width px wide), and sends its RGBA pixels to Python as one binary custom
// message. Python answers every frame with an ack carrying the faces it found (boxes, emoji,
// probabilities); this script draws them over the live video. At most `max_in_flight` frames
// wait for an answer, so a slow kernel lowers the frame rate instead of building a queue.
//
// The camera: when the Python side passes an ipywebrtc CameraStream (trait `camera`), its
// MediaStream is used (ipywebrtc keeps it behind `captureStream()` on its model); otherwise this
// script calls getUserMedia itself.

const TAG = "[fercourse mirror]";
const PALETTE = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#b279a2", "#72b7b2"];
const EMOJI_FONT = '"Noto Color Emoji", "Apple Color Emoji", "Segoe UI Emoji", sans-serif';
const WAIT_MS = 1500; // no answer for this long: say the kernel is busy
const GIVE_UP_MS = 4000; // forget frames older than this, so sending resumes after a restart

const CAMERA_ERRORS = {
  NotAllowedError:
    "Camera permission was denied. Allow the camera for this page (camera icon in the " +
    "address bar), then press Start, or use the snapshot mode below.",
  SecurityError:
    "The browser blocked the camera on this page. Allow it, or use the snapshot mode below.",
  NotFoundError:
    "No camera was found. Plug one in and press Start, or use the snapshot mode below.",
  OverconstrainedError:
    "The camera cannot deliver the requested video. Press Start to try again, or use the " +
    "snapshot mode below.",
  NotReadableError:
    "The camera is busy (another application or tab is using it). Close it and press Start, " +
    "or use the snapshot mode below.",
  InsecureContext:
    "The browser only gives camera access to secure pages (https:// or localhost). Open the " +
    "notebook through localhost or HTTPS, or use the snapshot mode below.",
};

function el(tag, className, parent) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (parent) parent.appendChild(node);
  return node;
}

async function cameraFromIpywebrtc(model) {
  // The trait holds "IPY_MODEL_<id>"; the widget manager gives the ipywebrtc model itself.
  const ref = model.get("camera");
  if (!ref || !model.widget_manager) return null;
  const id = String(ref).replace(/^IPY_MODEL_/, "");
  let cam;
  try {
    cam = await model.widget_manager.get_model(id);
  } catch (err) {
    console.warn(TAG, "ipywebrtc camera model not reachable, opening the camera directly", err);
    return null;
  }
  if (!cam || typeof cam.captureStream !== "function") return null;
  return { stream: await cam.captureStream(), owner: cam };
}

async function openCamera(model) {
  const fromWidget = await cameraFromIpywebrtc(model);
  if (fromWidget) return { ...fromWidget, source: "ipywebrtc CameraStream" };
  if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
    const err = new Error("getUserMedia is not available on an insecure page");
    err.name = "InsecureContext";
    throw err;
  }
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: false,
    video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: "user" },
  });
  return { stream, owner: null, source: "getUserMedia" };
}

function render({ model, el: root }) {
  root.classList.add("fc-tap");
  const stage = el("div", "fc-stage", root);
  const video = el("video", "fc-video", stage);
  video.muted = true;
  video.playsInline = true;
  video.autoplay = true;
  const overlay = el("canvas", "fc-overlay", stage);
  const notice = el("div", "fc-notice", stage);
  const side = el("div", "fc-side", root);
  const mainEmoji = el("div", "fc-main-emoji", side);
  const mainLabel = el("div", "fc-main-label", side);
  const bars = el("div", "fc-bars", side);
  const status = el("div", "fc-status", root);
  const note = el("div", "fc-note", root); // Python's note: which model, or that none is trained
  const readout = el("div", "fc-readout", root);
  const grab = document.createElement("canvas");
  const grabCtx = grab.getContext("2d", { willReadFrequently: true });

  let camera = null; // {stream, owner, source}
  let opening = false;
  let closed = false;
  let seq = 0;
  const inFlight = new Map(); // seq -> time sent
  let lastAnswer = performance.now();
  let lastSent = 0;
  let newFrame = false;
  let sent = 0;
  let answered = 0;
  let rtt = [];
  let latest = null; // last result from Python
  let startedAt = 0;
  let sendError = "";
  const useRVFC = "requestVideoFrameCallback" in HTMLVideoElement.prototype;

  function setNotice(text, kind) {
    notice.textContent = text || "";
    notice.className = "fc-notice" + (text ? " fc-show" : "") + (kind ? " fc-" + kind : "");
  }

  function reportError(name, text) {
    model.set("camera_error", text ? `${name}: ${text}` : "");
    model.save_changes();
  }

  async function start() {
    if (camera || opening || closed) return;
    opening = true;
    setNotice("Starting the camera…", "info");
    try {
      camera = await openCamera(model);
      if (closed || !model.get("running")) {
        stop(); // Stop was pressed (or the view closed) while the browser asked for permission
        return;
      }
      video.srcObject = camera.stream;
      await video.play();
      model.set("camera_source", camera.source);
      model.set("camera_error", "");
      model.save_changes();
      setNotice("");
      startedAt = performance.now();
      if (useRVFC) video.requestVideoFrameCallback(onVideoFrame);
    } catch (err) {
      camera = null;
      const name = err?.name || "Error";
      const text = CAMERA_ERRORS[name] || `The camera could not start (${name}: ${err?.message}).`;
      setNotice(text, "error");
      reportError(name, text);
      console.warn(TAG, "camera error", name, err?.message);
    } finally {
      opening = false;
    }
  }

  function stop() {
    if (camera) {
      camera.stream.getTracks().forEach((t) => t.stop());
      // ipywebrtc caches its stream: drop it so the next Start opens the camera again.
      if (camera.owner) camera.owner.cameraStream = null;
    }
    camera = null;
    video.srcObject = null;
    inFlight.clear();
    latest = null;
    drawOverlay();
    setNotice("Stopped. Press Start to turn the camera on.", "info");
  }

  function onVideoFrame() {
    if (closed || !camera) return;
    video.requestVideoFrameCallback(onVideoFrame); // first: an error below must not end the loop
    newFrame = true;
    pump();
  }

  function pump() {
    if (!camera || !model.get("running") || video.readyState < 2) return;
    if (inFlight.size >= model.get("max_in_flight")) return;
    if (useRVFC && !newFrame) return;
    newFrame = false;
    sendFrame();
  }

  function sendFrame() {
    const vw = video.videoWidth;
    const vh = video.videoHeight;
    if (!vw || !vh) return;
    const w = Math.max(16, Math.round(model.get("send_width")));
    const h = Math.max(16, Math.round((w * vh) / vw));
    if (grab.width !== w || grab.height !== h) {
      grab.width = w;
      grab.height = h;
    }
    grabCtx.drawImage(video, 0, 0, w, h);
    seq += 1;
    const frameSeq = seq;
    const now = performance.now();
    lastSent = now;
    inFlight.set(frameSeq, now); // counted from the capture: encoding is part of the trip
    const header = { type: "frame", seq: frameSeq, width: w, height: h };
    if (model.get("frame_format") === "jpeg") {
      // ~15 KB instead of 300 KB for 320x240 raw: for large frames the bytes limit the rate.
      grab.toBlob(
        (blob) => {
          if (!blob) return inFlight.delete(frameSeq);
          blob.arrayBuffer().then((buffer) => send({ ...header, format: "jpeg" }, buffer));
        },
        "image/jpeg",
        model.get("jpeg_quality"),
      );
    } else {
      const pixels = grabCtx.getImageData(0, 0, w, h);
      send({ ...header, format: "rgba" }, pixels.data.buffer);
    }
  }

  function send(header, buffer) {
    try {
      model.send(header, undefined, [buffer]);
    } catch (err) {
      // No kernel connection (restarted, shut down): keep trying, say so once.
      if (!sendError) console.warn(TAG, "could not send a frame to Python", err);
      sendError = String(err?.message || err);
      inFlight.delete(header.seq);
      return;
    }
    sendError = "";
    sent += 1;
  }

  function onMessage(msg) {
    if (!msg || msg.type !== "result") return;
    const t0 = inFlight.get(msg.seq);
    inFlight.delete(msg.seq);
    const now = performance.now();
    lastAnswer = now;
    answered += 1;
    if (t0 !== undefined) {
      rtt.push(now - t0);
      if (rtt.length > 60) rtt = rtt.slice(-60);
    }
    latest = msg;
    drawOverlay();
    drawSide();
    updateStatus();
    pump();
  }

  function sizeOverlay() {
    const w = video.clientWidth || model.get("display_width");
    const h = video.clientHeight || Math.round((w * 3) / 4);
    const dpr = window.devicePixelRatio || 1;
    if (overlay.width !== Math.round(w * dpr) || overlay.height !== Math.round(h * dpr)) {
      overlay.width = Math.round(w * dpr);
      overlay.height = Math.round(h * dpr);
      overlay.style.width = `${w}px`;
      overlay.style.height = `${h}px`;
    }
    return { w, h, dpr };
  }

  function drawOverlay() {
    const { w, h, dpr } = sizeOverlay();
    const ctx = overlay.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const result = latest?.result;
    if (!result || !camera) return;
    const sx = w / result.width;
    const sy = h / result.height;
    const flip = model.get("mirror_view");
    for (const face of result.faces) {
      const [x, y, bw, bh] = face.box;
      const left = flip ? w - (x + bw) * sx : x * sx;
      const colour = PALETTE[(face.id - 1) % PALETTE.length];
      ctx.lineWidth = 3;
      ctx.strokeStyle = colour;
      ctx.strokeRect(left, y * sy, bw * sx, bh * sy);
      if (face.emoji) {
        const size = Math.max(24, Math.round(0.5 * bw * sx));
        ctx.font = `${size}px ${EMOJI_FONT}`;
        ctx.textAlign = "center";
        ctx.textBaseline = "bottom";
        ctx.fillText(face.emoji, left + bw * sx, y * sy + 0.35 * size);
      }
      const label = face.probabilities
        ? `${face.emotion ?? "not sure"} ${Math.round(100 * face.confidence)}%`
        : "face";
      ctx.font = "bold 13px sans-serif";
      ctx.textAlign = "left";
      ctx.textBaseline = "top";
      const tw = ctx.measureText(label).width + 8;
      const ty = Math.min(h - 18, (y + bh) * sy + 2);
      ctx.fillStyle = colour;
      ctx.fillRect(left, ty, tw, 18);
      ctx.fillStyle = "#fff";
      ctx.fillText(label, left + 4, ty + 2);
    }
  }

  function drawSide() {
    const result = latest?.result;
    const faces = result?.faces ?? [];
    const main = faces[0];
    root.dataset.faces = String(faces.length);
    if (!main) {
      mainEmoji.textContent = "";
      mainLabel.textContent = camera ? "No face in view" : "";
      bars.style.display = "none";
      return;
    }
    mainEmoji.textContent = main.emoji || "";
    mainLabel.textContent = main.probabilities
      ? `${main.emotion ?? "not sure"} · ${Math.round(100 * main.confidence)}%`
      : "face found (no model)";
    if (!model.get("show_probabilities") || !main.probabilities) {
      bars.style.display = "none";
      return;
    }
    bars.style.display = "";
    const names = model.get("emotions") || [];
    if (barRows.length !== names.length) buildBars(names);
    names.forEach((name, i) => {
      const p = main.probabilities[i];
      const row = barRows[i];
      row.root.classList.toggle("fc-top", name === main.emotion);
      row.fill.style.width = `${(100 * p).toFixed(1)}%`;
      row.value.textContent = `${(100 * p).toFixed(0)}%`;
    });
  }

  let barRows = [];
  function buildBars(names) {
    const emoji = model.get("emoji") || {};
    barRows = names.map((name) => {
      const row = el("div", "fc-bar");
      el("span", "fc-bar-emoji", row).textContent = emoji[name] ?? "";
      el("span", "fc-bar-name", row).textContent = name;
      const track = el("span", "fc-bar-track", row);
      return { root: row, fill: el("span", "fc-bar-fill", track), value: el("span", "fc-bar-value", row) };
    });
    bars.replaceChildren(...barRows.map((r) => r.root));
  }

  function median(values) {
    if (!values.length) return 0;
    const s = [...values].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
  }

  function updateStatus() {
    const now = performance.now();
    let text;
    const pythonMessage = model.get("message");
    if (!model.get("running")) text = "Stopped.";
    else if (!camera) text = opening ? "Starting the camera…" : "Camera off.";
    else if (sendError || (inFlight.size && now - lastAnswer > WAIT_MS))
      text =
        "Waiting for the kernel… (busy, or restarted: if this stays, re-run the mirror cell)";
    else if (latest && latest.error) text = `Python error: ${latest.error}`;
    else if (latest) {
      const n = latest.result?.faces?.length ?? 0;
      text = n === 0 ? "No face in view: look at the camera." : `${n} face${n > 1 ? "s" : ""}`;
    } else text = "Waiting for the first frame…";
    status.textContent = text;
    note.textContent = pythonMessage || "";
    const kind = text.startsWith("Waiting for the kernel") ? "wait" : "";
    status.className = "fc-status" + (kind ? " fc-" + kind : "");
    const stats = latest?.stats;
    readout.textContent = stats
      ? `${stats.fps.toFixed(1)} frames/s · ${stats.latency_ms.toFixed(1)} ms per frame in Python ` +
        `(p50) · ${median(rtt).toFixed(0)} ms round trip · ${stats.frames_received} frames ` +
        `received, ${stats.frames_classified} classified`
      : `${sent} frames sent`;
    // Machine-readable copies for tests and for anyone inspecting the page.
    root.dataset.sent = String(sent);
    root.dataset.answered = String(answered);
    if (stats) {
      root.dataset.framesReceived = String(stats.frames_received);
      root.dataset.framesClassified = String(stats.frames_classified);
      root.dataset.pythonFps = String(stats.fps);
    }
    root.dataset.cameraSource = camera ? camera.source : "";
    root.dataset.frameFormat = latest?.format ?? "";
  }

  function watchdog() {
    if (closed) return;
    const now = performance.now();
    try {
      for (const [s, t] of inFlight) if (now - t > GIVE_UP_MS) inFlight.delete(s);
      // Offscreen videos get no frame callbacks: keep a slow trickle so counters stay alive.
      if (camera && model.get("running") && now - lastSent > 250) {
        newFrame = true;
        pump();
      }
      const limit = model.get("auto_stop_s");
      if (camera && limit > 0 && now - startedAt > 1000 * limit) {
        model.set("running", false);
        model.save_changes();
      }
    } finally {
      updateStatus();
    }
  }

  function onRunning() {
    if (model.get("running")) start();
    else stop();
    updateStatus();
  }

  model.on("msg:custom", onMessage);
  model.on("change:running", onRunning);
  model.on("change:show_probabilities", drawSide);
  model.on("change:mirror_view", () => {
    video.classList.toggle("fc-flip", model.get("mirror_view"));
    drawOverlay();
  });
  model.on("change:display_width", () => {
    stage.style.width = `${model.get("display_width")}px`;
  });
  model.on("change:message", updateStatus);
  stage.style.width = `${model.get("display_width")}px`;
  video.classList.toggle("fc-flip", model.get("mirror_view"));
  const timer = setInterval(watchdog, 250);
  const fallback = useRVFC ? null : setInterval(pump, 1000 / 30);
  if (model.get("running")) start();
  else setNotice("Press Start to turn the camera on.", "info");
  updateStatus();

  return () => {
    closed = true;
    clearInterval(timer);
    if (fallback) clearInterval(fallback);
    model.off("msg:custom", onMessage);
    model.off("change:running", onRunning);
    if (camera) stop();
  };
}

export default { render };
