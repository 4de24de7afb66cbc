// Arca console: progressive enhancements only; every page works without it
// except uploading (which needs the progress bar's XHR).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Show the CMK choices only when KMS is chosen, and only the keys of the chosen region.
  for (const fieldset of document.querySelectorAll("fieldset.sse")) {
    const options = fieldset.querySelector(".kms-options");
    const sync = () => {
      const chosen = fieldset.querySelector("input[name=sse]:checked");
      options.hidden = !chosen || chosen.value !== "KMS";
    };
    fieldset.addEventListener("change", sync);
    sync();
  }
  const region = document.getElementById("bucket-region");
  const keySelect = document.getElementById("create-kms-key");
  if (region && keySelect) {
    const filter = () => {
      for (const o of keySelect.options) {
        if (o.dataset.region) o.hidden = o.dataset.region !== region.value;
      }
      if (keySelect.selectedOptions[0] && keySelect.selectedOptions[0].hidden) keySelect.value = "";
    };
    region.addEventListener("change", filter);
    filter();
  }

  const form = document.getElementById("upload-form");
  if (form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const file = document.getElementById("upload-file").files[0];
      if (!file) return;
      const progress = document.getElementById("upload-progress");
      const status = document.getElementById("upload-status");
      const bucket = form.dataset.bucket;
      const prefix = form.dataset.prefix || "";
      const key = prefix + file.name;
      const sse = document.getElementById("upload-sse").value;
      const url = "/buckets/" + encodeURIComponent(bucket) + "/upload?key=" + encodeURIComponent(key) +
        "&sse=" + encodeURIComponent(sse);
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", url);
      xhr.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
      if (file.type) xhr.setRequestHeader("Content-Type", file.type);
      progress.hidden = false;
      progress.value = 0;
      status.textContent = "Uploading " + key + "…";
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) progress.value = Math.round((e.loaded / e.total) * 100);
      });
      xhr.addEventListener("load", () => {
        let reply = {};
        try { reply = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
        if (xhr.status === 200) {
          progress.value = 100;
          const note = "Uploaded " + key + " (encryption: " + reply.encryption + ").";
          window.location.href = "/buckets/" + encodeURIComponent(bucket) + "?prefix=" + encodeURIComponent(prefix) +
            "&notice=" + encodeURIComponent(note);
        } else {
          status.textContent = "Upload failed: " + (reply.error || xhr.statusText);
          status.className = "error";
        }
      });
      xhr.addEventListener("error", () => {
        status.textContent = "Upload failed: the connection broke.";
        status.className = "error";
      });
      xhr.send(file);
    });
  }
});
