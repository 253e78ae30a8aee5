// reelflow's web page: live progress, trim handles and drag-to-move. Every control also works
// without this file (plain forms); this only makes them nicer.
"use strict";

function money(value) { return "$" + value.toFixed(4); }

function pollProgress(section) {
  const url = section.dataset.progressUrl;
  const every = Number(section.dataset.pollMs) || 1500;
  const overall = section.querySelector("#overall");
  const percent = section.querySelector("#percent");
  const spent = section.querySelector("#spent");
  const kinds = section.querySelector("#kinds");
  async function tick() {
    let job;
    try {
      const answer = await fetch(url, { headers: { Accept: "application/json" } });
      if (answer.redirected) { window.location.reload(); return; }  // signed out: say so
      if (!answer.ok) throw new Error(answer.status);
      job = await answer.json();
    } catch (error) {
      setTimeout(tick, every * 2);  // the server restarting or busy: again, more slowly
      return;
    }
    overall.value = job.progress;
    percent.textContent = Math.round(job.progress) + "%";
    spent.textContent = money(job.cost_usd);
    kinds.replaceChildren(...job.kinds.map((kind) => {
      const row = document.createElement("tr");
      const name = document.createElement("th");
      name.scope = "row";
      name.textContent = kind.label;
      row.append(name);
      for (const text of [kind.done + "/" + kind.total, String(kind.reused), money(kind.cost_usd)]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      return row;
    }));
    if (job.over) { window.location.reload(); return; }
    setTimeout(tick, every);
  }
  setTimeout(tick, every);
}

function trimHandles(form) {
  const length = Number(form.dataset.clipSeconds);
  const start = form.querySelector("input[name=start]");
  const end = form.querySelector("input[name=end]");
  const span = form.querySelector("output.span");
  const before = form.querySelector(".cut.before");
  const after = form.querySelector(".cut.after");
  function shown(moved) {
    let a = Number(start.value), b = Number(end.value);
    if (b - a < 0.5) {  // the handles never cross: the one moved stops at the other
      if (moved === start) { a = Math.max(0, b - 0.5); start.value = a; }
      else { b = Math.min(length, a + 0.5); end.value = b; }
    }
    span.textContent = a.toFixed(1) + "–" + b.toFixed(1) + " s (" + (b - a).toFixed(1) + " s)";
    before.style.width = (100 * a / length) + "%";
    after.style.width = (100 * (length - b) / length) + "%";
  }
  start.addEventListener("input", () => shown(start));
  end.addEventListener("input", () => shown(end));
  shown(null);
}

function dragToMove(cards) {
  let dragged = null;
  for (const card of cards) {
    card.addEventListener("dragstart", (event) => {
      dragged = card;
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", card.dataset.scene);
    });
    card.addEventListener("dragover", (event) => {
      if (dragged && dragged !== card) { event.preventDefault(); card.classList.add("drag-over"); }
    });
    card.addEventListener("dragleave", () => card.classList.remove("drag-over"));
    card.addEventListener("drop", (event) => {
      event.preventDefault();
      card.classList.remove("drag-over");
      if (!dragged || dragged === card) return;
      // Dragged down, the scene goes after the card it is dropped on; dragged up, before it.
      const order = cards.map((c) => c.dataset.scene);
      const target = order.indexOf(card.dataset.scene);
      const movingDown = order.indexOf(dragged.dataset.scene) < target;
      const after = movingDown ? card.dataset.scene : (target > 0 ? order[target - 1] : "");
      const form = dragged.querySelector("form.move-to");
      form.querySelector("input[name=after]").value = after;
      form.submit();
    });
  }
}

// A form sent once: a second click while the page loads would start a second job.
function sentOnce(form) {
  form.addEventListener("submit", () => {
    for (const button of form.querySelectorAll("button")) button.disabled = true;
  });
}

// Back to a page from the browser's history: its forms can be sent again.
window.addEventListener("pageshow", () => {
  for (const button of document.querySelectorAll("form button")) button.disabled = false;
});

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form").forEach(sentOnce);
  const progress = document.querySelector("[data-progress-url]");
  if (progress) pollProgress(progress);
  document.querySelectorAll("form.trim").forEach(trimHandles);
  const cards = Array.from(document.querySelectorAll(".card[data-scene]"));
  if (cards.length > 1) dragToMove(cards);
});
