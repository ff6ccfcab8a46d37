// One file in the upload page's queue: its card (thumbnail, title, progress bar, speed,
// status, Cancel / Try again / Remove), its credential request and its Transfer, then the
// record's status until it settles. upload.js decides when each item starts.
"use strict";

(() => {
  const { config, api, sleep, megabytes, formatSize, MB, Transfer, Cancelled } = window.vodportal;

  // Follow the status for at most this long; real transcoding can take a while.
  const FOLLOW_FOR_MS = 60 * 60 * 1000;
  // The API's names for the file's fields: their errors show under the file's name.
  const FILE_FIELDS = ["file_name", "original_file_name", "media_ext", "image_ext", "file_size"];
  const STEPS = ["uploading", "uploaded", "processing", "ready"];
  let count = 0;

  /** Turns of progress worth announcing to a screen reader (not every percent). */
  const MILESTONES = [25, 50, 75];

  class Item {
    /** form: the shared fields and announcer; done: called once the item stops using
     * the line (finished, failed or cancelled), so the next one can start. */
    constructor(file, { list, shared, announce, done, removed }) {
      count += 1;
      Object.assign(this, { file, shared, announce, done, removed, n: count });
      this.state = "pending";
      this.transfer = null;
      this.el = document.getElementById("item-template").content.firstElementChild.cloneNode(true);
      this.$ = (selector) => this.el.querySelector(selector);
      this.el.dataset.fileName = file.name;
      this.$(".file-name").textContent = file.name;
      this.$(".size").textContent = formatSize(file.size);
      const title = this.$(".title-input");
      title.id = `title-${this.n}`;
      title.value = file.name.replace(/\.[^.]*$/, ""); // a title to start from
      title.setAttribute("aria-describedby", `title-${this.n}-error`);
      this.$(".title-error").id = `title-${this.n}-error`;
      this.$(".item-title label").htmlFor = title.id;
      this.$(".bar").setAttribute("aria-label", `Upload progress of ${file.name}`);
      this.$(".cancel").setAttribute("aria-label", `Cancel ${file.name}`);
      this.$(".retry").setAttribute("aria-label", `Try again: ${file.name}`);
      this.$(".remove").setAttribute("aria-label", `Remove ${file.name}`);
      this.$(".cancel").addEventListener("click", () => this.cancel());
      this.$(".retry").addEventListener("click", () => this.retry());
      this.$(".remove").addEventListener("click", () => this.remove());
      list.append(this.el);
      this.setKind();
      this.show("pending", "Ready to upload");
    }

    /** The kind: the selector's override, else told by the extension (an unknown one is
     * offered as a video, so the API names what VOD accepts). */
    setKind() {
      if (!["pending", "invalid"].includes(this.state)) return;
      const ext = (this.file.name.match(/\.([^.]+)$/) || ["", ""])[1].toLowerCase();
      const [detected, business] = config.detect[ext] || ["video", null];
      const override = this.shared.kind();
      this.kind = override === "auto" ? detected : override;
      this.businessType = business || (config.detect[ext] || [])[1];
      this.el.dataset.kind = this.kind;
      this.$(".kind-label").textContent = config.kinds[this.kind].label;
      this.$(".item-title .optional")?.remove();
      this.thumbnail();
    }

    /** An image's preview, from an object URL released as soon as it is drawn. */
    thumbnail() {
      const img = this.$(".thumb");
      const isImage = this.kind === "image" || this.file.type.startsWith("image/");
      this.el.classList.toggle("has-thumb", isImage);
      if (!isImage || img.dataset.tried) return;
      img.dataset.tried = "1";
      const url = URL.createObjectURL(this.file);
      img.alt = `Preview of ${this.file.name}`;
      img.addEventListener("load", () => { URL.revokeObjectURL(url); img.hidden = false; }, { once: true });
      img.addEventListener("error", () => {
        URL.revokeObjectURL(url);
        this.$(".thumb-icon").textContent = "?";
        this.$(".thumb-icon").title = "This browser cannot show a preview of this image; it can still be uploaded.";
        this.el.classList.add("no-preview");
      }, { once: true });
      img.src = url;
    }

    /** state drives which buttons show (see style.css); text is the badge's words. */
    show(state, text, tone) {
      this.state = state;
      this.el.dataset.state = state;
      const badge = this.$(".item-status");
      badge.textContent = text;
      badge.className = `badge item-status ${tone ? `status-${tone}` : ""}`;
      this.$(".title-input").disabled = !["pending", "invalid"].includes(state);
      this.$(".remove").hidden = !["pending", "invalid", "ended"].includes(state);
      this.$(".cancel").hidden = !["queued", "sending", "failed"].includes(state);
      this.$(".retry").hidden = state !== "failed";
      // Resuming cannot help an image's or attached media's expired credential: start anew.
      this.$(".retry").textContent = this.canRetry === false ? "Start again" : "Try again";
      this.$(".cancel").disabled = false;
    }

    say(message, tone = "") {
      this.$(".item-message").textContent = message;
      this.$(".item-message").className = `note item-message ${tone}`;
    }

    /** The API's request for this file's kind, from its title and the shared fields. */
    payload() {
      const values = this.shared.values();
      const common = { title: this.$(".title-input").value.trim(), description: values.description,
        tags: values.tags };
      switch (this.kind) {
        case "video": return { ...common, file_name: this.file.name, file_size: this.file.size };
        case "image": return { ...common, image_type: values.image_type, original_file_name: this.file.name };
        default: return { ...common, business_type: values.business_type || this.businessType || "material",
          file_name: this.file.name, file_size: this.file.size };
      }
    }

    queue() {
      if (["pending", "invalid"].includes(this.state)) this.show("queued", "Waiting");
    }

    /** Ask for a credential, then send. Refused fields return the item to the form. */
    async start() {
      this.show("sending", "Requesting credential");
      for (const note of this.el.querySelectorAll(".error")) note.textContent = "";
      this.el.classList.remove("invalid");
      const spec = config.kinds[this.kind];
      const refused = window.vodportal.policy.refusal(this.file, this.kind);
      if (refused) {
        this.canRetry = false;
        this.say(refused, "bad");
        this.show("ended", "Not allowed", "failed");
        return this.done(this);
      }
      let issued;
      try {
        issued = await api("POST", spec.api, this.payload());
      } catch (error) {
        this.refused(error);
        return this.done(this);
      }
      this.begin(new Transfer({ spec, file: this.file, id: issued[spec.idField], upload: issued.upload,
        title: this.$(".title-input").value.trim(), hooks: this.hooks() }));
      if (this.cancelRequested) return this.discard(); // Cancel pressed while asking
      return this.send();
    }

    /** Go on with a video left unfinished by a reload: a fresh credential, the kept parts. */
    async resume(entry) {
      const spec = config.kinds[entry.kind];
      this.kind = entry.kind;
      this.$(".title-input").value = entry.title || this.$(".title-input").value;
      this.show("sending", "Resuming");
      this.begin(new Transfer({ spec, file: this.file, id: entry.id, checkpoint: entry.checkpoint,
        title: entry.title, hooks: this.hooks() }));
      this.say("Getting a fresh credential and resuming from the parts already stored…");
      try {
        await this.transfer.refresh();
      } catch (error) {
        this.transfer.forget(); // the record has moved on (cancelled, ready...): start anew
        this.canRetry = false;
        this.say(`This upload cannot be resumed: ${error.message} Remove it and upload the file again.`, "bad");
        this.show("ended", "Not resumed", "failed");
        return this.done(this);
      }
      return this.send();
    }

    begin(transfer) {
      this.transfer = transfer;
      this.el.dataset.id = transfer.id;
      if (transfer.upload) this.el.dataset.objectKey = transfer.upload.object_key;
      this.startedAt = performance.now();
      this.startedFrom = transfer.checkpoint ? transfer.checkpoint.doneParts.length * transfer.checkpoint.partSize : 0;
      this.announced = 0;
      this.showStatus("uploading");
    }

    hooks() {
      return {
        progress: (fraction) => this.progress(fraction),
        message: (text) => this.say(text),
        retrying: (attempt, ms) => {
          this.el.dataset.retries = String(attempt);
          this.say(`The connection dropped. Trying again in ${Math.max(1, Math.round(ms / 1000))} s (attempt ${attempt} of ${config.retry.attempts}), from the parts already stored…`);
          this.announce(`${this.file.name}: connection dropped, retrying.`);
        },
      };
    }

    refused(error) {
      const leftover = [];
      for (const [name, messages] of Object.entries(error.errors || {})) {
        const text = [].concat(messages).join(" ");
        if (FILE_FIELDS.includes(name)) this.$(".file-error").textContent = text;
        else if (name === "title") this.$(".title-error").textContent = text;
        else if (!this.shared.fieldError(name, text)) {
          leftover.push(name === "non_field_errors" ? text : `${name}: ${text}`);
        }
      }
      this.canRetry = false;
      this.el.classList.toggle("invalid", error.status === 400);
      this.say([error.message, ...leftover].join(" "), "bad");
      this.show("invalid", error.status === 400 ? "Needs a correction" : "Not started", "failed");
      if (this.$(".title-error").textContent) this.$(".title-input").focus();
      this.announce(`${this.file.name}: ${error.message}`);
    }

    async send() {
      this.$(".retry").hidden = true;
      this.$(".bar").classList.remove("failed");
      try {
        await this.transfer.run();
      } catch (error) {
        if (error instanceof Cancelled) return this.discard();
        this.canRetry = !this.transfer.expiredForGood(error);
        this.$(".bar").classList.add("failed");
        this.say(this.transfer.describe(error), "bad");
        this.show("failed", "Stopped", "failed");
        this.announce(`${this.file.name}: upload stopped. ${this.transfer.describe(error)}`);
        return this.done(this);
      }
      this.transfer.finished();
      this.show("following", "Uploaded", "uploaded");
      this.done(this);
      return this.follow();
    }

    async retry() {
      if (this.canRetry === false) return this.startAgain();
      this.$(".bar").classList.remove("failed");
      this.show("sending", "Resuming");
      this.say("");
      try {
        // A video goes on with a fresh credential; the others with theirs, from their parts.
        if (this.transfer.spec.refreshable) await this.transfer.refresh();
      } catch (error) {
        this.say(error.message, "bad");
        this.show("failed", "Stopped", "failed");
        return;
      }
      this.transfer.stop = new AbortController();
      this.send();
    }

    /** A new upload of the same file, the old record cancelled (it would wait for bytes). */
    async startAgain() {
      this.$(".retry").disabled = true;
      await this.transfer.discard().catch((error) => console.warn(error));
      this.$(".retry").disabled = false;
      this.canRetry = undefined;
      this.transfer = null;
      this.$(".bar").className = "bar";
      this.progress(0);
      this.start();
    }

    cancel() {
      if (this.state === "queued") {
        this.say("Cancelled before it started.");
        this.show("ended", "Cancelled", "cancelled");
        return this.done(this);
      }
      this.$(".cancel").disabled = true;
      this.say("Cancelling…");
      if (!this.transfer) {
        this.cancelRequested = true; // still asking for the credential: start() discards
        return;
      }
      this.transfer.cancelled = true;
      // While sending, ali-oss stops and run() ends in discard(); after a failure nothing
      // runs, so discard now.
      if (this.transfer.running) this.transfer.cancel();
      else this.discard();
    }

    async discard() {
      this.$(".bar").className = "bar stopped";
      this.show("ended", "Cancelling", "cancelled");
      try {
        const record = await this.transfer.discard();
        this.showStatus(record.status);
        this.say("Upload cancelled. Nothing was kept.", "bad");
      } catch (error) {
        this.say(`The upload stopped, but the record could not be cancelled: ${error.message}`, "bad");
      }
      this.show("ended", config.statuses.cancelled, "cancelled");
      this.announce(`${this.file.name}: upload cancelled.`);
      this.done(this);
    }

    remove() {
      this.el.remove();
      this.removed(this);
    }

    progress(fraction) {
      const percent = Math.floor(fraction * 100);
      const sent = fraction * this.file.size;
      const seconds = (performance.now() - this.startedAt) / 1000;
      const bar = this.$(".bar");
      this.$(".bar-fill").style.width = `${percent}%`;
      bar.setAttribute("aria-valuenow", String(percent));
      bar.setAttribute("aria-valuetext", `${percent}%, ${megabytes(sent)} of ${megabytes(this.file.size)}`);
      this.$(".percent").textContent = `${percent}%`;
      this.$(".transferred").textContent = `${megabytes(sent)} of ${megabytes(this.file.size)}`;
      const fresh = sent - this.startedFrom; // speed of this session, not of parts kept from before
      this.$(".speed").textContent = seconds > 0 && fresh > 0 ? `${(fresh / MB / seconds).toFixed(1)} MB/s` : "";
      const milestone = MILESTONES.filter((m) => percent >= m).pop();
      if (milestone && milestone > this.announced) {
        this.announced = milestone;
        this.announce(`${this.file.name}: ${milestone}% uploaded.`);
      }
    }

    showStatus(status) {
      const reached = STEPS.indexOf(status);
      for (const step of this.el.querySelectorAll(".steps li")) {
        const index = STEPS.indexOf(step.dataset.step);
        step.classList.toggle("done", reached >= 0 && (index < reached || status === "ready"));
        step.classList.toggle("current", index === reached && status !== "ready");
      }
      if (this.state === "following" || this.state === "ended") {
        this.show(this.state, config.statuses[status] || status, status);
      }
    }

    /** Poll the record about once a second until it settles (ready, failed, ...). */
    async follow() {
      this.say("Upload complete. VOD is taking over; this page follows it until it is ready.");
      this.announce(`${this.file.name}: uploaded; VOD is processing it.`);
      const until = Date.now() + FOLLOW_FOR_MS;
      while (Date.now() < until) {
        try {
          const record = await api("GET", this.transfer.recordUrl);
          this.showStatus(record.status);
          if (!config.inFlight.includes(record.status)) return this.settled(record);
        } catch (error) {
          this.say(`Could not check the status just now (${error.message}); still trying.`);
        }
        await sleep(config.pollMs);
      }
      this.say("Still not settled; My uploads keeps following it.");
    }

    settled(record) {
      this.$(".bar").classList.add("done");
      this.show("ended", config.statuses[record.status] || record.status, record.status);
      if (record.status === "ready") this.say(`${this.file.name} is ready in VOD.`, "good");
      else this.say(`VOD ended the upload as ${config.statuses[record.status] || record.status}${
        record.error ? `: ${record.error.message || record.error.code}` : ""}.`, "bad");
      this.announce(this.$(".item-message").textContent);
    }
  }

  window.vodportal.Item = Item;
})();
