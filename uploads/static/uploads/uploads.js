// My uploads: keep the status of every upload still in flight up to date. About once a
// second it asks the API's list of each kind that has such a row (never one request per
// row), and stops once every row has settled. Times are shown in the browser's time zone.
"use strict";

(() => {
  const config = JSON.parse(document.getElementById("upload-config").textContent);
  const table = document.getElementById("uploads");
  const liveNote = document.getElementById("live-note");
  // The first page of a kind's list: enough to find the rows this page shows.
  const PAGE_SIZE = 100;

  for (const time of document.querySelectorAll("time[datetime]")) {
    time.textContent = new Date(time.dateTime).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  }
  if (!table) return;

  const liveRows = () => [...table.querySelectorAll("tr[data-live]")];
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function formatSize(bytes) {
    if (!bytes) return "—";
    const units = ["bytes", "KB", "MB", "GB", "TB"];
    const power = Math.min(Math.floor(Math.log(bytes) / Math.log(1024)), units.length - 1);
    return power === 0 ? `${bytes} bytes` : `${(bytes / 1024 ** power).toFixed(1)} ${units[power]}`;
  }

  function update(row, record) {
    const badge = row.querySelector("[data-status]");
    if (badge.dataset.status !== record.status) {
      badge.dataset.status = record.status;
      badge.textContent = config.statuses[record.status] || record.status;
      badge.className = `badge status-${record.status}`;
    }
    const note = row.querySelector(".error-note");
    note.textContent = record.error ? record.error.message || record.error.code : "";
    note.hidden = !record.error;
    row.querySelector(".size").textContent = formatSize(record.file_size);
    if (!config.inFlight.includes(record.status)) delete row.dataset.live;
  }

  /** One round: the newest records of each kind with a live row, matched by media id. */
  async function refresh() {
    const kinds = new Set(liveRows().map((row) => row.dataset.kind));
    for (const kind of kinds) {
      const spec = config.kinds[kind];
      const response = await fetch(`${spec.api}?page_size=${PAGE_SIZE}`, {
        credentials: "same-origin", headers: { Accept: "application/json" },
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const page = await response.json();
      const records = new Map(page.results.map((r) => [r[spec.idField], r]));
      for (const row of liveRows().filter((r) => r.dataset.kind === kind)) {
        const record = records.get(row.dataset.id);
        if (record) update(row, record);
        else if (!page.next) delete row.dataset.live; // the whole list came: it is gone
      }
    }
  }

  async function poll() {
    while (liveRows().length) {
      liveNote.hidden = false;
      // A hidden tab need not be kept current; it catches up when shown again.
      if (document.visibilityState === "visible") {
        try {
          await refresh();
        } catch (error) {
          console.warn("Could not refresh the statuses:", error);
        }
      }
      await sleep(config.pollMs);
    }
    liveNote.hidden = true;
  }

  poll();
})();
