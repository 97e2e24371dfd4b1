// The dashboard's buttons: call the admin endpoints with the token the operator pasted (kept in localStorage).
(function () {
  "use strict";
  var KEY = "xbotAdminToken";
  var tokenInput = document.getElementById("token");
  var toast = document.getElementById("toast");
  var auto = document.getElementById("autorefresh");
  var timer = null;

  tokenInput.value = localStorage.getItem(KEY) || "";
  document.getElementById("save-token").addEventListener("click", function () {
    localStorage.setItem(KEY, tokenInput.value.trim());
    say("token saved in this browser");
  });

  function say(text, isError) {
    toast.textContent = text;
    toast.className = "show" + (isError ? " error" : "");
    clearTimeout(say.t);
    say.t = setTimeout(function () { toast.className = ""; }, isError ? 8000 : 2500);
  }

  function call(method, url, body) {
    var token = (tokenInput.value || localStorage.getItem(KEY) || "").trim();
    var headers = { "Content-Type": "application/json" };
    if (token) { headers["Authorization"] = "Bearer " + token; }
    return fetch(url, { method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (r) {
        return r.text().then(function (t) {
          var data = null;
          try { data = t ? JSON.parse(t) : null; } catch (e) { data = { detail: t }; }
          if (!r.ok) {
            var detail = data && data.detail;
            if (typeof detail !== "string") { detail = JSON.stringify(detail); }
            throw new Error(r.status + ": " + detail);
          }
          return data;
        });
      });
  }

  var actions = {
    approve: function (b) { return call("POST", "/admin/decisions/" + b.dataset.id + "/approve"); },
    reject: function (b) { return call("POST", "/admin/decisions/" + b.dataset.id + "/reject", { reason: "rejected on the dashboard" }); },
    schedule: function (b) { return call("POST", "/admin/decisions/" + b.dataset.id + "/schedule", { scheduled_at: "now" }); },
    resolve: function (b) {
      var retry = b.dataset.resolve === "retry";
      var ask = retry
        ? "Retry posts this again. Only when you have looked on X and it is NOT there (profile, replies, search). Retry?"
        : "Abandon: this decision is never posted (status failed). Abandon?";
      if (!window.confirm(ask)) { return Promise.reject(new Error("not sent")); }
      return call("POST", "/admin/decisions/" + b.dataset.id + "/resolve",
                  { action: b.dataset.resolve, note: (retry ? "checked X: not there" : "abandoned") + " (dashboard)" });
    },
    run: function (b) { return call("POST", "/admin/jobs/run?job=" + encodeURIComponent(b.dataset.job)); },
    flag: function (b) {
      var values = {};
      values[b.dataset.flag] = b.dataset.value === "" ? null : b.dataset.value;
      return call("PUT", "/admin/flags", { values: values, actor: "dashboard" });
    }
  };

  document.addEventListener("click", function (e) {
    var b = e.target.closest("button[data-action]");
    if (!b || !actions[b.dataset.action]) { return; }
    b.disabled = true;
    actions[b.dataset.action](b).then(function (data) {
      var what = data && (data.event || (data.run_id ? "queued " + data.job + " " + data.run_id : "flags updated"));
      say("done: " + what);
      setTimeout(function () { location.reload(); }, 400);
    }).catch(function (err) {
      b.disabled = false;
      say(err.message, true);
    });
  });

  function schedule() {
    clearTimeout(timer);
    if (auto.checked) { timer = setTimeout(function () { location.reload(); }, 15000); }
  }
  auto.checked = localStorage.getItem("xbotAutoRefresh") !== "off";
  auto.addEventListener("change", function () {
    localStorage.setItem("xbotAutoRefresh", auto.checked ? "on" : "off");
    schedule();
  });
  schedule();
})();
