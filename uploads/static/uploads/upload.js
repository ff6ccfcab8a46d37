// The upload page: files dropped on the page or chosen with the picker join a queue; each
// is sent straight to VOD's OSS bucket (queue.js, transfer.js), a few at a time. Videos left
// unfinished by a reload are listed, and resume when the same file is chosen again.
"use strict";

(() => {
  const { config, api, Item, resumeStore, policy } = window.vodportal;
  const $ = (id) => document.getElementById(id);
  const form = $("upload-form");
  const dropzone = $("dropzone");
  const items = [];

  // The hint names these first when VOD accepts many formats (videos: 36).
  const POPULAR = ["mp4", "mov", "mkv", "webm", "avi", "mp3", "m4a", "wav"];
  const SHARED_FIELDS = ["description", "tags", "image_type", "business_type"];
  const kind = () => form.elements.kind.value;

  /** Polite announcements for screen readers: one region for the whole queue. */
  function announce(text) {
    $("announcer").textContent = text;
  }

  const shared = {
    kind,
    values: () => Object.fromEntries(SHARED_FIELDS.map((name) => [name, $(name).value.trim()])),
    /** Show an error of a shared field next to it; false when the name is not one. */
    fieldError(name, text) {
      if (!SHARED_FIELDS.includes(name)) return false;
      $(`${name}-error`).textContent = text;
      $(name).closest(".field").classList.add("invalid");
      return true;
    },
  };

  // --- the form ------------------------------------------------------------------------

  function showKind() {
    const current = kind();
    const kinds = new Set(items.filter((item) => ["pending", "invalid"].includes(item.state))
      .map((item) => item.kind));
    if (current !== "auto") kinds.add(current);
    for (const element of form.querySelectorAll("[data-kinds]")) {
      element.hidden = !element.dataset.kinds.split(" ").some((k) => kinds.has(k));
    }
    let extensions;
    if (current === "auto") extensions = Object.keys(config.detect).sort();
    else if (current === "attached-media" && $("business_type").value) {
      extensions = $("business_type").selectedOptions[0].dataset.extensions.split(",");
    } else extensions = config.kinds[current].extensions;
    $("file").accept = extensions.map((ext) => `.${ext}`).join(",");
    const shown = extensions.length > POPULAR.length ? POPULAR.filter((ext) => extensions.includes(ext))
      : extensions;
    const more = extensions.length - shown.length;
    $("file-hint").textContent = `VOD accepts: ${shown.join(", ")}${more ? ` and ${more} more` : ""}.`;
    $("file-hint").title = extensions.join(", ");
    const waiting = items.filter((item) => ["pending", "invalid"].includes(item.state)).length;
    $("start").textContent = waiting > 1 ? `Upload ${waiting} files` : "Upload";
  }

  function clearErrors() {
    for (const name of SHARED_FIELDS) {
      $(`${name}-error`).textContent = "";
      $(name).closest(".field").classList.remove("invalid");
    }
    $("file-error").textContent = "";
    $("form-error").textContent = "";
  }

  /** Files from the picker or a drop: a kept video resumes at once; the rest wait for
   * Upload. An image or attached media left by a reload starts over (VOD gives them no
   * new credential): its old record is cancelled. */
  function add(files) {
    $("file-error").textContent = "";
    for (const file of files) {
      const kept = resumeStore.match(file);
      const item = new Item(file, { list: $("queue"), shared, announce, done: pump, removed });
      items.push(item);
      if (kept && config.kinds[kept.kind]?.refreshable) {
        item.resume(kept).finally(showResumable);
      } else if (kept) {
        resumeStore.remove(kept.id);
        api("DELETE", `${config.kinds[kept.kind].api}${kept.id}/`).catch(() => {});
        item.say("Its earlier upload could not be resumed (VOD gives images and attached media no new credential), so it starts again.");
      }
    }
    announce(`${files.length} file${files.length === 1 ? "" : "s"} added to the queue.`);
    showKind();
    showResumable();
  }

  function removed(item) {
    items.splice(items.indexOf(item), 1);
    showKind();
    $("file").focus(); // the removed card had the focus: put it somewhere useful
  }

  /** Start waiting items while fewer than filesAtOnce are sending. */
  function pump() {
    let sending = items.filter((item) => item.state === "sending").length;
    for (const item of items) {
      if (sending >= config.filesAtOnce) break;
      if (item.state === "queued") {
        sending += 1;
        item.start();
      }
    }
    const busy = items.some((item) => ["queued", "sending", "failed"].includes(item.state));
    if (busy) window.addEventListener("beforeunload", warnBeforeLeaving);
    else window.removeEventListener("beforeunload", warnBeforeLeaving);
    showKind();
  }

  function warnBeforeLeaving(event) {
    event.preventDefault();
  }

  form.addEventListener("change", (event) => {
    if (event.target.id === "file") {
      add([...event.target.files]);
      event.target.value = ""; // choosing the same file again must fire another change
      return;
    }
    if (event.target.name === "kind") for (const item of items) item.setKind();
    if (event.target.name === "kind" || event.target.id === "business_type") showKind();
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors();
    const waiting = items.filter((item) => ["pending", "invalid"].includes(item.state));
    if (!waiting.length) {
      $("file-error").textContent = "Choose a file to upload.";
      $("file").focus();
      return;
    }
    for (const item of waiting) {
      item.setKind();
      item.queue();
    }
    pump();
  });

  // --- drag and drop -------------------------------------------------------------------
  // The whole page takes a drop (a miss beside the zone must not open the file in the
  // tab, which would end the uploads); the zone shows where.

  let dragDepth = 0;
  const carriesFiles = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
  document.addEventListener("dragenter", (event) => {
    if (!carriesFiles(event)) return;
    dragDepth += 1;
    dropzone.classList.add("dragging");
  });
  document.addEventListener("dragleave", () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) dropzone.classList.remove("dragging");
  });
  document.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  document.addEventListener("drop", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    dragDepth = 0;
    dropzone.classList.remove("dragging");
    const files = [...event.dataTransfer.files];
    if (files.length) add(files);
  });

  // --- uploads left unfinished by a reload ----------------------------------------------

  function showResumable() {
    const inQueue = new Set(items.map((item) => item.transfer?.id).filter(Boolean));
    const entries = resumeStore.all().filter((entry) => !inQueue.has(entry.id) && config.kinds[entry.kind]);
    const list = $("resume-list");
    list.replaceChildren();
    for (const entry of entries) {
      const spec = config.kinds[entry.kind];
      const row = document.createElement("li");
      row.dataset.id = entry.id;
      const name = document.createElement("strong");
      name.textContent = entry.fileName;
      const parts = entry.checkpoint ? entry.checkpoint.doneParts.length * entry.checkpoint.partSize : 0;
      const text = document.createElement("span");
      text.className = "sub";
      text.textContent = spec.refreshable
        ? `${Math.min(100, Math.floor((parts / entry.fileSize) * 100))}% stored. Choose the same file again to resume.`
        : `${spec.label} uploads cannot be resumed: VOD gives them no new credential. Choose the file again to start over.`;
      const discard = document.createElement("button");
      discard.type = "button";
      discard.textContent = "Discard";
      discard.setAttribute("aria-label", `Discard the unfinished upload of ${entry.fileName}`);
      discard.addEventListener("click", async () => {
        discard.disabled = true;
        resumeStore.remove(entry.id);
        // Cancel the record too: its media would wait in VOD for bytes that never come.
        await api("DELETE", `${spec.api}${entry.id}/`).catch((error) => console.warn(error));
        showResumable();
        $("file").focus();
      });
      row.append(name, " ", text, " ", discard);
      list.append(row);
    }
    $("resume-panel").hidden = entries.length === 0;
  }

  showKind();
  showResumable();
  policy.load($("policy-note"));
})();
