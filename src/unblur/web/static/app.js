// unblur's local page: upload, progress, before/after slider, blind A/B votes, results.
"use strict";

const $ = (id) => document.getElementById(id);
let options = null;

function showMessage(text, kind) {
  const box = $("message");
  box.textContent = text;
  box.className = "message" + (kind === "info" ? " info" : "");
  box.hidden = !text;
}

function mb(bytes) { return (bytes / 1048576).toFixed(0) + " MB"; }

async function loadOptions() {
  const response = await fetch("/api/options");
  options = await response.json();
  const model = $("model");
  model.innerHTML = "";
  for (const name of options.models) {
    const opt = document.createElement("option");
    opt.value = name;
    opt.textContent = name;
    model.appendChild(opt);
  }
  $("limits").textContent = `PNG, JPEG, TIFF, WebP or BMP; up to ${mb(options.max_upload_bytes)}` +
    ` and ${(options.max_pixels / 1e6).toFixed(0)} megapixels`;
}

// ------------------------------------------------------------------ tabs

function openTab(name) {
  for (const tab of document.querySelectorAll(".tab")) {
    tab.classList.toggle("active", tab.dataset.tab === name);
  }
  for (const id of ["restore", "ab", "results"]) $(id).hidden = id !== name;
  showMessage("");
  if (name === "results") loadResults();
  if (location.hash !== "#" + name) history.replaceState(null, "", "#" + name);
}

// ------------------------------------------------------------------ upload and jobs

