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

// Picking another event type for a test event loads its catalog example, unless the payload
// was edited by hand.
document.addEventListener("change", function (e) {
  if (e.target.id !== "test-type") return;
  var data = document.getElementById("test-data");
  var opt = e.target.selectedOptions[0];
  if (!data || !opt) return;
  if (data.dataset.edited === "1") return;
  data.value = opt.getAttribute("data-example") || "{}";
});
document.addEventListener("input", function (e) {
  if (e.target.id === "test-data") e.target.dataset.edited = "1";
});
