// WEE5 pages: everything works without this file; it adds live toasts.
// An element with data-stream="<url of a live stream>" and data-me="<my member id>" opens the
// community's live stream (server-sent events) and shows my level-ups and rewards as toasts.
(function () {
  "use strict";

  function toast(text) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var item = document.createElement("div");
    item.className = "toast";
    item.setAttribute("role", "status");
    item.textContent = text;
    box.appendChild(item);
    setTimeout(function () { item.remove(); }, 8000);
  }

  // The stream's events are named by their subject; their data is the event as JSON.
  var WORDS = {
    "xp.level_up": function (d) { return "Level up! You reached level " + d.to_level + "."; },
    "rewards.granted": function (d) { return "Reward unlocked at level " + d.level + " (" + d.kind.replace(/_/g, " ") + ")."; },
    "rewards.badge_awarded": function () { return "You earned a badge."; }
  };

  function listen(el) {
    var me = el.getAttribute("data-me");
    var source = new EventSource(el.getAttribute("data-stream"));
    Object.keys(WORDS).forEach(function (name) {
      source.addEventListener(name, function (event) {
        var data;
        try { data = JSON.parse(event.data); } catch (e) { return; }
        if (me && data.user_id !== me) return;
        toast(WORDS[name](data));
        document.body.dispatchEvent(new CustomEvent("wee5:" + name, { detail: data }));
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-stream]").forEach(listen);
  });
})();

// On a phone the tabs' row (dashboard sections, member tabs) scrolls sideways; show the current one.
(function () {
  "use strict";
  function showCurrentSection() {
    var tabs = document.querySelector(".topbar .tabs");
    var current = tabs && tabs.querySelector("a[aria-current=page]");
    if (current && tabs.scrollWidth > tabs.clientWidth) {
      tabs.scrollLeft = current.offsetLeft - tabs.offsetLeft - (tabs.clientWidth - current.offsetWidth) / 2;
    }
  }
  document.addEventListener("DOMContentLoaded", showCurrentSection);
  window.addEventListener("resize", showCurrentSection);
})();
