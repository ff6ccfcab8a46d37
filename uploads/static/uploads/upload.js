// The upload page. Asks vodportal's API for an upload credential (session + CSRF), sends the
// file straight to VOD's OSS bucket with ali-oss (multipart, resumable), then follows the
// record's status through the API until it settles. The STS credential lives only in this
// page's memory, for as long as the upload runs.
"use strict";

(() => {
  const config = JSON.parse(document.getElementById("upload-config").textContent);
  const $ = (id) => document.getElementById(id);
  const form = $("upload-form");
  const csrfToken = form.querySelector("[name=csrfmiddlewaretoken]").value;

  // ali-oss uploads files of 100 KB and more in parts; 1 MB parts (its default) keep the
  // progress bar moving and make a retried part cheap. Three at a time fill most lines.
  const PART_SIZE = 1024 * 1024;
  const PARALLEL = 3;
  // A video's credential may expire mid-upload (VOD gives 3,000 s); refresh it at most this
  // often per upload, so a credential the storage keeps refusing cannot loop forever.
  const MAX_REFRESHES = 3;
  // Follow the status for at most this long; real transcoding can take a while.
  const FOLLOW_FOR_MS = 60 * 60 * 1000;
  // The API's names for the file's fields: their errors show next to the file picker.
  const FILE_FIELDS = ["file_name", "original_file_name", "media_ext", "image_ext", "file_size"];
  const FORM_FIELDS = ["title", "description", "tags", "image_type", "business_type", "file"];
  // The hint names these first when VOD accepts many formats (videos: 36).
  const POPULAR = ["mp4", "mov", "mkv", "webm", "avi", "mp3", "m4a", "wav"];
  const REFUSED_CREDENTIAL = ["InvalidAccessKeyId", "InvalidSecurityToken", "SignatureDoesNotMatch",
    "AccessKeyIdAndSecurityTokenNotMatch", "AccessDenied", "RequestTimeTooSkewed"];

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  // Binary megabytes, as Django's filesizeformat counts them on My uploads.
  const MB = 1024 * 1024;
  const megabytes = (bytes) => `${(bytes / MB).toFixed(1)} MB`;
  const kind = () => form.elements.kind.value;

  class ApiError extends Error {
    constructor(response, body) {
      super(describeApiFailure(response, body));
      this.status = response.status;
      this.errors = body.errors || {};
    }
  }

  class Cancelled extends Error {}

  function describeApiFailure(response, body) {
    if (response.status === 400 && body.errors) return "Please correct the marked fields.";
    if (response.status === 401 || response.status === 403) {
      return "Your session has ended or this page is out of date: reload it and log in again.";
    }
    if (response.status === 429) {
      const wait = response.headers.get("Retry-After");
      return `Too many requests just now${wait ? `: try again in ${wait} s` : ""}.`;
    }
    return body.detail || `vodportal answered with an error (HTTP ${response.status}).`;
  }

  /** Call vodportal's JSON API as the logged-in user; throws ApiError with words to show. */
  async function api(method, url, payload) {
    let response;
    try {
      response = await fetch(url, {
        method, credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken },
        body: payload === undefined ? undefined : JSON.stringify(payload),
      });
    } catch (error) {
      throw new Error(`Could not reach vodportal (${error.message}): check your connection.`);
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new ApiError(response, body);
    return body;
  }

  // --- the form ------------------------------------------------------------------------

  function showKind() {
    const current = kind();
    for (const element of document.querySelectorAll("[data-kinds]")) {
      element.hidden = !element.dataset.kinds.split(" ").includes(current);
    }
    const business = $("business_type").selectedOptions[0];
    const extensions = current === "attached-media" ? business.dataset.extensions.split(",")
      : config.kinds[current].extensions;
    $("file").accept = extensions.map((ext) => `.${ext}`).join(",");
    const shown = extensions.length > POPULAR.length ? POPULAR.filter((ext) => extensions.includes(ext))
      : extensions;
    const more = extensions.length - shown.length;
    $("file-hint").textContent = `VOD accepts: ${shown.join(", ")}${more ? ` and ${more} more` : ""}.`;
    $("file-hint").title = extensions.join(", ");
  }

  function clearErrors() {
    for (const field of FORM_FIELDS) showFieldError(field, "");
    $("form-error").textContent = "";
  }

  function showFieldError(field, message) {
    $(`${field}-error`).textContent = message;
    $(field).closest(".field").classList.toggle("invalid", Boolean(message));
  }

  /** Put each of the API's field errors next to its field; the rest above the button. */
  function showApiError(error) {
    const leftover = [];
    for (const [name, messages] of Object.entries(error.errors || {})) {
      const field = FILE_FIELDS.includes(name) ? "file" : name;
      const text = [].concat(messages).join(" ");
      if (FORM_FIELDS.includes(field)) showFieldError(field, text);
      else leftover.push(name === "non_field_errors" ? text : `${name}: ${text}`);
    }
    $("form-error").textContent = [error.message, ...leftover].join(" ");
    form.querySelector(".field.invalid input, .field.invalid select, .field.invalid textarea")?.focus();
  }

  function payloadFor(file) {
    const common = { title: $("title").value.trim(), description: $("description").value.trim(),
      tags: $("tags").value.trim() };
    switch (kind()) {
      case "video": return { ...common, file_name: file.name, file_size: file.size };
      case "image": return { ...common, image_type: $("image_type").value, original_file_name: file.name };
      default: return { ...common, business_type: $("business_type").value, file_name: file.name,
        file_size: file.size };
    }
  }

  form.addEventListener("change", (event) => {
    if (event.target.name === "kind" || event.target.id === "business_type") showKind();
    // A title to start from: the file's name without its extension.
    if (event.target.id === "file" && !$("title").value && event.target.files[0]) {
      $("title").value = event.target.files[0].name.replace(/\.[^.]*$/, "");
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const file = $("file").files[0];
    if (!file) return showFieldError("file", "Choose a file to upload.");
    $("start").disabled = true;
    try {
      const spec = config.kinds[kind()];
      const issued = await api("POST", spec.api, payloadFor(file));
      startUpload({ spec, file, id: issued[spec.idField], upload: issued.upload });
    } catch (error) {
      showApiError(error);
      $("start").disabled = false;
    }
  });

  // --- the upload ----------------------------------------------------------------------

  let session = null;

  function startUpload(fresh) {
    session = { ...fresh, checkpoint: null, client: null, running: false, cancelled: false, refreshes: 0,
      startedAt: performance.now(), recordUrl: `${fresh.spec.api}${fresh.id}/` };
    form.hidden = true;
    $("progress-panel").hidden = false;
    $("progress-title").textContent = `Uploading ${fresh.file.name}`;
    window.addEventListener("beforeunload", warnBeforeLeaving);
    showStatus("uploading");
    run();
  }

  function warnBeforeLeaving(event) {
    event.preventDefault();
  }

  async function run() {
    $("retry").hidden = true;
    $("cancel").hidden = false;
    say("");
    session.running = true;
    try {
      await transfer();
    } catch (error) {
      session.running = false;
      if (session.cancelled) return cancel();
      return failed(describeUploadFailure(error), !isExpiredForGood(error));
    }
    session.running = false;
    // A small file goes up in one request, which cancelling cannot stop: undo it instead.
    if (session.cancelled) return cancel();
    // The bytes are in; the credential is of no more use to anyone.
    session.upload = null;
    session.client = null;
    $("cancel").hidden = true;
    window.removeEventListener("beforeunload", warnBeforeLeaving);
    showProgress(1);
    follow();
  }

  function ossClient(upload) {
    return new OSS({
      endpoint: upload.endpoint, bucket: upload.bucket,
      accessKeyId: upload.access_key_id, accessKeySecret: upload.access_key_secret,
      stsToken: upload.security_token, timeout: 120000,
    });
  }

  /** Upload, or resume from the last checkpoint; an expired video credential is refreshed
   * through the API and the upload resumed with the new one. */
  async function transfer() {
    for (;;) {
      if (session.cancelled) throw new Cancelled();
      session.client = ossClient(session.upload);
      try {
        await session.client.multipartUpload(session.upload.object_key, session.file, {
          partSize: PART_SIZE, parallel: PARALLEL, checkpoint: session.checkpoint || undefined,
          progress: (fraction, checkpoint) => {
            if (checkpoint) session.checkpoint = checkpoint;
            showProgress(fraction);
          },
        });
        return;
      } catch (error) {
        const expired = error.code === "SecurityTokenExpired";
        if (session.cancelled || !expired || !session.spec.refreshable
            || session.refreshes >= MAX_REFRESHES) throw error;
        session.refreshes += 1;
        say("The upload credential expired; getting a fresh one and resuming…");
        session.upload = (await api("POST", `${session.recordUrl}refresh/`)).upload;
        say("Resumed with a fresh credential.");
      }
    }
  }

  function describeUploadFailure(error) {
    const ref = error.requestId ? ` (request id ${error.requestId})` : "";
    if (error instanceof ApiError || !("status" in error)) return error.message;
    if (error.status === -1 || error.status === -2 || error.status === 0) {
      return "The storage could not be reached (network error or timeout). Check your connection, then try again.";
    }
    if (isExpiredForGood(error)) {
      return `The upload credential expired${ref}. Images and attached media get no new one: start a new upload.`;
    }
    if (error.code === "SecurityTokenExpired") {
      return `The upload credential expired${ref}. Try again to continue with a fresh one.`;
    }
    if (REFUSED_CREDENTIAL.includes(error.code)) {
      return `The storage refused the upload credential: ${error.code}${ref}. Try again; if it keeps failing, tell your administrator.`;
    }
    return `The storage refused the upload: ${error.message} (${error.code || `HTTP ${error.status}`})${ref}.`;
  }

  /** VOD refreshes only a video's credential; an image's or attached media's is final. */
  function isExpiredForGood(error) {
    return error.code === "SecurityTokenExpired" && !session.spec.refreshable;
  }

  function failed(message, canRetry = true) {
    say(message, "bad");
    $("bar").classList.add("failed");
    // A multipart upload can go on from its checkpoint; a video also with a new credential.
    $("retry").hidden = !canRetry;
    $("another").hidden = canRetry;
  }

  $("retry").addEventListener("click", async () => {
    $("bar").classList.remove("failed");
    try {
      if (session.spec.refreshable) session.upload = (await api("POST", `${session.recordUrl}refresh/`)).upload;
    } catch (error) {
      return failed(error.message);
    }
    run();
  });

  $("cancel").addEventListener("click", () => {
    $("cancel").disabled = true;
    say("Cancelling…");
    session.cancelled = true;
    // ali-oss stops starting parts at once; the upload's promise then rejects and run()
    // calls cancel(). After a failure nothing is running, so cancel() directly.
    if (session.running) session.client?.cancel();
    else cancel();
  });

  /** Drop the parts already stored, then cancel the record: VOD deletes the media, so no
   * empty video is left waiting for bytes that will never come. */
  async function cancel() {
    window.removeEventListener("beforeunload", warnBeforeLeaving);
    $("retry").hidden = true;
    $("cancel").hidden = true;
    $("progress-title").textContent = session.file.name;
    $("bar").className = "bar stopped";
    const uploadId = session.checkpoint?.uploadId;
    if (uploadId) {
      try {
        await ossClient(session.upload).abortMultipartUpload(session.upload.object_key, uploadId);
      } catch (error) {
        // Already gone or unreachable: the record is cancelled all the same, and VOD drops
        // a deleted media's storage.
        console.warn("Aborting the multipart upload failed:", error);
      }
    }
    session.upload = null;
    try {
      const record = await api("DELETE", session.recordUrl);
      showStatus(record.status);
      say("Upload cancelled. Nothing was kept.", "bad");
    } catch (error) {
      say(`The upload stopped, but the record could not be cancelled: ${error.message}`, "bad");
    }
    $("another").hidden = false;
  }

  // --- progress and status -------------------------------------------------------------

  function showProgress(fraction) {
    const percent = Math.floor(fraction * 100);
    const sent = fraction * session.file.size;
    const seconds = (performance.now() - session.startedAt) / 1000;
    $("bar-fill").style.width = `${percent}%`;
    $("bar").setAttribute("aria-valuenow", String(percent));
    $("percent").textContent = `${percent}%`;
    $("transferred").textContent = `${megabytes(sent)} of ${megabytes(session.file.size)}`;
    $("speed").textContent = seconds > 0 && sent > 0 ? `${(sent / MB / seconds).toFixed(1)} MB/s` : "";
  }

  function showStatus(status) {
    const badge = $("status");
    badge.textContent = config.statuses[status] || status;
    badge.className = `badge status-${status}`;
    const order = ["uploading", "uploaded", "processing", "ready"];
    const reached = order.indexOf(status);
    for (const step of document.querySelectorAll("#steps li")) {
      const index = order.indexOf(step.dataset.step);
      step.classList.toggle("done", reached >= 0 && (index < reached || status === "ready"));
      step.classList.toggle("current", index === reached && status !== "ready");
    }
  }

  function say(message, tone = "") {
    $("upload-message").textContent = message;
    $("upload-message").className = `note ${tone}`;
  }

  /** Poll the record about once a second until it settles (ready, failed, ...). */
  async function follow() {
    say("Upload complete. VOD is taking over; this page follows it until it is ready.");
    const until = Date.now() + FOLLOW_FOR_MS;
    while (Date.now() < until) {
      try {
        const record = await api("GET", session.recordUrl);
        showStatus(record.status);
        if (!config.inFlight.includes(record.status)) return settled(record);
      } catch (error) {
        say(`Could not check the status just now (${error.message}); still trying.`);
      }
      await sleep(config.pollMs);
    }
    say("Still not settled; My uploads keeps following it.");
  }

  function settled(record) {
    $("bar").classList.add("done");
    $("progress-title").textContent = session.file.name;
    if (record.status === "ready") say(`${session.file.name} is ready in VOD.`, "good");
    else say(`VOD ended the upload as ${config.statuses[record.status] || record.status}${
      record.error ? `: ${record.error.message || record.error.code}` : ""}.`, "bad");
    $("another").hidden = false;
  }

  showKind();
})();