async function upload(url, file) {
  if (options && file.size > options.max_upload_bytes) {
    throw new Error(`the file is larger than the limit of ${mb(options.max_upload_bytes)}`);
  }
  const sep = url.includes("?") ? "&" : "?";
  const response = await fetch(`${url}${sep}name=${encodeURIComponent(file.name)}`, {
    method: "POST",
    headers: { "Content-Type": "application/octet-stream" },
    body: file,
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `the server answered ${response.status}`);
  return body;
}

function describe(job) {
  if (job.state === "queued") {
    return job.position ? `waiting in the queue (${job.position} before yours)` : "starting";
  }
  return job.stage;
}

async function follow(jobId, onUpdate) {
  for (;;) {
    const response = await fetch(`/api/jobs/${jobId}`);
    const job = await response.json();
    if (!response.ok) throw new Error(job.error || "the job was lost");
    onUpdate(job);
    if (job.state === "done") return job;
    if (job.state === "failed") throw new Error(job.error);
    await new Promise((r) => setTimeout(r, 400));
  }
}

function setProgress(bar, label, job) {
  label.textContent = describe(job);
  if (job.progress === null || job.progress === undefined) bar.removeAttribute("value");
  else bar.value = job.progress;
}

function fileUrl(job, kind) { return `/api/jobs/${job.id}/files/${kind}`; }

function loaded(img, src) {
  return new Promise((resolve) => {
    img.onload = img.onerror = () => resolve();
    img.src = src;
  });
}

// ------------------------------------------------------------------ restore

let busy = false;

async function restoreFile(file) {
  if (busy) { showMessage("One photo at a time: wait for this one to finish.", "info"); return; }
  busy = true;
  showMessage("");
  $("result").hidden = true;
  $("job").hidden = false;
  $("stage").textContent = "uploading";
  $("progress").removeAttribute("value");
  try {
    const method = $("method").value;
    const model = $("model").value;
    const tta = $("tta").value;
    const job = await upload(
      `/api/jobs?method=${method}&model=${encodeURIComponent(model)}&tta=${tta}`, file);
    const done = await follow(job.id, (j) => setProgress($("progress"), $("stage"), j));
    await showResult(done);
  } catch (err) {
    showMessage(err.message);
  } finally {
    $("job").hidden = true;
    busy = false;
    $("file").value = "";
  }
}

// the network's self-ensemble, as unblur.restoration.network.passes_name says it
const passes = (n) => (n >= 8 ? "8 turns and flips" : `${n} flips`);

async function showResult(job) {
  const info = job.info || {};
  let text = `${info.width}×${info.height} · ${info.ran}`;
  if (info.share != null) {  // blind deconvolution blended with the network
    const pct = (x) => `${Math.round(100 * x)}%`;
    const polish = info.polish || 0;
    const network = 1 - info.share - polish;  // nil: the network's restoration was not run
    text += ` ${pct(info.share)}`;
    if (network > 1e-9) text += ` + network (${info.model}) ${pct(network)}`;
    if (polish) text += ` + ${info.polish_model || "network"} on the deconvolution ${pct(polish)}`;
    if (info.tta > 1) text += `, ${passes(info.tta)}`;
  } else if (info.model) text += ` (${info.model}${info.tta > 1 ? ", " + passes(info.tta) : ""})`;
  text += ` · ${info.seconds} s`;
  if (info.reason && info.reason !== "asked for") text += ` · ${info.reason}`;
  $("info").textContent = text;
  await Promise.all([loaded($("before"), fileUrl(job, "before")),
                     loaded($("after"), fileUrl(job, "after"))]);
  $("download").href = fileUrl(job, "result");
  $("download").setAttribute("download", "");
  const hasMotion = job.files.includes("motion");
  const hasKernel = job.files.includes("kernel");
  $("motion-fig").hidden = !hasMotion;
  $("kernel-fig").hidden = !hasKernel;
  if (hasMotion) $("motion").src = fileUrl(job, "motion");
  if (hasKernel) $("kernel").src = fileUrl(job, "kernel");
  $("motion-box").hidden = !(hasMotion || hasKernel);
  setZoom(1);
  setSlider(50);
  $("result").hidden = false;
}

function setSlider(value) {
  $("slider").value = value;
  $("before").style.clipPath = `inset(0 ${100 - value}% 0 0)`;
  $("divider").style.left = `${value}%`;
}

function setZoom(zoom) {
  const compare = $("compare");
  compare.style.width = `${zoom * 100}%`;
  compare.classList.toggle("zoomed", zoom > 1);
  for (const b of document.querySelectorAll(".zbtn")) {
    b.classList.toggle("active", Number(b.dataset.zoom) === zoom);
  }
  if (zoom > 1) {  // keep the middle in view
    const v = $("viewport");
    v.scrollLeft = (v.scrollWidth - v.clientWidth) / 2;
    v.scrollTop = (v.scrollHeight - v.clientHeight) / 2;
  }
}

// ------------------------------------------------------------------ blind A/B

let abJob = null;

async function abFile(file) {
  if (busy) { showMessage("One photo at a time: wait for this one to finish.", "info"); return; }
  busy = true;
  showMessage("");
  $("ab-pair").hidden = true;
  $("ab-job").hidden = false;
  $("ab-stage").textContent = "uploading";
  $("ab-progress").removeAttribute("value");
  try {
    const job = await upload("/api/ab", file);
    abJob = await follow(job.id, (j) => setProgress($("ab-progress"), $("ab-stage"), j));
    await Promise.all([loaded($("ab-left"), fileUrl(abJob, "left")),
                       loaded($("ab-right"), fileUrl(abJob, "right"))]);
    $("ab-reveal").hidden = true;
    for (const b of $("ab-votes").querySelectorAll("button")) b.disabled = false;
    setAbZoom(1);
    $("ab-pair").hidden = false;
  } catch (err) {
    showMessage(err.message);
  } finally {
    $("ab-job").hidden = true;
    busy = false;
    $("ab-file").value = "";
  }
}

async function vote(choice) {
  if (!abJob) return;
  for (const b of $("ab-votes").querySelectorAll("button")) b.disabled = true;
  const response = await fetch(`/api/ab/${abJob.id}/vote`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ choice }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) { showMessage(body.error || "the vote was not stored"); return; }
  const verdict = { left: "A looked sharper", right: "B looked sharper",
                    equal: "they looked the same" }[choice];
  $("ab-reveal").textContent =
    `Thank you: vote stored (${verdict}). A was ${body.left}, B was ${body.right}. ` +
    "Drop another photo to judge again.";
  $("ab-reveal").hidden = false;
}

function setAbZoom(zoom) {
  for (const side of ["left", "right"]) {
    const view = $(`ab-view-${side}`);
    $(`ab-${side}`).style.width = `${zoom * 100}%`;
    view.classList.toggle("zoomed", zoom > 1);
    view.scrollLeft = (view.scrollWidth - view.clientWidth) / 2;
    view.scrollTop = (view.scrollHeight - view.clientHeight) / 2;
  }
  for (const b of document.querySelectorAll(".abz")) {
    b.classList.toggle("active", Number(b.dataset.abzoom) === zoom);
  }
}

