// "Select all" for the retry queue; the console works without it.
document.addEventListener("change", function (ev) {
  var box = ev.target;
  if (!box.dataset || !box.dataset.selectAll) return;
  var form = box.form || document;
  form.querySelectorAll('input[type=checkbox][name="' + box.dataset.selectAll + '"]').forEach(function (c) { c.checked = box.checked; });
});

// The agenda's print button; the browser's own print does the same.
document.addEventListener("click", function (ev) {
  if (ev.target && ev.target.dataset && ev.target.dataset.print !== undefined) window.print();
});
