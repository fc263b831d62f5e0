// Starts ReDoc on /redoc (no inline script: the page's CSP allows only files from this server).
"use strict";
window.addEventListener("load", function () {
  var root = document.getElementById("redoc");
  Redoc.init(root.dataset.openapiUrl, { hideDownloadButton: false, disableSearch: false }, root);
});
