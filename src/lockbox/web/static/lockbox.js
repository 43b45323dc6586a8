/*
 * Lockbox pages: progressive enhancement only. Every page is complete without
 * this file (the server renders times in UTC or the chosen zone, and the
 * relative deadlines as of rendering). With it:
 *   1. <time datetime data-tz-aware> is shown in the browser's zone when the
 *      person chose none (<html data-tz-source="default">); UTC stays in title;
 *   2. <span data-deadline> relative text is kept current every 30 s, with the
 *      server's wording (lockbox/web/rendering.py: relative, deadline_class);
 *   3. forms with data-confirm-once submit once (no double approvals);
 *   4. the browser's zone goes to the lockbox_tz cookie so the server renders
 *      in it next time;
 *   5. a form's error summary gets focus, so screen readers announce it.
 * Loaded with defer; no dependencies; nothing inline (the CSP forbids it).
 */
(function () {
  "use strict";

  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  var ZONE_RE = /^[A-Za-z][A-Za-z0-9_+\-]{0,30}(\/[A-Za-z0-9_+\-]{1,30}){0,2}$/;
  var root = document.documentElement;
  var zoneIsDefault = root.getAttribute("data-tz-source") === "default";

  function browserZone() {
    try {
      var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      return zone && ZONE_RE.test(zone) ? zone : null;
    } catch (e) {
      return null;
    }
  }

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  /* "5 Jan 2026, 21:00 CET", like rendering.localtime (fixed English months, 24 h). */
  function formatLocal(date, zone) {
    var parts = {};
    new Intl.DateTimeFormat("en-GB", {
      timeZone: zone,
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      hourCycle: "h23",
      timeZoneName: "short"
    }).formatToParts(date).forEach(function (p) {
      parts[p.type] = p.value;
    });
    var name = (parts.timeZoneName || "").replace(/^GMT(?=[+\-])/, "UTC");
    return (
      Number(parts.day) + " " + MONTHS[Number(parts.month) - 1] + " " + parts.year + ", " +
      pad(Number(parts.hour) % 24) + ":" + pad(Number(parts.minute)) + " " + name
    );
  }

  function formatUtc(date) {
    return (
      date.getUTCDate() + " " + MONTHS[date.getUTCMonth()] + " " + date.getUTCFullYear() + ", " +
      pad(date.getUTCHours()) + ":" + pad(date.getUTCMinutes()) + " UTC"
    );
  }

  function localizeTimes(zone) {
    var times = document.querySelectorAll("time[datetime][data-tz-aware]");
    for (var i = 0; i < times.length; i++) {
      var el = times[i];
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime())) continue;
      if (!el.getAttribute("title")) el.setAttribute("title", formatUtc(date));
      el.textContent = formatLocal(date, zone);
    }
    var labels = document.querySelectorAll("[data-tz-label]");
    for (var j = 0; j < labels.length; j++) labels[j].textContent = zone;
  }

  function rememberZone(zone) {
    var current = document.cookie.match(/(?:^|;\s*)lockbox_tz=([^;]*)/);
    if (current && current[1] === zone) return;
    document.cookie =
      "lockbox_tz=" + zone + "; Path=/; Max-Age=31536000; SameSite=Lax" +
      (location.protocol === "https:" ? "; Secure" : "");
  }

  /* Same wording and rounding (down to the minute) as rendering.relative. */
  function span(minutes) {
    if (minutes < 60) return minutes + " min";
    if (minutes < 1440) {
      var h = Math.floor(minutes / 60), m = minutes % 60;
      return m ? h + " h " + m + " min" : h + " h";
    }
    var hours = Math.floor(minutes / 60), d = Math.floor(hours / 24), rh = hours % 24;
    return rh ? d + " d " + rh + " h" : d + " d";
  }

  function relative(ms) {
    var minutes = Math.floor(Math.abs(ms) / 60000);
    if (minutes < 1) return ms > 0 ? "in under 1 min" : "just now";
    return ms > 0 ? "in " + span(minutes) : span(minutes) + " ago";
  }

  function updateDeadlines() {
    var els = document.querySelectorAll("[data-deadline]");
    var now = Date.now();
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      var at = Date.parse(el.getAttribute("data-deadline"));
      if (isNaN(at)) continue;
      var ms = at - now;
      var past = ms <= 0;
      var prefix = past && el.getAttribute("data-past") ? el.getAttribute("data-past") + " " : "";
      var text = prefix + relative(ms);
      if (el.textContent !== text) el.textContent = text;
      el.classList.toggle("past", past);
      el.classList.toggle("urgent", !past && ms < 3600000);
    }
  }

  function guardDoubleSubmit() {
    document.addEventListener("submit", function (event) {
      var form = event.target;
      if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-confirm-once")) return;
      if (form.getAttribute("data-submitted") === "true") {
        event.preventDefault();
        return;
      }
      if (event.defaultPrevented) return;
      form.setAttribute("data-submitted", "true");
      form.setAttribute("aria-busy", "true");
      /* Disable after the browser has collected the form data: a button
         disabled now would drop its own name=value from the submission. */
      window.setTimeout(function () {
        var buttons = form.querySelectorAll("button[type=submit], button:not([type]), input[type=submit]");
        for (var i = 0; i < buttons.length; i++) buttons[i].disabled = true;
      }, 0);
    });
    /* Coming back with the Back button restores the page from cache: allow submitting again. */
    window.addEventListener("pageshow", function (event) {
      if (!event.persisted) return;
      var forms = document.querySelectorAll("form[data-confirm-once][data-submitted]");
      for (var i = 0; i < forms.length; i++) {
        forms[i].removeAttribute("data-submitted");
        forms[i].removeAttribute("aria-busy");
        var buttons = forms[i].querySelectorAll("button, input[type=submit]");
        for (var j = 0; j < buttons.length; j++) buttons[j].disabled = false;
      }
    });
  }

  function focusErrorSummary() {
    var summary = document.querySelector("[data-error-summary]");
    if (summary) summary.focus();
  }

  if (zoneIsDefault) {
    var zone = browserZone();
    if (zone) {
      localizeTimes(zone);
      rememberZone(zone);
    }
  }
  updateDeadlines();
  window.setInterval(updateDeadlines, 30000);
  guardDoubleSubmit();
  focusErrorSummary();
})();
