// My uploads: the actions the API allows on each row (a video's new credential; cancel or
// delete, confirmed first), and the status of every upload still in flight kept up to
// date. About once a second it asks the API's list of each kind that has such a row (one
// request per kind, not per row; a row too old for that first page is asked for alone),
// and stops once every row has settled. Times are shown in the browser's time zone.
"use strict";

(() => {
  const { config, api, sleep, formatSize } = window.vodportal;
  const table = document.getElementById("uploads");
  const liveNote = document.getElementById("live-note");
  const announcer = document.getElementById("row-announcer");
  // The first page of a kind's list: enough to find the rows still moving, nearly always.
  const PAGE_SIZE = 100;
  // Statuses VOD takes a new credential in (services: REFRESHABLE_STATUSES), as offered
  // here: for a video still waiting for its bytes.
  const RENEWABLE = ["uploading", "expired"];
  // Before the file reached VOD, removing the record cancels it; after, it deletes the media.
  const CANCELLABLE = ["requesting", "uploading", "expired"];
  const ENDED = ["cancelled", "deleted"];

  for (const time of document.querySelectorAll("time[datetime]")) {
    time.textContent = new Date(time.dateTime).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  }
  if (!table) return;

  const liveRows = () => [...table.querySelectorAll("tr[data-live]")];
  const recordUrl = (row) => `${config.kinds[row.dataset.kind].api}${row.dataset.id}/`;

  function update(row, record) {
    const badge = row.querySelector("[data-status]");
    if (badge.dataset.status !== record.status) {
      badge.dataset.status = record.status;
      badge.textContent = config.statuses[record.status] || record.status;
      badge.className = `badge status-${record.status}`;
      showActions(row);
    }
    const note = row.querySelector(".error-note");
    note.textContent = record.error ? record.error.message || record.error.code : "";
    note.hidden = !record.error;
    row.querySelector(".size").textContent = formatSize(record.file_size);
    if (config.inFlight.includes(record.status)) row.dataset.live = "";
    else delete row.dataset.live;
  }

  // --- row actions ----------------------------------------------------------------------

  function button(text, label, onClick, tone = "") {
    const element = document.createElement("button");
    element.type = "button";
    element.textContent = text;
    element.className = tone;
    element.setAttribute("aria-label", label);
    element.addEventListener("click", () => onClick(element));
    return element;
  }

  /** The buttons a row's status allows; redrawn when the status changes. */
  function showActions(row) {
    const box = row.querySelector(".row-actions");
    const status = row.querySelector("[data-status]").dataset.status;
    const name = box.dataset.name;
    box.replaceChildren();
    if (!row.dataset.id || ENDED.includes(status)) return;
    if (config.kinds[row.dataset.kind].refreshable && RENEWABLE.includes(status)) {
      box.append(button("New credential", `New upload credential for ${name}`, (b) => renew(row, b)));
    }
    const cancelling = CANCELLABLE.includes(status);
    box.append(button(cancelling ? "Cancel" : "Delete", `${cancelling ? "Cancel" : "Delete"} ${name}`,
      (b) => remove(row, b, cancelling), "danger"));
  }

  function tell(row, text, tone = "") {
    const note = row.querySelector(".row-note");
    note.textContent = text;
    note.className = `row-note ${tone}`;
    announcer.textContent = `${row.querySelector(".row-actions").dataset.name}: ${text}`;
  }

  /** A fresh credential for a video waiting for its bytes (or whose credential expired):
   * the answer's credential is dropped at once; only the status matters here. */
  async function renew(row, element) {
    element.disabled = true;
    try {
      const issued = await api("POST", `${recordUrl(row)}refresh/`);
      update(row, issued);
      tell(row, "It can be uploaded again: choose the file on the Upload page (it resumes there if this browser started it).");
      poll();
    } catch (error) {
      tell(row, error.message, "bad");
      element.disabled = false;
    }
  }

  async function remove(row, element, cancelling) {
    const name = row.querySelector(".row-actions").dataset.name;
    const question = cancelling
      ? `Cancel the upload of “${name}”? VOD drops it and nothing is kept.`
      : `Delete “${name}” from VOD? Its media and its transcoded copies are deleted; this cannot be undone.`;
    if (!window.confirm(question)) return;
    element.disabled = true;
    try {
      update(row, await api("DELETE", recordUrl(row)));
      tell(row, cancelling ? "Upload cancelled." : "Deleted in VOD.");
      // Nothing left to do with it: the focus goes back to the row's title, not the void.
      row.querySelector(".title").setAttribute("tabindex", "-1");
      row.querySelector(".title").focus();
    } catch (error) {
      tell(row, error.message, "bad");
      element.disabled = false;
    }
  }

  for (const row of table.querySelectorAll("tbody tr")) showActions(row);

  // --- live statuses --------------------------------------------------------------------

  /** One round: the newest records of each kind with a live row, matched by media id. */
  async function refresh() {
    const kinds = new Set(liveRows().map((row) => row.dataset.kind));
    for (const kind of kinds) {
      const spec = config.kinds[kind];
      const page = await api("GET", `${spec.api}?page_size=${PAGE_SIZE}`);
      const records = new Map(page.results.map((r) => [r[spec.idField], r]));
      for (const row of liveRows().filter((r) => r.dataset.kind === kind)) {
        const record = records.get(row.dataset.id);
        if (record) update(row, record);
        else if (page.next) update(row, await api("GET", recordUrl(row))); // an older page's row
        else delete row.dataset.live; // the whole list came: it is gone
      }
    }
  }

  let polling = false;
  async function poll() {
    if (polling) return;
    polling = true;
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
    polling = false;
  }

  poll();
})();
