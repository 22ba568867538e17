/* The review queue: a label is saved without leaving the page, and the item leaves the queue. No build step;
 * without this script the forms post and the page reloads, which works the same. */
(function () {
  "use strict";

  var queue = document.getElementById("queue");
  var count = document.getElementById("queue-count");
  var empty = document.getElementById("queue-empty");

  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
  if (!queue) return;

  function setCount(total) {
    if (!count) return;
    count.setAttribute("data-total", String(total));
    var strong = document.createElement("strong");
    strong.textContent = String(total);
    count.replaceChildren(strong, document.createTextNode(" item" + (total === 1 ? "" : "s") + " to review"));
  }

  function done(item) {
    item.classList.add("queue-item--done");
    var total = Math.max(0, Number(count ? count.getAttribute("data-total") : 0) - 1);
    setCount(total);
    window.setTimeout(function () {
      item.remove();
      if (!queue.querySelector(".queue-item") && empty) empty.hidden = false;
    }, 250);
  }

  queue.addEventListener("submit", function (event) {
    var form = event.target.closest(".queue-form");
    if (!form) return;
    event.preventDefault();
    var item = form.closest(".queue-item");
    var status = form.querySelector(".queue-status");
    var button = form.querySelector("[data-label]");
    var token = form.querySelector("input[name=csrfmiddlewaretoken]");
    button.disabled = true;
    status.textContent = "Saving…";
    status.classList.remove("queue-status--error");
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": token ? token.value : "" },
    }).then(function (response) {
      return response.json().catch(function () { return { ok: false, detail: "The server answered " + response.status + "." }; });
    }).then(function (body) {
      if (body.ok) {
        status.textContent = body.rating === "up" ? "Saved: the bot was right." : "Saved: correction recorded.";
        done(item);
      } else {
        status.textContent = body.detail || "Could not save.";
        status.classList.add("queue-status--error");
        button.disabled = false;
      }
    }).catch(function () {
      status.textContent = "Could not reach the server; try again.";
      status.classList.add("queue-status--error");
      button.disabled = false;
    });
  });
})();
