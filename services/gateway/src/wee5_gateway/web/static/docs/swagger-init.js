// Starts Swagger UI on /schema from the served document. A file rather than an inline script:
// the docs pages' CSP lets only this origin's scripts run.
const root = document.getElementById("swagger-ui");
window.SwaggerUIBundle({
  url: root.dataset.specUrl,
  domNode: root,
  deepLinking: true,
  tryItOutEnabled: false,
});
