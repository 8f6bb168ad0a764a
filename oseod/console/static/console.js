// oseod operator console: live numbers on the overview (Server-Sent Events)
// and small enhancements. Every page works without this file.
"use strict";

function liveOverview() {
  const root = document.querySelector("[data-live-root]");
  if (!root || !window.EventSource) {
    return;
  }
  const state = document.getElementById("live-state");
  const recent = document.getElementById("recent-orders");
  const source = new EventSource("/console/events");
  source.addEventListener("open", () => {
    if (state) {
      state.textContent = "live";
      state.className = "live connected";
    }
  });
  source.addEventListener("error", () => {
    if (state) {
      state.textContent = "live updates interrupted; retrying";
      state.className = "live lost";
    }
  });
  source.addEventListener("end", () => {
    source.close();
    if (state) {
      state.textContent = "session ended: reload to log in again";
      state.className = "live lost";
    }
  });
  source.addEventListener("overview", (message) => {
    let data;
    try {
      data = JSON.parse(message.data);
    } catch (e) {
      return;
    }
    for (const element of document.querySelectorAll("[data-live]")) {
      const value = data.values[element.dataset.live];
      if (value !== undefined && element.textContent !== value) {
        element.textContent = value;
        element.classList.remove("updated");
        void element.offsetWidth;  // restart the highlight
        element.classList.add("updated");
      }
    }
    if (recent && typeof data.recent === "string" && recent.dataset.html !== data.recent) {
      recent.dataset.html = data.recent;
      recent.innerHTML = data.recent;  // rendered and escaped by the server
    }
    if (state) {
      // The server's time, in UTC like every other time on the console (not the browser's locale).
      state.textContent = typeof data.at === "string" ? "live, updated " + data.at : "live";
      state.className = "live connected";
    }
  });
}

function selectAll() {
  for (const box of document.querySelectorAll("input[data-select-all]")) {
    const name = box.dataset.selectAll;
    box.hidden = false;
    const label = document.querySelector('label[for="' + box.id + '"]');
    box.addEventListener("change", () => {
      for (const other of document.querySelectorAll('input[type="checkbox"][name="' + name + '"]')) {
        other.checked = box.checked;
      }
    });
    if (label) {
      label.title = "Select all";
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  liveOverview();
  selectAll();
});
