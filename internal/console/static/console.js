// "Select all" for the retry queue; the console works without it.
document.addEventListener("change", function (ev) {
  var box = ev.target;
  if (!box.dataset || !box.dataset.selectAll) return;
  var form = box.form || document;
  form.querySelectorAll('input[type=checkbox][name="' + box.dataset.selectAll + '"]').forEach(function (c) { c.checked = box.checked; });
});
