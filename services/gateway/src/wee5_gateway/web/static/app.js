// WEE5 pages: everything works without this file; it adds live toasts.
// An element with data-stream="<url of a live stream>" and data-me="<my member id>" opens the
// community's live stream (server-sent events) and shows my level-ups and rewards as toasts.
(function () {
  "use strict";

  // How long a generic toast waits for the community's own words about the same thing
  // (`rewards.announced` comes from rewards just after the event it announces).
  var ANNOUNCEMENT_GRACE_MS = 1500;

  function toast(text) {
    var box = document.getElementById("toasts");
    if (!box) return null;
    var item = document.createElement("div");
    item.className = "toast";
    item.setAttribute("role", "status");
    item.textContent = text;
    box.appendChild(item);
    setTimeout(function () { item.remove(); }, 8000);
    return item;
  }

  // The stream's events are named by their subject; their data is the event as JSON.
  var WORDS = {
    "xp.level_up": function (d) { return "Level up! You reached level " + d.to_level + "."; },
    "rewards.granted": function (d) { return "Reward unlocked at level " + d.level + " (" + d.kind.replace(/_/g, " ") + ")."; },
    "rewards.badge_awarded": function () { return "You earned a badge."; }
  };
  // What an event is about, as `rewards.announced` names the same thing.
  var SUBJECT = {
    "xp.level_up": function (d) { return "level_up:" + d.to_level; },
    "rewards.granted": function (d) { return "reward:" + d.reward_id; },
    "rewards.badge_awarded": function (d) { return "badge:" + d.badge_id; },
    "rewards.announced": function (d) {
      return d.kind + ":" + (d.kind === "reward" ? d.reward_id : d.kind === "badge" ? d.badge_id : d.level);
    }
  };

  // One toast per thing: the announcement's text when it comes, else the generic words.
  function Toasts() {
    this.announced = {};  // subject -> true once its announcement was shown
    this.waiting = {};    // subject -> timer of a generic toast
    this.generic = {};    // subject -> the generic toast on screen
  }
  Toasts.prototype.genericFor = function (subject, text) {
    var self = this;
    if (this.announced[subject] || this.waiting[subject]) return;
    this.waiting[subject] = setTimeout(function () {
      delete self.waiting[subject];
      if (!self.announced[subject]) self.generic[subject] = toast(text);
    }, ANNOUNCEMENT_GRACE_MS);
  };
  Toasts.prototype.announce = function (subject, text) {
    if (this.announced[subject] || !text) return;
    this.announced[subject] = true;
    clearTimeout(this.waiting[subject]);
    delete this.waiting[subject];
    var shown = this.generic[subject];
    delete this.generic[subject];
    // Late: the generic toast is already up; it takes the announcement's words instead.
    if (shown && shown.isConnected) shown.textContent = text;
    else toast(text);
  };

  function listen(el) {
    var me = el.getAttribute("data-me");
    var source = new EventSource(el.getAttribute("data-stream"));
    var toasts = new Toasts();
    Object.keys(SUBJECT).forEach(function (name) {
      source.addEventListener(name, function (event) {
        var data;
        try { data = JSON.parse(event.data); } catch (e) { return; }
        if (me && data.user_id !== me) return;
        if (name === "rewards.announced") toasts.announce(SUBJECT[name](data), data.text);
        else toasts.genericFor(SUBJECT[name](data), WORDS[name](data));
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
