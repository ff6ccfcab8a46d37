// The caller's upload policy (GET /api/v1/me/policy/): shown on the page, and each file is
// checked against it before a credential is asked for, so a file that cannot be accepted is
// refused at once, in words, without a round trip to VOD. The server checks again anyway.
"use strict";

(() => {
  const { api, formatSize } = window.vodportal;
  // The page's kinds (config.kinds keys) as the policy names them.
  const POLICY_KIND = { video: "video", image: "image", "attached-media": "attached_media" };
  let policy = null;

  function describe(current) {
    const parts = [];
    const quotas = current.quotas;
    const say = (name, what, format = (value) => value) => {
      const quota = quotas[name];
      if (quota.limit !== null) parts.push(`${format(quota.remaining)} of ${format(quota.limit)} ${what} left`);
    };
    say("daily_count", "uploads today");
    say("daily_bytes", "today", formatSize);
    say("monthly_count", "uploads this month");
    say("monthly_bytes", "this month", formatSize);
    say("max_in_flight", "uploads at once");
    for (const [kind, limits] of Object.entries(current.kinds)) {
      const label = kind.replace("_", " ");
      if (!limits.allowed) parts.push(`no ${label} uploads`);
      else if (limits.max_bytes !== null) parts.push(`${label} files up to ${formatSize(limits.max_bytes)}`);
    }
    return parts.length ? `Your upload policy (${current.policy}): ${parts.join("; ")}.` : "";
  }

  /** Load the policy and show it; a failure leaves the page as it was (the server checks). */
  async function load(note) {
    try {
      policy = await api("GET", "/api/v1/me/policy/");
    } catch (error) {
      console.warn("Could not read the upload policy:", error);
      return;
    }
    if (policy.policy) {
      note.textContent = describe(policy);
      note.hidden = false;
    }
  }

  /** Why the policy refuses `file` as a `kind` upload, or "" when it may go. */
  function refusal(file, kind) {
    if (!policy || !policy.policy) return "";
    const limits = policy.kinds[POLICY_KIND[kind]];
    if (limits && !limits.allowed) return `Your upload policy allows no ${kind.replace("-", " ")} files.`;
    const extension = file.name.includes(".") ? file.name.split(".").pop().toLowerCase() : "";
    const allowed = policy.allowed_extensions;
    if (allowed.length && extension && !allowed.includes(extension)) {
      return `Your upload policy allows only ${allowed.map((ext) => `.${ext}`).join(", ")} files.`;
    }
    if (limits && limits.max_bytes !== null && file.size > limits.max_bytes) {
      return `This file is ${formatSize(file.size)}; your upload policy allows ${formatSize(limits.max_bytes)}.`;
    }
    return "";
  }

  window.vodportal.policy = { load, refusal };
})();
