/*
 * Passkeys (WebAuthn) for Lockbox pages. Passkeys need JavaScript: without it the
 * pages say so and every other way to sign in still works.
 *
 * A form with data-passkey="<options URL>" becomes a passkey button:
 *   1. POST the form's fields (its CSRF token) to the options URL → {options, handle};
 *   2. navigator.credentials.create/get with those options;
 *   3. POST the credential (as JSON) and the handle to the form's action →
 *      {redirect} (go there), {continue} (submit a POST there, with the CSRF token:
 *      a step-up carries out the confirmed action) or {error} (say it).
 * Registration forms carry data-passkey-register. Nothing inline (the CSP forbids it).
 */
(function () {
  "use strict";

  function toBytes(value) {
    var text = value.replace(/-/g, "+").replace(/_/g, "/");
    while (text.length % 4) text += "=";
    var raw = atob(text);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function creationOptions(o) {
    o.challenge = toBytes(o.challenge);
    o.user.id = toBytes(o.user.id);
    (o.excludeCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return { publicKey: o };
  }

  function requestOptions(o) {
    o.challenge = toBytes(o.challenge);
    (o.allowCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return { publicKey: o };
  }

  function credentialJson(cred) {
    var r = cred.response;
    var out = { id: cred.id, rawId: toText(cred.rawId), type: cred.type, response: {} };
    out.response.clientDataJSON = toText(r.clientDataJSON);
    if (r.attestationObject) {
      out.response.attestationObject = toText(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    }
    if (r.authenticatorData) {
      out.response.authenticatorData = toText(r.authenticatorData);
      out.response.signature = toText(r.signature);
      if (r.userHandle) out.response.userHandle = toText(r.userHandle);
    }
    out.clientExtensionResults = cred.getClientExtensionResults ? cred.getClientExtensionResults() : {};
    return JSON.stringify(out);
  }

  function post(url, form, extra) {
    var body = new URLSearchParams(new FormData(form));
    Object.keys(extra || {}).forEach(function (k) { body.set(k, extra[k]); });
    return fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (answer) {
      return answer.json().catch(function () { return { error: "Unexpected answer (" + answer.status + ")." }; });
    });
  }

  function submitTo(url, form) {
    var next = document.createElement("form");
    next.method = "post";
    next.action = url;
    var token = form.querySelector("input[name=csrf_token]");
    if (token) next.appendChild(token.cloneNode());
    document.body.appendChild(next);
    next.submit();
  }

  function setup(form) {
    var status = form.querySelector("[data-passkey-status]");
    var button = form.querySelector("[data-passkey-button]");
    var register = form.hasAttribute("data-passkey-register");
    if (!window.PublicKeyCredential || !navigator.credentials) {
      if (status) status.textContent = "This browser cannot use passkeys.";
      return;
    }
    if (status) status.textContent = "";
    if (button) button.hidden = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (button) button.disabled = true;
      if (status) status.textContent = "Waiting for your passkey…";
      post(form.getAttribute("data-passkey"), form)
        .then(function (answer) {
          if (answer.error) throw new Error(answer.error);
          var options = JSON.parse(answer.options);
          var asked = register
            ? navigator.credentials.create(creationOptions(options))
            : navigator.credentials.get(requestOptions(options));
          return asked.then(function (cred) {
            return post(form.action, form, { handle: answer.handle, credential: credentialJson(cred) });
          });
        })
        .then(function (answer) {
          if (answer.error) throw new Error(answer.error);
          if (answer["continue"]) return submitTo(answer["continue"], form);
          window.location.assign(answer.redirect || "/");
        })
        .catch(function (error) {
          if (status) status.textContent = (error && error.message) || "The passkey did not work.";
          if (button) button.disabled = false;
        });
    });
  }

  document.querySelectorAll("form[data-passkey]").forEach(setup);
})();
