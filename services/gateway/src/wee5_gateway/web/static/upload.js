// WEE5 admin pages: upload a resource's file from the browser straight to storage.
// A form with data-upload="<our API route for a signed upload URL>" and a file input
// [data-file]: on submit, ask the API for a signed URL (same origin: Whop's token or the
// sign-in cookie comes along), send the file there with the method and headers the API gave,
// put the storage key (and the file's SHA-256, checked by the service) into the form's hidden
// fields, then submit the form to publish. The gateway never sees the file's bytes.
(function () {
  "use strict";

  function hex(buffer) {
    return Array.prototype.map.call(new Uint8Array(buffer), function (b) {
      return b.toString(16).padStart(2, "0");
    }).join("");
  }

  function sha256(file) {
    if (!window.crypto || !window.crypto.subtle) return Promise.resolve("");
    return file.arrayBuffer().then(function (bytes) {
      return window.crypto.subtle.digest("SHA-256", bytes);
    }).then(hex);
  }

  function problemText(response) {
    return response.text().then(function (body) {
      try {
        var problem = JSON.parse(body);
        var details = (problem.errors || []).map(function (e) { return e.message; });
        return [problem.detail || problem.title].concat(details).filter(Boolean).join(": ");
      } catch (e) {
        return "the server answered " + response.status;
      }
    });
  }

  function setUp(form) {
    var input = form.querySelector("[data-file]");
    var error = form.querySelector("[data-upload-error]");
    var progress = form.querySelector("[data-upload-progress]");
    var button = form.querySelector("button[type=submit]");
    var field = function (name) { return form.querySelector("input[name=" + name + "]"); };

    function fail(message) {
      error.textContent = message;
      error.hidden = false;
      input.setAttribute("aria-invalid", "true");
      progress.hidden = true;
      button.disabled = false;
    }

    input.addEventListener("change", function () { field("storage_key").value = ""; });

    form.addEventListener("submit", function (event) {
      if (field("storage_key").value) return; // uploaded already: publish
      var file = input.files && input.files[0];
      if (!file) return; // the server says a file is needed, next to the field
      event.preventDefault();
      error.hidden = true;
      input.removeAttribute("aria-invalid");
      progress.hidden = false;
      button.disabled = true;
      var grant;
      fetch(form.getAttribute("data-upload"), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify({
          file_name: file.name,
          content_type: file.type || "application/octet-stream",
          size_bytes: file.size
        })
      }).then(function (response) {
        if (!response.ok) return problemText(response).then(function (t) { throw new Error(t); });
        return response.json();
      }).then(function (answer) {
        grant = answer;
        return fetch(grant.url, { method: grant.method, headers: grant.headers, body: file });
      }).then(function (response) {
        if (!response.ok) return problemText(response).then(function (t) { throw new Error(t); });
        return sha256(file);
      }).then(function (checksum) {
        field("storage_key").value = grant.storage_key;
        field("checksum_sha256").value = checksum;
        field("file_name").value = file.name;
        form.submit();
      }).catch(function (err) {
        fail("The upload failed: " + (err && err.message ? err.message : err));
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-upload]").forEach(setUp);
  });
})();
