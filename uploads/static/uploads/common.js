// Shared by the upload pages: the page's configuration, vodportal's JSON API as the
// logged-in user (session cookie + CSRF header), sizes in words. Exposed as one global,
// window.vodportal, because the pages load plain scripts (no bundler, no modules needed).
"use strict";

(() => {
  const config = JSON.parse(document.getElementById("upload-config").textContent);
  for (const [kind, spec] of Object.entries(config.kinds)) spec.kind = kind;
  // The CSRF token Django put in the page: in a form's hidden field, else its cookie.
  const csrfField = document.querySelector("[name=csrfmiddlewaretoken]");
  const csrfCookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
  const csrfToken = csrfField ? csrfField.value : (csrfCookie || "").split("=")[1] || "";

  // Binary megabytes, as Django's filesizeformat counts them on My uploads.
  const MB = 1024 * 1024;
  const megabytes = (bytes) => `${(bytes / MB).toFixed(1)} MB`;

  function formatSize(bytes) {
    if (!bytes) return "—";
    const units = ["bytes", "KB", "MB", "GB", "TB"];
    const power = Math.min(Math.floor(Math.log(bytes) / Math.log(1024)), units.length - 1);
    return power === 0 ? `${bytes} bytes` : `${(bytes / 1024 ** power).toFixed(1)} ${units[power]}`;
  }

  /** A wait that Cancel can cut short: rejects with the signal's reason when aborted. */
  function sleep(ms, signal) {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer = setTimeout(resolve, ms);
      signal?.addEventListener("abort", () => { clearTimeout(timer); reject(signal.reason); },
        { once: true });
    });
  }

  class ApiError extends Error {
    constructor(response, body) {
      super(describeApiFailure(response, body));
      this.status = response.status;
      this.errors = body.errors || {};
    }
  }

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

  window.vodportal = { config, api, ApiError, sleep, megabytes, formatSize, MB };
})();
