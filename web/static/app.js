// Aviso dashboard: progressive enhancement only; every form works without this file.
document.addEventListener("click", function (e) {
  var b = e.target.closest("[data-copy]");
  if (!b || !navigator.clipboard) return;
  var src = document.getElementById(b.getAttribute("data-copy"));
  if (!src) return;
  navigator.clipboard.writeText(src.textContent.trim()).then(function () {
    var done = b.getAttribute("data-done");
    if (done) { b.textContent = done; }
  });
});
