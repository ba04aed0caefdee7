// Start Swagger UI on the schema named by the page (no inline script: the CSP forbids it).
(function () {
  "use strict";
  var node = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({
    url: node.getAttribute("data-schema-url"),
    domNode: node,
    deepLinking: true,
    persistAuthorization: false,
  });
})();
