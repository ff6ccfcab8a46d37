// One file's way to VOD's storage, without any page: ali-oss multipart with a checkpoint,
// automatic retries of dropped connections, fresh credentials for an expired video, cancel,
// and the checkpoint kept in localStorage so a reload can resume. The STS credential stays
// in this object's memory only: never in storage, never in the DOM.
"use strict";

(() => {
  const { config, api, sleep } = window.vodportal;

  // ali-oss uploads files of 100 KB and more in parts; 1 MB parts (its default) keep the
  // progress bar moving and make a retried part cheap. Three at a time fill most lines.
  const PART_SIZE = 1024 * 1024;
  const PARALLEL = 3;
  // A video's credential may expire mid-upload (VOD gives 3,000 s); refresh it at most this
  // often per upload, so a credential the storage keeps refusing cannot loop forever.
  const MAX_REFRESHES = 3;
  // OSS drops an unfinished multipart upload's parts after some days, and VOD's upload
  // address with them: an older checkpoint would only fail, so it is forgotten.
  const RESUME_FOR_MS = 3 * 24 * 3600 * 1000;
  const REFUSED_CREDENTIAL = ["InvalidAccessKeyId", "InvalidSecurityToken", "SignatureDoesNotMatch",
    "AccessKeyIdAndSecurityTokenNotMatch", "AccessDenied", "RequestTimeTooSkewed"];
  // ali-oss's statuses for a request that got no answer: -1 network error, -2 timeout (0
  // from some browsers' XHR).
  const NO_ANSWER = [-1, -2, 0];

  class Cancelled extends Error {
    constructor() { super("Cancelled"); this.name = "cancel"; }
  }

  const isNetworkError = (error) => NO_ANSWER.includes(error.status);

  // --- checkpoints kept across reloads ---------------------------------------------------
  // Keyed by user and media id. What is kept: ali-oss's checkpoint without its File (the
  // uploadId, object name, sizes and the parts done with their ETags) and how to recognise
  // the file again (name, size, lastModified). Never the credential.
  const PREFIX = `vodportal.upload.${config.user}.`;
  const resumeStore = {
    save(entry) {
      try {
        localStorage.setItem(PREFIX + entry.id, JSON.stringify({ ...entry, savedAt: Date.now() }));
      } catch (error) {
        // Full or disabled storage only costs the resume after a reload.
        console.warn("Could not keep the upload's checkpoint:", error);
      }
    },
    remove(id) {
      try { localStorage.removeItem(PREFIX + id); } catch (error) { /* nothing kept then */ }
    },
    all() {
      const entries = [];
      try {
        for (let i = 0; i < localStorage.length; i += 1) {
          const key = localStorage.key(i);
          if (!key.startsWith(PREFIX)) continue;
          const entry = JSON.parse(localStorage.getItem(key));
          if (Date.now() - entry.savedAt > RESUME_FOR_MS) localStorage.removeItem(key);
          else entries.push(entry);
        }
      } catch (error) {
        console.warn("Could not read the kept checkpoints:", error);
      }
      return entries.sort((a, b) => a.savedAt - b.savedAt);
    },
    /** The kept upload this file is the same file as (name, size and time it was changed). */
    match(file) {
      return this.all().find((entry) => entry.fileName === file.name && entry.fileSize === file.size
        && entry.lastModified === file.lastModified);
    },
  };

  function ossClient(upload) {
    return new OSS({
      endpoint: upload.endpoint, bucket: upload.bucket,
      accessKeyId: upload.access_key_id, accessKeySecret: upload.access_key_secret,
      stsToken: upload.security_token, timeout: 120000,
    });
  }

  class Transfer {
    /** spec: the kind's config; id/recordUrl: the record; upload: the credential (null
     * when resuming: refresh() gets one); checkpoint: a kept one to go on from. */
    constructor({ spec, file, id, upload = null, checkpoint = null, title = "", hooks }) {
      Object.assign(this, { spec, file, id, upload, title, hooks });
      this.recordUrl = `${spec.api}${id}/`;
      this.checkpoint = checkpoint ? { ...checkpoint, file } : null;
      this.refreshes = 0;
      this.retries = 0;
      this.cancelled = false;
      this.running = false;
      this.client = null;
      this.stop = new AbortController();
      this.keep();
    }

    keep() {
      const cp = this.checkpoint;
      resumeStore.save({ id: this.id, kind: this.spec.kind, title: this.title, fileName: this.file.name,
        fileSize: this.file.size, lastModified: this.file.lastModified,
        checkpoint: cp && { name: cp.name, fileSize: cp.fileSize, partSize: cp.partSize,
          uploadId: cp.uploadId, doneParts: cp.doneParts } });
    }

    forget() {
      resumeStore.remove(this.id);
    }

    /** A new credential for the same video (VOD's RefreshUploadVideo, through the API). */
    async refresh() {
      this.upload = (await api("POST", `${this.recordUrl}refresh/`)).upload;
    }

    /** Send the bytes; a dropped connection is retried from the stored parts with growing,
     * jittered waits. Throws Cancelled, or the last error once retrying cannot help. */
    async run() {
      this.running = true;
      try {
        for (let attempt = 0; ; attempt += 1) {
          try {
            await this.send();
            if (this.cancelled) throw new Cancelled(); // a one-request upload cannot be stopped
            return;
          } catch (error) {
            if (this.cancelled) throw new Cancelled();
            if (!isNetworkError(error) || attempt >= config.retry.attempts) throw error;
            const wait = config.retry.baseMs * 2 ** attempt * (0.5 + Math.random());
            this.retries += 1;
            this.hooks.retrying(attempt + 1, wait);
            await sleep(wait, this.stop.signal).catch(() => { throw new Cancelled(); });
          }
        }
      } finally {
        this.running = false;
      }
    }

    /** Upload, or go on from the checkpoint; an expired video credential is refreshed and
     * the upload resumed with the new one. */
    async send() {
      for (;;) {
        if (this.cancelled) throw new Cancelled();
        this.client = ossClient(this.upload);
        try {
          await this.client.multipartUpload(this.upload.object_key, this.file, {
            partSize: PART_SIZE, parallel: PARALLEL, checkpoint: this.checkpoint || undefined,
            progress: (fraction, checkpoint) => {
              if (checkpoint) {
                this.checkpoint = checkpoint;
                this.keep();
              }
              this.hooks.progress(fraction);
            },
          });
          this.hooks.progress(1);
          return;
        } catch (error) {
          const expired = error.code === "SecurityTokenExpired";
          if (this.cancelled || !expired || !this.spec.refreshable
              || this.refreshes >= MAX_REFRESHES) throw error;
          this.refreshes += 1;
          this.hooks.message("The upload credential expired; getting a fresh one and resuming…");
          await this.refresh();
          this.hooks.message("Resumed with a fresh credential.");
        }
      }
    }

    /** Stop at once: ali-oss starts no more parts, a retry's wait ends. */
    cancel() {
      this.cancelled = true;
      this.stop.abort();
      if (this.running) this.client?.cancel();
    }

    /** Drop the parts already stored, then cancel the record: VOD deletes the media, so
     * no empty video is left waiting for bytes that will never come. Returns the record. */
    async discard() {
      this.forget();
      const uploadId = this.checkpoint?.uploadId;
      if (uploadId && this.upload) {
        try {
          await ossClient(this.upload).abortMultipartUpload(this.upload.object_key, uploadId);
        } catch (error) {
          // Already gone or unreachable: the record is cancelled all the same, and VOD
          // drops a deleted media's storage.
          console.warn("Aborting the multipart upload failed:", error);
        }
      }
      this.upload = null;
      return api("DELETE", this.recordUrl);
    }

    /** The bytes are in: the credential and the checkpoint are of no more use. */
    finished() {
      this.forget();
      this.upload = null;
      this.client = null;
    }

    /** VOD refreshes only a video's credential; an image's or attached media's is final. */
    expiredForGood(error) {
      return error.code === "SecurityTokenExpired" && !this.spec.refreshable;
    }

    describe(error) {
      const ref = error.requestId ? ` (request id ${error.requestId})` : "";
      if (error instanceof window.vodportal.ApiError || !("status" in error)) return error.message;
      if (isNetworkError(error)) {
        return "The storage could not be reached (network error or timeout). Check your connection, then try again.";
      }
      if (this.expiredForGood(error)) {
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
  }

  Object.assign(window.vodportal, { Transfer, Cancelled, resumeStore });
})();