function syncScroll(from, to) {
  let lock = false;
  from.addEventListener("scroll", () => {
    if (lock) { lock = false; return; }
    lock = true;
    to.scrollLeft = from.scrollLeft;
    to.scrollTop = from.scrollTop;
  });
}

// ------------------------------------------------------------------ results

function pct(x) { return (100 * x).toFixed(0) + "%"; }

async function loadResults() {
  const response = await fetch("/api/ab/results");
  const data = await response.json();
  const body = $("results-table").querySelector("tbody");
  body.innerHTML = "";
  if (!data.methods.length) {
    body.innerHTML = '<tr><td colspan="8">No votes yet: judge a few pictures in the blind A/B ' +
      "test.</td></tr>";
  }
  for (const m of data.methods) {
    const tr = document.createElement("tr");
    const cells = [m.method, m.comparisons, m.wins, m.ties, m.losses, pct(m.win_rate),
                   `${pct(m.ci_low)} – ${pct(m.ci_high)}`];
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = c;
      tr.appendChild(td);
    }
    const td = document.createElement("td");
    td.innerHTML = '<div class="bar"><div class="ci"></div><div class="pt"></div></div>';
    td.querySelector(".ci").style.left = pct(m.ci_low);
    td.querySelector(".ci").style.width = pct(m.ci_high - m.ci_low);
    td.querySelector(".pt").style.left = pct(m.win_rate);
    tr.appendChild(td);
    body.appendChild(tr);
  }
  $("results-note").textContent = `${data.votes} vote${data.votes === 1 ? "" : "s"}. ` +
    "Win rate counts a tie as half a win; the interval is the 95% Wilson score interval. " +
    "Overlapping intervals mean the votes cannot yet tell the methods apart.";
  const pairs = $("pairs-table").querySelector("tbody");
  pairs.innerHTML = "";
  for (const p of data.pairs) {
    const tr = document.createElement("tr");
    for (const c of [`${p.a} vs ${p.b}`, p.a_wins, p.ties, p.b_wins]) {
      const td = document.createElement("td");
      td.textContent = c;
      tr.appendChild(td);
    }
    pairs.appendChild(tr);
  }
}

// ------------------------------------------------------------------ wiring

function dropZone(zone, input, handle) {
  input.addEventListener("change", () => { if (input.files.length) handle(input.files[0]); });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length) handle(e.dataTransfer.files[0]);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => openTab(tab.dataset.tab));
  }
  dropZone($("drop"), $("file"), restoreFile);
  dropZone($("ab-drop"), $("ab-file"), abFile);
  $("slider").addEventListener("input", (e) => setSlider(Number(e.target.value)));
  for (const b of document.querySelectorAll(".zbtn")) {
    b.addEventListener("click", () => setZoom(Number(b.dataset.zoom)));
  }
  for (const b of document.querySelectorAll(".abz")) {
    b.addEventListener("click", () => setAbZoom(Number(b.dataset.abzoom)));
  }
  for (const b of $("ab-votes").querySelectorAll("button")) {
    b.addEventListener("click", () => vote(b.dataset.choice));
  }
  syncScroll($("ab-view-left"), $("ab-view-right"));
  syncScroll($("ab-view-right"), $("ab-view-left"));
  // dragging on the picture moves the slider too
  const compare = $("compare");
  let dragging = false;
  const move = (e) => {
    const rect = compare.getBoundingClientRect();
    const x = Math.min(Math.max(e.clientX - rect.left, 0), rect.width);
    setSlider(Math.round((100 * x) / rect.width));
  };
  compare.addEventListener("pointerdown", (e) => { dragging = true; move(e); });
  window.addEventListener("pointermove", (e) => { if (dragging) move(e); });
  window.addEventListener("pointerup", () => { dragging = false; });
  loadOptions().catch(() => showMessage("The server does not answer; is unblur serve running?"));
  const start = location.hash.slice(1);
  openTab(["restore", "ab", "results"].includes(start) ? start : "restore");
});
